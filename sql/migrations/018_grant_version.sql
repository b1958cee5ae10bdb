-- 018_grant_version.sql -- what a claim saw of a grant, to keep a cached copy.
--
-- The executor checks each claimed call against its grant (bound agents,
-- allowed bases, pause, secret) right before the call. It used to reload
-- every claimed grant after every claim (grant_load: ~0.8 ms of Postgres
-- time, once per claim of one call when decisions arrive one by one). Now
-- the claim returns this version for each call's grant and the executor
-- reloads only a grant whose version differs from its cached copy's.
--
-- The version names the grant's row and its bound agents' rows (xmin: any
-- committed change to a row gives it a new one; a row removed drops out of
-- the list). The policy is not in it: a claimed call carries its own
-- policy snapshot, and execution reads nothing else of the policy.
--
-- PL/pgSQL, not SQL: a SQL function with subqueries is not inlined, and was
-- planned again in every claim (1498 plans, 233 ms of an 8 s benchmark);
-- PL/pgSQL keeps its plan for the session.
CREATE FUNCTION cs_grant_version(grant_id text) RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT g.xmin::text FROM grants g WHERE g.id = cs_grant_version.grant_id) || ':' ||
           coalesce((SELECT string_agg(ga.xmin::text, ',' ORDER BY ga.agent_id)
                     FROM grant_agents ga WHERE ga.grant_id = cs_grant_version.grant_id), '');
END $$;
