--
-- PostgreSQL database dump
--

\restrict 6rqjUXe1ZnnMIrPcqKadAUZrFNUbyTu0mAs2UsZPpGWJbrfdoJGYnBkq3qZA1gS

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: append_only(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW'
       AND current_setting('countersign.audit_prune', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;


--
-- Name: approvals_guard(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.approvals_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF (NEW.id, NEW.request_id, NEW.agent_id, NEW.grant_id, NEW.policy_id, NEW.batch_id,
        NEW.method, NEW.url, NEW.headers, NEW.body, NEW.reason, NEW.context, NEW.digest,
        NEW.policy, NEW.created_at, NEW.expires_at, NEW.quorum)
       IS DISTINCT FROM
       (OLD.id, OLD.request_id, OLD.agent_id, OLD.grant_id, OLD.policy_id, OLD.batch_id,
        OLD.method, OLD.url, OLD.headers, OLD.body, OLD.reason, OLD.context, OLD.digest,
        OLD.policy, OLD.created_at, OLD.expires_at, OLD.quorum) THEN
        RAISE EXCEPTION 'approval %: the stored request is immutable', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        IF NOT ((OLD.status = 'pending' AND NEW.status IN ('approved', 'denied', 'expired', 'cancelled'))
             OR (OLD.status = 'approved' AND NEW.status = 'executing')
             OR (OLD.status = 'executing' AND NEW.status IN ('executed', 'failed', 'approved'))) THEN
            RAISE EXCEPTION 'approval %: illegal transition % -> %', OLD.id, OLD.status, NEW.status
                USING ERRCODE = 'check_violation';
        END IF;
        IF OLD.status = 'pending' AND NEW.status IN ('approved', 'denied')
           AND clock_timestamp() >= OLD.expires_at THEN
            RAISE EXCEPTION 'approval %: decision after expiry', OLD.id
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;


--
-- Name: approvals_notify(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.approvals_notify() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.status = 'approved' THEN
        PERFORM pg_notify('cs_approved', '');
    ELSE
        PERFORM pg_notify('cs_done', NEW.id::text);
    END IF;
    RETURN NULL;
END $$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: audit; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit (
    id bigint NOT NULL,
    txid xid8 DEFAULT pg_current_xact_id() NOT NULL,
    at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    approval_id uuid,
    detail jsonb DEFAULT '{}'::jsonb NOT NULL
);


--
-- Name: cs_audit_line(public.audit); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.cs_audit_line(a public.audit) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT a.id::text || '|' || a.txid::text || '|'
        || (extract(epoch FROM a.at) * 1000000)::bigint::text || '|'
        || a.actor || '|' || a.action || '|' || coalesce(a.approval_id::text, '') || '|'
        || a.detail::text || E'\n'
$$;


--
-- Name: approvers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.approvers (
    id uuid NOT NULL,
    name text NOT NULL,
    email text,
    webhook_url text,
    slack_webhook_url text,
    agent_id uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    disabled_at timestamp with time zone,
    oidc_subject text,
    CONSTRAINT approvers_name_check CHECK (((length(name) >= 1) AND (length(name) <= 128))),
    CONSTRAINT approvers_oidc_subject_check CHECK (((oidc_subject IS NULL) OR ((length(oidc_subject) >= 1) AND (length(oidc_subject) <= 255))))
);


--
-- Name: cs_channels(public.approvers); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.cs_channels(p public.approvers) RETURNS SETOF text
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT v.channel FROM (VALUES ('email', p.email), ('slack', p.slack_webhook_url),
                                  ('webhook', p.webhook_url)) AS v(channel, target)
    WHERE v.target IS NOT NULL
$$;


--
-- Name: approvals; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.approvals (
    id uuid NOT NULL,
    request_id text NOT NULL,
    agent_id uuid NOT NULL,
    grant_id text NOT NULL,
    policy_id text NOT NULL,
    batch_id text,
    method text NOT NULL,
    url text NOT NULL,
    headers jsonb DEFAULT '{}'::jsonb NOT NULL,
    body bytea DEFAULT '\x'::bytea NOT NULL,
    reason text DEFAULT ''::text NOT NULL,
    context jsonb DEFAULT '{}'::jsonb NOT NULL,
    digest bytea NOT NULL,
    policy jsonb NOT NULL,
    approvers uuid[] DEFAULT '{}'::uuid[] NOT NULL,
    quorum integer NOT NULL,
    status text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    decided_at timestamp with time zone,
    decided_by text,
    decision_reason text,
    lease_owner text,
    lease_expires_at timestamp with time zone,
    attempts integer DEFAULT 0 NOT NULL,
    executed_at timestamp with time zone,
    response_status integer,
    response_headers jsonb,
    response_body bytea,
    response_truncated boolean DEFAULT false NOT NULL,
    error_code text,
    error_message text,
    next_reminder_at timestamp with time zone,
    escalate_at timestamp with time zone,
    CONSTRAINT approvals_check CHECK (((status <> 'pending'::text) OR (quorum >= 1))),
    CONSTRAINT approvals_digest_check CHECK ((length(digest) = 32)),
    CONSTRAINT approvals_quorum_check CHECK ((quorum >= 0)),
    CONSTRAINT approvals_request_id_check CHECK (((length(request_id) >= 1) AND (length(request_id) <= 200))),
    CONSTRAINT approvals_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'approved'::text, 'executing'::text, 'executed'::text, 'failed'::text, 'denied'::text, 'expired'::text, 'cancelled'::text])))
);


--
-- Name: cs_event(public.approvals); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.cs_event(a public.approvals) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'event_id', a.id::text || ':' || a.status || ':' || a.attempts,
        'type', 'approval.' || a.status,
        'approval_id', a.id,
        'request_id', a.request_id,
        'agent_id', a.agent_id,
        'grant_id', a.grant_id,
        'batch_id', a.batch_id,
        'status', a.status,
        'method', a.method,
        'url', a.url,
        'digest', encode(a.digest, 'hex'),
        'created_at', a.created_at,
        'expires_at', a.expires_at,
        'decided_at', a.decided_at,
        'decided_by', a.decided_by,
        'decision_reason', a.decision_reason,
        'attempts', a.attempts,
        'error_code', a.error_code,
        'at', greatest(statement_timestamp(), a.decided_at, a.executed_at)))
$$;


--
-- Name: cs_link_holder(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.cs_link_holder(slot uuid) RETURNS uuid
    LANGUAGE sql STABLE
    AS $$
    SELECT coalesce((
        SELECT d.delegate_id FROM delegations d
        JOIN approvers da ON da.id = d.delegate_id AND da.disabled_at IS NULL
        WHERE d.approver_id = slot AND d.revoked_at IS NULL
          AND now() >= d.starts_at AND now() < d.ends_at
        ORDER BY d.created_at DESC LIMIT 1), slot)
$$;


--
-- Name: cs_result(public.approvals); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.cs_result(a public.approvals) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
    SELECT cs_event(a) || jsonb_strip_nulls(jsonb_build_object(
        'type', 'result.' || a.status,
        'executed_at', a.executed_at,
        'status_code', a.response_status,
        'headers', a.response_headers,
        'body_b64', translate(encode(a.response_body, 'base64'), E'\n', ''),
        'body_truncated', CASE WHEN a.response_body IS NULL THEN NULL
                               ELSE a.response_truncated END,
        'error_message', a.error_message))
$$;


--
-- Name: notifications_notify(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.notifications_notify() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify('cs_notify', '');
    RETURN NULL;
END $$;


--
-- Name: outbox_notify(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.outbox_notify() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify('cs_outbox', '');
    RETURN NULL;
END $$;


--
-- Name: agents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.agents (
    id uuid NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    disabled_at timestamp with time zone,
    CONSTRAINT agents_name_check CHECK ((name ~ '^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$'::text))
);


--
-- Name: api_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.api_keys (
    id uuid NOT NULL,
    agent_id uuid NOT NULL,
    key_hash bytea NOT NULL,
    prefix text NOT NULL,
    scopes text[] DEFAULT '{submit,read}'::text[] NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    revoked_at timestamp with time zone,
    CONSTRAINT api_keys_key_hash_check CHECK ((length(key_hash) = 32)),
    CONSTRAINT api_keys_scopes_check CHECK (((scopes <@ '{submit,read}'::text[]) AND (cardinality(scopes) >= 1)))
);


--
-- Name: audit_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.audit ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.audit_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: audit_seal; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_seal (
    seq bigint NOT NULL,
    from_txid xid8 NOT NULL,
    to_txid xid8 NOT NULL,
    entries integer NOT NULL,
    entries_hash bytea NOT NULL,
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL,
    sealed_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT audit_seal_check CHECK ((to_txid > from_txid))
);


--
-- Name: batch_votes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.batch_votes (
    batch_uid uuid NOT NULL,
    approver_id uuid NOT NULL,
    cast_by uuid NOT NULL,
    decision text NOT NULL,
    denied_items text[] DEFAULT '{}'::text[] NOT NULL,
    reason text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT batch_votes_decision_check CHECK ((decision = ANY (ARRAY['approve'::text, 'deny'::text])))
);


--
-- Name: batches; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.batches (
    uid uuid NOT NULL,
    agent_id uuid NOT NULL,
    id text NOT NULL,
    grant_id text,
    policy_id text,
    policy jsonb,
    approvers uuid[] DEFAULT '{}'::uuid[] NOT NULL,
    quorum integer DEFAULT 0 NOT NULL,
    expected integer,
    members integer DEFAULT 0 NOT NULL,
    status text DEFAULT 'open'::text NOT NULL,
    digest bytea,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone,
    sealed_at timestamp with time zone,
    decidable_at timestamp with time zone,
    decided_at timestamp with time zone,
    decided_by text,
    decision text,
    finished_at timestamp with time zone,
    CONSTRAINT batches_expected_check CHECK (((expected IS NULL) OR ((expected >= 1) AND (expected <= 100000)))),
    CONSTRAINT batches_id_check CHECK (((length(id) >= 1) AND (length(id) <= 128))),
    CONSTRAINT batches_status_check CHECK ((status = ANY (ARRAY['open'::text, 'decidable'::text, 'decided'::text, 'expired'::text])))
);


--
-- Name: delegations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.delegations (
    id uuid NOT NULL,
    approver_id uuid NOT NULL,
    delegate_id uuid NOT NULL,
    starts_at timestamp with time zone NOT NULL,
    ends_at timestamp with time zone NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    revoked_at timestamp with time zone,
    CONSTRAINT delegations_check CHECK ((approver_id <> delegate_id)),
    CONSTRAINT delegations_check1 CHECK ((ends_at > starts_at))
);


--
-- Name: grant_agents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.grant_agents (
    grant_id text NOT NULL,
    agent_id uuid NOT NULL
);


--
-- Name: grants; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.grants (
    id text NOT NULL,
    secret bytea NOT NULL,
    inject text NOT NULL,
    inject_header text,
    allowed_bases text[] NOT NULL,
    idempotency_keys boolean DEFAULT false NOT NULL,
    policy_id text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    disabled_at timestamp with time zone,
    CONSTRAINT grants_allowed_bases_check CHECK ((cardinality(allowed_bases) >= 1)),
    CONSTRAINT grants_check CHECK (((inject = 'header'::text) = (inject_header IS NOT NULL))),
    CONSTRAINT grants_id_check CHECK ((id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'::text)),
    CONSTRAINT grants_inject_check CHECK ((inject = ANY (ARRAY['bearer'::text, 'basic'::text, 'header'::text])))
);


--
-- Name: notifications; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.notifications (
    id bigint NOT NULL,
    approval_id uuid,
    approver_id uuid NOT NULL,
    recipient_id uuid NOT NULL,
    kind text NOT NULL,
    channel text NOT NULL,
    status text DEFAULT 'queued'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    sent_at timestamp with time zone,
    batch_uid uuid,
    CONSTRAINT notifications_channel_check CHECK ((channel = ANY (ARRAY['email'::text, 'slack'::text, 'webhook'::text]))),
    CONSTRAINT notifications_kind_check CHECK ((kind = ANY (ARRAY['request'::text, 'reminder'::text, 'escalation'::text, 'signin'::text]))),
    CONSTRAINT notifications_status_check CHECK ((status = ANY (ARRAY['queued'::text, 'sent'::text, 'failed'::text, 'skipped'::text]))),
    CONSTRAINT notifications_subject CHECK (((approval_id IS NULL) <> (batch_uid IS NULL)))
);


--
-- Name: notifications_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.notifications ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.notifications_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: oidc_logins; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.oidc_logins (
    state_hash bytea NOT NULL,
    nonce text NOT NULL,
    verifier text NOT NULL,
    next_path text NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    CONSTRAINT oidc_logins_next_path_check CHECK (((next_path ~ '^/[^/\\]'::text) AND (length(next_path) <= 512))),
    CONSTRAINT oidc_logins_state_hash_check CHECK ((length(state_hash) = 32))
);


--
-- Name: outbox; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.outbox (
    id bigint NOT NULL,
    topic text NOT NULL,
    key text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT outbox_topic_check CHECK ((topic = ANY (ARRAY['events'::text, 'results'::text])))
);


--
-- Name: outbox_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.outbox ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.outbox_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: passkeys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.passkeys (
    id uuid NOT NULL,
    approver_id uuid NOT NULL,
    credential_id bytea NOT NULL,
    public_key bytea NOT NULL,
    alg integer NOT NULL,
    sign_count bigint DEFAULT 0 NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_used_at timestamp with time zone,
    revoked_at timestamp with time zone,
    CONSTRAINT passkeys_alg_check CHECK ((alg = ANY (ARRAY['-7'::integer, '-257'::integer]))),
    CONSTRAINT passkeys_credential_id_check CHECK (((length(credential_id) >= 1) AND (length(credential_id) <= 1023))),
    CONSTRAINT passkeys_name_check CHECK (((length(name) >= 1) AND (length(name) <= 64))),
    CONSTRAINT passkeys_public_key_check CHECK (((length(public_key) >= 1) AND (length(public_key) <= 2048))),
    CONSTRAINT passkeys_sign_count_check CHECK (((sign_count >= 0) AND (sign_count <= '4294967295'::bigint)))
);


--
-- Name: policies; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.policies (
    id text NOT NULL,
    mode text NOT NULL,
    rules jsonb DEFAULT '[]'::jsonb NOT NULL,
    quorum integer NOT NULL,
    window_seconds integer DEFAULT 3600 NOT NULL,
    exec_timeout_ms integer DEFAULT 30000 NOT NULL,
    max_attempts integer DEFAULT 3 NOT NULL,
    amount_field text,
    reminder_interval_s integer,
    escalate_after_s integer,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    require_passkey boolean DEFAULT false NOT NULL,
    link_mode text DEFAULT 'signin'::text NOT NULL,
    link_lifetime_s integer,
    CONSTRAINT policies_escalate_after_s_check CHECK (((escalate_after_s IS NULL) OR (escalate_after_s >= 1))),
    CONSTRAINT policies_exec_timeout_ms_check CHECK (((exec_timeout_ms >= 100) AND (exec_timeout_ms <= 600000))),
    CONSTRAINT policies_id_check CHECK ((id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'::text)),
    CONSTRAINT policies_link_lifetime_s_check CHECK (((link_lifetime_s IS NULL) OR ((link_lifetime_s >= 60) AND (link_lifetime_s <= 86400)))),
    CONSTRAINT policies_link_mode_check CHECK ((link_mode = ANY (ARRAY['signin'::text, 'semi-public'::text]))),
    CONSTRAINT policies_max_attempts_check CHECK (((max_attempts >= 1) AND (max_attempts <= 20))),
    CONSTRAINT policies_mode_check CHECK ((mode = ANY (ARRAY['always'::text, 'never'::text, 'rules'::text]))),
    CONSTRAINT policies_quorum_check CHECK ((quorum >= 1)),
    CONSTRAINT policies_reminder_interval_s_check CHECK (((reminder_interval_s IS NULL) OR (reminder_interval_s >= 1))),
    CONSTRAINT policies_rules_check CHECK ((jsonb_typeof(rules) = 'array'::text)),
    CONSTRAINT policies_semi_public CHECK (((link_mode = 'signin'::text) OR ((quorum = 1) AND (NOT require_passkey) AND (link_lifetime_s IS NOT NULL)))),
    CONSTRAINT policies_window_seconds_check CHECK (((window_seconds >= 1) AND (window_seconds <= 2592000)))
);


--
-- Name: policy_approvers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.policy_approvers (
    policy_id text NOT NULL,
    approver_id uuid NOT NULL,
    escalation boolean DEFAULT false NOT NULL
);


--
-- Name: schema_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sessions (
    id uuid NOT NULL,
    token_hash bytea NOT NULL,
    approver_id uuid NOT NULL,
    method text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    idle_seconds integer NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone,
    user_agent text,
    address text,
    CONSTRAINT sessions_address_check CHECK ((length(address) <= 64)),
    CONSTRAINT sessions_idle_seconds_check CHECK ((idle_seconds >= 60)),
    CONSTRAINT sessions_method_check CHECK ((method = ANY (ARRAY['oidc'::text, 'link'::text]))),
    CONSTRAINT sessions_token_hash_check CHECK ((length(token_hash) = 32)),
    CONSTRAINT sessions_user_agent_check CHECK ((length(user_agent) <= 512))
);


--
-- Name: signin_links; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.signin_links (
    token_hash bytea NOT NULL,
    approver_id uuid NOT NULL,
    next_path text NOT NULL,
    purpose text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    used_at timestamp with time zone,
    CONSTRAINT signin_links_check CHECK ((expires_at > created_at)),
    CONSTRAINT signin_links_next_path_check CHECK (((next_path ~ '^/[^/\\]'::text) AND (length(next_path) <= 512))),
    CONSTRAINT signin_links_token_hash_check CHECK ((length(token_hash) = 32))
);


--
-- Name: votes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.votes (
    approval_id uuid NOT NULL,
    approver_id uuid NOT NULL,
    cast_by uuid NOT NULL,
    decision text NOT NULL,
    reason text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    passkey_id uuid,
    CONSTRAINT votes_decision_check CHECK ((decision = ANY (ARRAY['approve'::text, 'deny'::text])))
);


--
-- Data for Name: agents; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.agents (id, name, created_at, disabled_at) FROM stdin;
01a235a3-de3a-7fe8-b5ac-ad39996579d7	bot1	2026-12-02 07:24:21.437894+00	\N
\.


--
-- Data for Name: api_keys; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.api_keys (id, agent_id, key_hash, prefix, scopes, created_at, revoked_at) FROM stdin;
\.


--
-- Data for Name: approvals; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.approvals (id, request_id, agent_id, grant_id, policy_id, batch_id, method, url, headers, body, reason, context, digest, policy, approvers, quorum, status, created_at, updated_at, expires_at, decided_at, decided_by, decision_reason, lease_owner, lease_expires_at, attempts, executed_at, response_status, response_headers, response_body, response_truncated, error_code, error_message, next_reminder_at, escalate_at) FROM stdin;
01a235a3-e554-79a5-8222-f0c0fb7f95c9	b-0	01a235a3-de3a-7fe8-b5ac-ad39996579d7	stripe	pay	b3	POST	http://127.0.0.1:39099/v1/refunds/0	{"Content-Type": "application/json"}	\\x7b22616d6f756e74223a3530307d	refund for b-0	{}	\\x01266eef9a15f838861bc6346288c11933b47968d56b0a35894fd3dbb1e501dc	{"id": "pay", "mode": "rules", "quorum": 1, "max_attempts": 3, "window_seconds": 3600, "exec_timeout_ms": 10000, "idempotency_keys": false}	{01a235a3-de52-72b9-83e2-74ca032d4af4,01a235a3-de68-71fd-bb0d-d65ea92843ec,01a235a3-de87-7494-9fb5-184eda90b11c}	1	pending	2026-12-02 07:24:23.254409+00	2026-12-02 07:24:23.254409+00	2026-12-02 08:24:23.255+00	\N	\N	\N	\N	\N	0	\N	\N	\N	\N	f	\N	\N	\N	\N
01a235a3-e554-7e77-8a13-2dfc1aa31ce8	b-2	01a235a3-de3a-7fe8-b5ac-ad39996579d7	stripe	pay	b3	POST	http://127.0.0.1:39099/v1/refunds/2	{"Content-Type": "application/json"}	\\x7b22616d6f756e74223a3530307d	refund for b-2	{}	\\x04cb753460e0e40fc4dfdf5f8e20a7561f942a609aae8165022b8dfaade0bf4e	{"id": "pay", "mode": "rules", "quorum": 1, "max_attempts": 3, "window_seconds": 3600, "exec_timeout_ms": 10000, "idempotency_keys": false}	{01a235a3-de52-72b9-83e2-74ca032d4af4,01a235a3-de68-71fd-bb0d-d65ea92843ec,01a235a3-de87-7494-9fb5-184eda90b11c}	1	pending	2026-12-02 07:24:23.254409+00	2026-12-02 07:24:23.254409+00	2026-12-02 08:24:23.255+00	\N	\N	\N	\N	\N	0	\N	\N	\N	\N	f	\N	\N	\N	\N
01a235a3-e554-77fd-9e3b-c889bfff7624	b-1	01a235a3-de3a-7fe8-b5ac-ad39996579d7	stripe	pay	b3	POST	http://127.0.0.1:39099/v1/refunds/1	{"Content-Type": "application/json"}	\\x7b22616d6f756e74223a3530307d	refund for b-1	{}	\\xce96edf86e912d81dff090c2a6f82e59569bd992a7f5af7db30950df3ddb666e	{"id": "pay", "mode": "rules", "quorum": 1, "max_attempts": 3, "window_seconds": 3600, "exec_timeout_ms": 10000, "idempotency_keys": false}	{01a235a3-de52-72b9-83e2-74ca032d4af4,01a235a3-de68-71fd-bb0d-d65ea92843ec,01a235a3-de87-7494-9fb5-184eda90b11c}	1	pending	2026-12-02 07:24:23.254409+00	2026-12-02 07:24:23.254409+00	2026-12-02 08:24:23.255+00	\N	\N	\N	\N	\N	0	\N	\N	\N	\N	f	\N	\N	\N	\N
01a235a3-e555-72d6-9133-18f5ecbf8188	voted	01a235a3-de3a-7fe8-b5ac-ad39996579d7	twice	two	\N	POST	http://127.0.0.1:39099/v1/refunds	{"Content-Type": "application/json"}	\\x7b22616d6f756e74223a3530307d	refund for voted	{}	\\xa0f57e8ed9052370c34eb0abf75b3ce63505c26a0d3f220abed7b3c46195053b	{"id": "two", "mode": "always", "quorum": 2, "max_attempts": 3, "window_seconds": 3600, "exec_timeout_ms": 30000, "idempotency_keys": false}	{01a235a3-de52-72b9-83e2-74ca032d4af4,01a235a3-de68-71fd-bb0d-d65ea92843ec,01a235a3-de87-7494-9fb5-184eda90b11c}	2	pending	2026-12-02 07:24:23.254409+00	2026-12-02 07:24:23.254409+00	2026-12-02 08:24:23.253+00	\N	\N	\N	\N	\N	0	\N	\N	\N	\N	f	\N	\N	\N	\N
01a235a3-e555-7388-b72c-954c63642d18	pend1	01a235a3-de3a-7fe8-b5ac-ad39996579d7	stripe	pay	\N	POST	http://127.0.0.1:39099/v1/refunds	{"Content-Type": "application/json"}	\\x7b22616d6f756e74223a3530307d	refund for pend1	{}	\\x41d8e6417975686bf4d0430cbc33139beffa39557eb935adbb15934e177da501	{"id": "pay", "mode": "rules", "quorum": 1, "max_attempts": 3, "window_seconds": 3600, "exec_timeout_ms": 10000, "idempotency_keys": false}	{01a235a3-de52-72b9-83e2-74ca032d4af4,01a235a3-de68-71fd-bb0d-d65ea92843ec,01a235a3-de87-7494-9fb5-184eda90b11c}	1	pending	2026-12-02 07:24:23.254409+00	2026-12-02 07:24:23.254409+00	2026-12-02 08:24:23.253+00	\N	\N	\N	\N	\N	0	\N	\N	\N	\N	f	\N	\N	\N	\N
01a235a3-e554-7a1b-bb6a-0bdf678d308b	exec1	01a235a3-de3a-7fe8-b5ac-ad39996579d7	stripe	pay	\N	POST	http://127.0.0.1:39099/v1/refunds	{"Content-Type": "application/json"}	\\x7b22616d6f756e74223a357d	refund for exec1	{}	\\x808f8f605f0a1c28bfb9e136ca8d4515caadee909059de81a861d05b2f1ef67e	{"id": "pay", "mode": "rules", "quorum": 1, "max_attempts": 3, "window_seconds": 3600, "exec_timeout_ms": 10000, "idempotency_keys": false}	{}	0	executed	2026-12-02 07:24:23.254409+00	2026-12-02 07:24:23.279428+00	2026-12-02 08:24:23.252+00	2026-12-02 07:24:23.259307+00	policy	\N	\N	\N	1	2026-12-02 07:24:23.284071+00	200	{"date": "Wed, 02 Dec 2026 07:24:23 GMT", "server": "BaseHTTP/0.6 Python/3.11.7", "content-type": "application/json", "content-length": "35"}	\\x7b226f6b223a20747275652c202270617468223a20222f76312f726566756e6473227d	f	\N	\N	\N	\N
01a235a3-e554-7384-affb-164c71238c60	exec2	01a235a3-de3a-7fe8-b5ac-ad39996579d7	stripe	pay	\N	POST	http://127.0.0.1:39099/v1/refunds	{"Content-Type": "application/json"}	\\x7b22616d6f756e74223a357d	refund for exec2	{}	\\x808f8f605f0a1c28bfb9e136ca8d4515caadee909059de81a861d05b2f1ef67e	{"id": "pay", "mode": "rules", "quorum": 1, "max_attempts": 3, "window_seconds": 3600, "exec_timeout_ms": 10000, "idempotency_keys": false}	{}	0	executed	2026-12-02 07:24:23.254409+00	2026-12-02 07:24:23.293011+00	2026-12-02 08:24:23.252+00	2026-12-02 07:24:23.259451+00	policy	\N	\N	\N	1	2026-12-02 07:24:23.29388+00	200	{"date": "Wed, 02 Dec 2026 07:24:23 GMT", "server": "BaseHTTP/0.6 Python/3.11.7", "content-type": "application/json", "content-length": "35"}	\\x7b226f6b223a20747275652c202270617468223a20222f76312f726566756e6473227d	f	\N	\N	\N	\N
01a235a3-e556-7588-b0f3-1e16bc638e7a	expire1	01a235a3-de3a-7fe8-b5ac-ad39996579d7	brief	short	\N	POST	http://127.0.0.1:39099/v1/refunds	{"Content-Type": "application/json"}	\\x7b22616d6f756e74223a3530307d	refund for expire1	{}	\\x5573ba5aaf4ba5c757a027daedc75b56decd563cd4ab656550d4e2c3ef8394f2	{"id": "short", "mode": "always", "quorum": 1, "max_attempts": 3, "window_seconds": 2, "exec_timeout_ms": 30000, "idempotency_keys": false}	{01a235a3-de52-72b9-83e2-74ca032d4af4,01a235a3-de68-71fd-bb0d-d65ea92843ec}	1	expired	2026-12-02 07:24:23.254409+00	2026-12-02 07:24:25.342228+00	2026-12-02 07:24:25.254+00	2026-12-02 07:24:25.342396+00	scheduler:expirer	\N	\N	\N	0	\N	\N	\N	\N	f	\N	\N	\N	\N
01a235a3-e554-783c-960d-54eccbc41d41	appr1	01a235a3-de3a-7fe8-b5ac-ad39996579d7	stripe	pay	\N	POST	http://127.0.0.1:39099/v1/refunds	{"Content-Type": "application/json"}	\\x7b22616d6f756e74223a3530307d	refund for appr1	{}	\\x41d8e6417975686bf4d0430cbc33139beffa39557eb935adbb15934e177da501	{"id": "pay", "mode": "rules", "quorum": 1, "max_attempts": 3, "window_seconds": 3600, "exec_timeout_ms": 10000, "idempotency_keys": false}	{01a235a3-de52-72b9-83e2-74ca032d4af4,01a235a3-de68-71fd-bb0d-d65ea92843ec,01a235a3-de87-7494-9fb5-184eda90b11c}	1	approved	2026-12-02 07:24:23.254409+00	2026-12-02 07:24:25.579094+00	2026-12-02 08:24:23.252+00	2026-12-02 07:24:25.583723+00	operator:bob	\N	\N	\N	0	\N	\N	\N	\N	f	\N	\N	\N	\N
01a235a3-e554-76c9-9394-7176139187a2	deny1	01a235a3-de3a-7fe8-b5ac-ad39996579d7	stripe	pay	\N	POST	http://127.0.0.1:39099/v1/refunds	{"Content-Type": "application/json"}	\\x7b22616d6f756e74223a3530307d	refund for deny1	{}	\\x41d8e6417975686bf4d0430cbc33139beffa39557eb935adbb15934e177da501	{"id": "pay", "mode": "rules", "quorum": 1, "max_attempts": 3, "window_seconds": 3600, "exec_timeout_ms": 10000, "idempotency_keys": false}	{01a235a3-de52-72b9-83e2-74ca032d4af4,01a235a3-de68-71fd-bb0d-d65ea92843ec,01a235a3-de87-7494-9fb5-184eda90b11c}	1	denied	2026-12-02 07:24:23.254409+00	2026-12-02 07:24:25.625439+00	2026-12-02 08:24:23.252+00	2026-12-02 07:24:25.629679+00	operator:bob	no	\N	\N	0	\N	\N	\N	\N	f	\N	\N	\N	\N
01a235a3-e554-7849-928e-26f9bbc8e77d	canc1	01a235a3-de3a-7fe8-b5ac-ad39996579d7	stripe	pay	\N	POST	http://127.0.0.1:39099/v1/refunds	{"Content-Type": "application/json"}	\\x7b22616d6f756e74223a3530307d	refund for canc1	{}	\\x41d8e6417975686bf4d0430cbc33139beffa39557eb935adbb15934e177da501	{"id": "pay", "mode": "rules", "quorum": 1, "max_attempts": 3, "window_seconds": 3600, "exec_timeout_ms": 10000, "idempotency_keys": false}	{01a235a3-de52-72b9-83e2-74ca032d4af4,01a235a3-de68-71fd-bb0d-d65ea92843ec,01a235a3-de87-7494-9fb5-184eda90b11c}	1	cancelled	2026-12-02 07:24:23.254409+00	2026-12-02 07:24:25.666625+00	2026-12-02 08:24:23.252+00	2026-12-02 07:24:25.668573+00	operator:cli	oops	\N	\N	0	\N	\N	\N	\N	f	\N	\N	\N	\N
01a235a3-e554-72e4-8f53-736cab2c3131	inflight	01a235a3-de3a-7fe8-b5ac-ad39996579d7	stripe	pay	\N	POST	http://127.0.0.1:39099/v1/slow	{"Content-Type": "application/json"}	\\x7b22616d6f756e74223a357d	refund for inflight	{}	\\xc3718cc1a359e53703d33a0134f43c78a840ed79a87010b7c1235bf4ff426a76	{"id": "pay", "mode": "rules", "quorum": 1, "max_attempts": 3, "window_seconds": 3600, "exec_timeout_ms": 10000, "idempotency_keys": false}	{}	0	executing	2026-12-02 07:24:23.254409+00	2026-12-02 07:24:23.264048+00	2026-12-02 08:24:23.252+00	2026-12-02 07:24:23.259474+00	policy	\N	worker1/0ef4875c	2026-12-02 07:25:03.267258+00	1	\N	\N	\N	\N	f	\N	\N	\N	\N
01a235a3-e554-774e-85dc-c5a435b94adb	fail1	01a235a3-de3a-7fe8-b5ac-ad39996579d7	stripe	pay	\N	POST	http://127.0.0.1:39099/v1/fail	{"Content-Type": "application/json"}	\\x7b22616d6f756e74223a357d	refund for fail1	{}	\\xfebdbe87ee1b7aaa3a6d147b0f844dfb51b2d6477abc6077a38407805a17ccfa	{"id": "pay", "mode": "rules", "quorum": 1, "max_attempts": 3, "window_seconds": 3600, "exec_timeout_ms": 10000, "idempotency_keys": false}	{}	0	failed	2026-12-02 07:24:23.254409+00	2026-12-02 07:24:23.293011+00	2026-12-02 08:24:23.252+00	2026-12-02 07:24:23.259462+00	policy	\N	\N	\N	1	2026-12-02 07:24:23.293998+00	\N	\N	\N	f	outcome_unknown	Server returned nothing (no headers, no data) after the call was sent; the provider may have received it, and it is not re-run	\N	\N
\.


--
-- Data for Name: approvers; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.approvers (id, name, email, webhook_url, slack_webhook_url, agent_id, created_at, disabled_at, oidc_subject) FROM stdin;
01a235a3-de52-72b9-83e2-74ca032d4af4	alice	\N	\N	\N	\N	2026-12-02 07:24:21.461359+00	\N	\N
01a235a3-de68-71fd-bb0d-d65ea92843ec	bob	\N	\N	\N	\N	2026-12-02 07:24:21.484223+00	\N	\N
01a235a3-de87-7494-9fb5-184eda90b11c	carol	\N	\N	\N	\N	2026-12-02 07:24:21.514865+00	\N	\N
\.


--
-- Data for Name: audit; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.audit (id, txid, at, actor, action, approval_id, detail) FROM stdin;
1	783	2026-12-02 07:24:23.260955+00	agent:bot1	approval.created	01a235a3-e554-79a5-8222-f0c0fb7f95c9	{"url": "http://127.0.0.1:39099/v1/refunds/0", "digest": "01266eef9a15f838861bc6346288c11933b47968d56b0a35894fd3dbb1e501dc", "method": "POST", "quorum": 1, "reason": "refund for b-0", "status": "pending", "batch_id": "b3", "grant_id": "stripe", "policy_id": "pay", "request_id": "b-0"}
2	783	2026-12-02 07:24:23.261135+00	agent:bot1	approval.created	01a235a3-e554-7e77-8a13-2dfc1aa31ce8	{"url": "http://127.0.0.1:39099/v1/refunds/2", "digest": "04cb753460e0e40fc4dfdf5f8e20a7561f942a609aae8165022b8dfaade0bf4e", "method": "POST", "quorum": 1, "reason": "refund for b-2", "status": "pending", "batch_id": "b3", "grant_id": "stripe", "policy_id": "pay", "request_id": "b-2"}
3	783	2026-12-02 07:24:23.261144+00	agent:bot1	approval.created	01a235a3-e554-7a1b-bb6a-0bdf678d308b	{"url": "http://127.0.0.1:39099/v1/refunds", "digest": "808f8f605f0a1c28bfb9e136ca8d4515caadee909059de81a861d05b2f1ef67e", "method": "POST", "quorum": 0, "reason": "refund for exec1", "status": "approved", "batch_id": null, "grant_id": "stripe", "policy_id": "pay", "request_id": "exec1"}
4	783	2026-12-02 07:24:23.261154+00	agent:bot1	approval.created	01a235a3-e554-783c-960d-54eccbc41d41	{"url": "http://127.0.0.1:39099/v1/refunds", "digest": "41d8e6417975686bf4d0430cbc33139beffa39557eb935adbb15934e177da501", "method": "POST", "quorum": 1, "reason": "refund for appr1", "status": "pending", "batch_id": null, "grant_id": "stripe", "policy_id": "pay", "request_id": "appr1"}
5	783	2026-12-02 07:24:23.26116+00	agent:bot1	approval.created	01a235a3-e554-76c9-9394-7176139187a2	{"url": "http://127.0.0.1:39099/v1/refunds", "digest": "41d8e6417975686bf4d0430cbc33139beffa39557eb935adbb15934e177da501", "method": "POST", "quorum": 1, "reason": "refund for deny1", "status": "pending", "batch_id": null, "grant_id": "stripe", "policy_id": "pay", "request_id": "deny1"}
6	783	2026-12-02 07:24:23.261166+00	agent:bot1	approval.created	01a235a3-e554-7849-928e-26f9bbc8e77d	{"url": "http://127.0.0.1:39099/v1/refunds", "digest": "41d8e6417975686bf4d0430cbc33139beffa39557eb935adbb15934e177da501", "method": "POST", "quorum": 1, "reason": "refund for canc1", "status": "pending", "batch_id": null, "grant_id": "stripe", "policy_id": "pay", "request_id": "canc1"}
7	783	2026-12-02 07:24:23.261172+00	agent:bot1	approval.created	01a235a3-e554-77fd-9e3b-c889bfff7624	{"url": "http://127.0.0.1:39099/v1/refunds/1", "digest": "ce96edf86e912d81dff090c2a6f82e59569bd992a7f5af7db30950df3ddb666e", "method": "POST", "quorum": 1, "reason": "refund for b-1", "status": "pending", "batch_id": "b3", "grant_id": "stripe", "policy_id": "pay", "request_id": "b-1"}
8	783	2026-12-02 07:24:23.261178+00	agent:bot1	approval.created	01a235a3-e554-7384-affb-164c71238c60	{"url": "http://127.0.0.1:39099/v1/refunds", "digest": "808f8f605f0a1c28bfb9e136ca8d4515caadee909059de81a861d05b2f1ef67e", "method": "POST", "quorum": 0, "reason": "refund for exec2", "status": "approved", "batch_id": null, "grant_id": "stripe", "policy_id": "pay", "request_id": "exec2"}
9	783	2026-12-02 07:24:23.261187+00	agent:bot1	approval.created	01a235a3-e554-774e-85dc-c5a435b94adb	{"url": "http://127.0.0.1:39099/v1/fail", "digest": "febdbe87ee1b7aaa3a6d147b0f844dfb51b2d6477abc6077a38407805a17ccfa", "method": "POST", "quorum": 0, "reason": "refund for fail1", "status": "approved", "batch_id": null, "grant_id": "stripe", "policy_id": "pay", "request_id": "fail1"}
10	783	2026-12-02 07:24:23.261193+00	agent:bot1	approval.created	01a235a3-e554-72e4-8f53-736cab2c3131	{"url": "http://127.0.0.1:39099/v1/slow", "digest": "c3718cc1a359e53703d33a0134f43c78a840ed79a87010b7c1235bf4ff426a76", "method": "POST", "quorum": 0, "reason": "refund for inflight", "status": "approved", "batch_id": null, "grant_id": "stripe", "policy_id": "pay", "request_id": "inflight"}
11	783	2026-12-02 07:24:23.261201+00	agent:bot1	approval.created	01a235a3-e555-72d6-9133-18f5ecbf8188	{"url": "http://127.0.0.1:39099/v1/refunds", "digest": "a0f57e8ed9052370c34eb0abf75b3ce63505c26a0d3f220abed7b3c46195053b", "method": "POST", "quorum": 2, "reason": "refund for voted", "status": "pending", "batch_id": null, "grant_id": "twice", "policy_id": "two", "request_id": "voted"}
12	783	2026-12-02 07:24:23.261207+00	agent:bot1	approval.created	01a235a3-e555-7388-b72c-954c63642d18	{"url": "http://127.0.0.1:39099/v1/refunds", "digest": "41d8e6417975686bf4d0430cbc33139beffa39557eb935adbb15934e177da501", "method": "POST", "quorum": 1, "reason": "refund for pend1", "status": "pending", "batch_id": null, "grant_id": "stripe", "policy_id": "pay", "request_id": "pend1"}
13	783	2026-12-02 07:24:23.261213+00	agent:bot1	approval.created	01a235a3-e556-7588-b0f3-1e16bc638e7a	{"url": "http://127.0.0.1:39099/v1/refunds", "digest": "5573ba5aaf4ba5c757a027daedc75b56decd563cd4ab656550d4e2c3ef8394f2", "method": "POST", "quorum": 1, "reason": "refund for expire1", "status": "pending", "batch_id": null, "grant_id": "brief", "policy_id": "short", "request_id": "expire1"}
14	785	2026-12-02 07:24:23.266815+00	worker:ingest	batch.sealed	\N	{"count": 3, "members": 3, "batch_uid": "01a235a3-e556-7b82-99e3-479796fcefd6"}
15	784	2026-12-02 07:24:23.267503+00	worker:worker1/0ef4875c	approval.executing	01a235a3-e554-7a1b-bb6a-0bdf678d308b	{"attempt": 1}
16	784	2026-12-02 07:24:23.267606+00	worker:worker1/0ef4875c	approval.executing	01a235a3-e554-7384-affb-164c71238c60	{"attempt": 1}
17	784	2026-12-02 07:24:23.26761+00	worker:worker1/0ef4875c	approval.executing	01a235a3-e554-774e-85dc-c5a435b94adb	{"attempt": 1}
18	784	2026-12-02 07:24:23.267613+00	worker:worker1/0ef4875c	approval.executing	01a235a3-e554-72e4-8f53-736cab2c3131	{"attempt": 1}
19	785	2026-12-02 07:24:23.268984+00	worker:ingest	batch.decidable	\N	{"digest": "05fa38da670c4aa4a0f1fc52d6eb2a6d8e62fc0b6c9cbe2ad5681358707e8963", "members": 3, "batch_id": "b3", "batch_uid": "01a235a3-e556-7b82-99e3-479796fcefd6"}
20	786	2026-12-02 07:24:23.290842+00	worker:worker1/0ef4875c	approval.executed	01a235a3-e554-7a1b-bb6a-0bdf678d308b	{"attempts": 1, "body_bytes": 35, "status_code": 200, "body_truncated": false}
21	787	2026-12-02 07:24:23.294118+00	worker:worker1/0ef4875c	approval.executed	01a235a3-e554-7384-affb-164c71238c60	{"attempts": 1, "body_bytes": 35, "status_code": 200, "body_truncated": false}
22	787	2026-12-02 07:24:23.294132+00	worker:worker1/0ef4875c	approval.failed	01a235a3-e554-774e-85dc-c5a435b94adb	{"attempts": 1, "error_code": "outcome_unknown", "body_truncated": false}
23	845	2026-12-02 07:24:25.345758+00	scheduler:expirer	approval.expired	01a235a3-e556-7588-b0f3-1e16bc638e7a	{"expires_at": "2026-12-02T07:24:25.254+00:00"}
24	852	2026-12-02 07:24:25.531894+00	operator:alice	vote.approve	01a235a3-e555-72d6-9133-18f5ecbf8188	{"reason": "one of two", "cast_by": "01a235a3-de52-72b9-83e2-74ca032d4af4", "approver_id": "01a235a3-de52-72b9-83e2-74ca032d4af4"}
25	859	2026-12-02 07:24:25.581255+00	operator:bob	vote.approve	01a235a3-e554-783c-960d-54eccbc41d41	{"cast_by": "01a235a3-de68-71fd-bb0d-d65ea92843ec", "approver_id": "01a235a3-de68-71fd-bb0d-d65ea92843ec"}
26	859	2026-12-02 07:24:25.586829+00	operator:bob	approval.approved	01a235a3-e554-783c-960d-54eccbc41d41	{"decided_by": "operator:bob"}
27	860	2026-12-02 07:24:25.627622+00	operator:bob	vote.deny	01a235a3-e554-76c9-9394-7176139187a2	{"reason": "no", "cast_by": "01a235a3-de68-71fd-bb0d-d65ea92843ec", "approver_id": "01a235a3-de68-71fd-bb0d-d65ea92843ec"}
28	860	2026-12-02 07:24:25.631421+00	operator:bob	approval.denied	01a235a3-e554-76c9-9394-7176139187a2	{"reason": "no", "decided_by": "operator:bob"}
29	861	2026-12-02 07:24:25.670349+00	operator:cli	approval.cancelled	01a235a3-e554-7849-928e-26f9bbc8e77d	{"reason": "oops"}
\.


--
-- Data for Name: audit_seal; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.audit_seal (seq, from_txid, to_txid, entries, entries_hash, prev_hash, hash, sealed_at) FROM stdin;
1	1	793	22	\\x60cd9e8c895cd6335efbfc4c452bdbe5ab13bc758ea04661dcc1542c635174cf	\\x0000000000000000000000000000000000000000000000000000000000000000	\\x2ee23a41848446b1958af45bdef9362ad71dbed2244d0c732687a046dddabc3b	2026-12-02 07:24:23.342191+00
2	793	850	1	\\x152c95946772f7e35a307d559a97e3144a8e735d6fd12aa4b5cd06bcfe9152a0	\\x2ee23a41848446b1958af45bdef9362ad71dbed2244d0c732687a046dddabc3b	\\xdbd3f90e08718f3e87859eded9a6844ec1c51802d80fed3121b91f262cf85991	2026-12-02 07:24:25.449554+00
3	850	858	1	\\x8651b23994cf41e5f719b00138de1e657e510419c958306a3d4e724d06308ac2	\\xdbd3f90e08718f3e87859eded9a6844ec1c51802d80fed3121b91f262cf85991	\\xe50b7167d6cc8981fa74b6f04a4f2e6c51a7d2276c9b84a4a28c9188c426b750	2026-12-02 07:24:25.555108+00
4	858	867	5	\\xadd73f119591fd3f4f86ad592e96e65849d79c99a5ccfe66e8c5ff2c6c184ac0	\\xe50b7167d6cc8981fa74b6f04a4f2e6c51a7d2276c9b84a4a28c9188c426b750	\\xe15bcfcd185ef3368d346b8608a638cd6078fa6cf787763703fa149aa6f38324	2026-12-02 07:24:25.753827+00
\.


--
-- Data for Name: batch_votes; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.batch_votes (batch_uid, approver_id, cast_by, decision, denied_items, reason, created_at) FROM stdin;
\.


--
-- Data for Name: batches; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.batches (uid, agent_id, id, grant_id, policy_id, policy, approvers, quorum, expected, members, status, digest, created_at, expires_at, sealed_at, decidable_at, decided_at, decided_by, decision, finished_at) FROM stdin;
01a235a3-e556-7b82-99e3-479796fcefd6	01a235a3-de3a-7fe8-b5ac-ad39996579d7	b3	stripe	pay	{"id": "pay", "mode": "rules", "quorum": 1, "max_attempts": 3, "window_seconds": 3600, "exec_timeout_ms": 10000, "idempotency_keys": false}	{01a235a3-de52-72b9-83e2-74ca032d4af4,01a235a3-de68-71fd-bb0d-d65ea92843ec,01a235a3-de87-7494-9fb5-184eda90b11c}	1	3	3	decidable	\\x05fa38da670c4aa4a0f1fc52d6eb2a6d8e62fc0b6c9cbe2ad5681358707e8963	2026-12-02 07:24:23.254409+00	2026-12-02 08:24:23.255+00	2026-12-02 07:24:23.266776+00	2026-12-02 07:24:23.268941+00	\N	\N	\N	\N
\.


--
-- Data for Name: delegations; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.delegations (id, approver_id, delegate_id, starts_at, ends_at, created_at, revoked_at) FROM stdin;
\.


--
-- Data for Name: grant_agents; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.grant_agents (grant_id, agent_id) FROM stdin;
stripe	01a235a3-de3a-7fe8-b5ac-ad39996579d7
twice	01a235a3-de3a-7fe8-b5ac-ad39996579d7
brief	01a235a3-de3a-7fe8-b5ac-ad39996579d7
\.


--
-- Data for Name: grants; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.grants (id, secret, inject, inject_header, allowed_bases, idempotency_keys, policy_id, created_at, updated_at, disabled_at) FROM stdin;
stripe	\\x015009b6af02bee3b5e052fa1350bf1758f0df3aa74df54e4f7c37a9dff30f28b31404f5d9a4b3b2cfcf08885822053ff30d034d0109d581b69acf107e4be32f724476b54e	bearer	\N	{http://127.0.0.1:39099}	f	pay	2026-12-02 07:24:21.564661+00	2026-12-02 07:24:21.564661+00	\N
twice	\\x01ae9634093469b972e98d5dd3c3b246bcb07aefa83c831f01aee70dfa675d1d2336a380a591829e03e4edee44d1c8445b742b6af97e42b10618aadf5754ec788c60a90d71	bearer	\N	{http://127.0.0.1:39099}	f	two	2026-12-02 07:24:21.644319+00	2026-12-02 07:24:21.644319+00	\N
brief	\\x0103ea56d2ee3463b118130e4c08c7f4850b292c6f96f14ad805f1f30021c449c0ab58828eb26bebbefd2b5272b07bf687cd9d6c8f46f042d0cf59e8949f864d958320287f	bearer	\N	{http://127.0.0.1:39099}	f	short	2026-12-02 07:24:21.674972+00	2026-12-02 07:24:21.674972+00	\N
\.


--
-- Data for Name: notifications; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.notifications (id, approval_id, approver_id, recipient_id, kind, channel, status, attempts, next_attempt_at, last_error, created_at, sent_at, batch_uid) FROM stdin;
\.


--
-- Data for Name: oidc_logins; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.oidc_logins (state_hash, nonce, verifier, next_path, expires_at) FROM stdin;
\.


--
-- Data for Name: outbox; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.outbox (id, topic, key, payload, created_at) FROM stdin;
27	events	01a235a3-e554-783c-960d-54eccbc41d41	{"at": "2026-12-02T07:24:25.583723+00:00", "url": "http://127.0.0.1:39099/v1/refunds", "type": "approval.approved", "digest": "41d8e6417975686bf4d0430cbc33139beffa39557eb935adbb15934e177da501", "method": "POST", "status": "approved", "agent_id": "01a235a3-de3a-7fe8-b5ac-ad39996579d7", "attempts": 0, "event_id": "01a235a3-e554-783c-960d-54eccbc41d41:approved:0", "grant_id": "stripe", "created_at": "2026-12-02T07:24:23.254409+00:00", "decided_at": "2026-12-02T07:24:25.583723+00:00", "decided_by": "operator:bob", "expires_at": "2026-12-02T08:24:23.252+00:00", "request_id": "appr1", "approval_id": "01a235a3-e554-783c-960d-54eccbc41d41"}	2026-12-02 07:24:25.579094+00
28	events	01a235a3-e554-76c9-9394-7176139187a2	{"at": "2026-12-02T07:24:25.629679+00:00", "url": "http://127.0.0.1:39099/v1/refunds", "type": "approval.denied", "digest": "41d8e6417975686bf4d0430cbc33139beffa39557eb935adbb15934e177da501", "method": "POST", "status": "denied", "agent_id": "01a235a3-de3a-7fe8-b5ac-ad39996579d7", "attempts": 0, "event_id": "01a235a3-e554-76c9-9394-7176139187a2:denied:0", "grant_id": "stripe", "created_at": "2026-12-02T07:24:23.254409+00:00", "decided_at": "2026-12-02T07:24:25.629679+00:00", "decided_by": "operator:bob", "expires_at": "2026-12-02T08:24:23.252+00:00", "request_id": "deny1", "approval_id": "01a235a3-e554-76c9-9394-7176139187a2", "decision_reason": "no"}	2026-12-02 07:24:25.625439+00
29	results	01a235a3-e554-76c9-9394-7176139187a2	{"at": "2026-12-02T07:24:25.629679+00:00", "url": "http://127.0.0.1:39099/v1/refunds", "type": "result.denied", "digest": "41d8e6417975686bf4d0430cbc33139beffa39557eb935adbb15934e177da501", "method": "POST", "status": "denied", "agent_id": "01a235a3-de3a-7fe8-b5ac-ad39996579d7", "attempts": 0, "event_id": "01a235a3-e554-76c9-9394-7176139187a2:denied:0", "grant_id": "stripe", "created_at": "2026-12-02T07:24:23.254409+00:00", "decided_at": "2026-12-02T07:24:25.629679+00:00", "decided_by": "operator:bob", "expires_at": "2026-12-02T08:24:23.252+00:00", "request_id": "deny1", "approval_id": "01a235a3-e554-76c9-9394-7176139187a2", "decision_reason": "no"}	2026-12-02 07:24:25.625439+00
30	events	01a235a3-e554-7849-928e-26f9bbc8e77d	{"at": "2026-12-02T07:24:25.668573+00:00", "url": "http://127.0.0.1:39099/v1/refunds", "type": "approval.cancelled", "digest": "41d8e6417975686bf4d0430cbc33139beffa39557eb935adbb15934e177da501", "method": "POST", "status": "cancelled", "agent_id": "01a235a3-de3a-7fe8-b5ac-ad39996579d7", "attempts": 0, "event_id": "01a235a3-e554-7849-928e-26f9bbc8e77d:cancelled:0", "grant_id": "stripe", "created_at": "2026-12-02T07:24:23.254409+00:00", "decided_at": "2026-12-02T07:24:25.668573+00:00", "decided_by": "operator:cli", "expires_at": "2026-12-02T08:24:23.252+00:00", "request_id": "canc1", "approval_id": "01a235a3-e554-7849-928e-26f9bbc8e77d", "decision_reason": "oops"}	2026-12-02 07:24:25.666625+00
31	results	01a235a3-e554-7849-928e-26f9bbc8e77d	{"at": "2026-12-02T07:24:25.668573+00:00", "url": "http://127.0.0.1:39099/v1/refunds", "type": "result.cancelled", "digest": "41d8e6417975686bf4d0430cbc33139beffa39557eb935adbb15934e177da501", "method": "POST", "status": "cancelled", "agent_id": "01a235a3-de3a-7fe8-b5ac-ad39996579d7", "attempts": 0, "event_id": "01a235a3-e554-7849-928e-26f9bbc8e77d:cancelled:0", "grant_id": "stripe", "created_at": "2026-12-02T07:24:23.254409+00:00", "decided_at": "2026-12-02T07:24:25.668573+00:00", "decided_by": "operator:cli", "expires_at": "2026-12-02T08:24:23.252+00:00", "request_id": "canc1", "approval_id": "01a235a3-e554-7849-928e-26f9bbc8e77d", "decision_reason": "oops"}	2026-12-02 07:24:25.666625+00
\.


--
-- Data for Name: passkeys; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.passkeys (id, approver_id, credential_id, public_key, alg, sign_count, name, created_at, last_used_at, revoked_at) FROM stdin;
\.


--
-- Data for Name: policies; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.policies (id, mode, rules, quorum, window_seconds, exec_timeout_ms, max_attempts, amount_field, reminder_interval_s, escalate_after_s, created_at, updated_at, require_passkey, link_mode, link_lifetime_s) FROM stdin;
pay	rules	[{"op": ">", "path": "/v1/refunds*", "field": "amount", "value": 100, "method": "POST"}]	1	3600	10000	3	\N	\N	\N	2026-12-02 07:24:21.537947+00	2026-12-02 07:24:21.537947+00	f	signin	\N
two	always	[]	2	3600	30000	3	\N	\N	\N	2026-12-02 07:24:21.589875+00	2026-12-02 07:24:21.589875+00	f	signin	\N
short	always	[]	1	2	30000	3	\N	\N	\N	2026-12-02 07:24:21.616078+00	2026-12-02 07:24:21.616078+00	f	signin	\N
\.


--
-- Data for Name: policy_approvers; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.policy_approvers (policy_id, approver_id, escalation) FROM stdin;
pay	01a235a3-de52-72b9-83e2-74ca032d4af4	f
pay	01a235a3-de68-71fd-bb0d-d65ea92843ec	f
pay	01a235a3-de87-7494-9fb5-184eda90b11c	f
two	01a235a3-de52-72b9-83e2-74ca032d4af4	f
two	01a235a3-de68-71fd-bb0d-d65ea92843ec	f
two	01a235a3-de87-7494-9fb5-184eda90b11c	f
short	01a235a3-de52-72b9-83e2-74ca032d4af4	f
short	01a235a3-de68-71fd-bb0d-d65ea92843ec	f
\.


--
-- Data for Name: schema_migrations; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.schema_migrations (version, name, applied_at) FROM stdin;
1	001_core.sql	2026-12-02 07:24:18.294794+00
2	002_notifications.sql	2026-12-02 07:24:18.653367+00
3	003_batches_reminders.sql	2026-12-02 07:24:18.98062+00
4	004_audit_retention.sql	2026-12-02 07:24:19.042646+00
5	005_event_inline.sql	2026-12-02 07:24:19.04831+00
6	006_signin.sql	2026-12-02 07:24:19.05036+00
7	007_passkeys_link_mode.sql	2026-12-02 07:24:19.076076+00
\.


--
-- Data for Name: sessions; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.sessions (id, token_hash, approver_id, method, created_at, last_seen_at, idle_seconds, expires_at, revoked_at, user_agent, address) FROM stdin;
\.


--
-- Data for Name: signin_links; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.signin_links (token_hash, approver_id, next_path, purpose, created_at, expires_at, used_at) FROM stdin;
\.


--
-- Data for Name: votes; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.votes (approval_id, approver_id, cast_by, decision, reason, created_at, passkey_id) FROM stdin;
01a235a3-e555-72d6-9133-18f5ecbf8188	01a235a3-de52-72b9-83e2-74ca032d4af4	01a235a3-de52-72b9-83e2-74ca032d4af4	approve	one of two	2026-12-02 07:24:25.527944+00	\N
01a235a3-e554-783c-960d-54eccbc41d41	01a235a3-de68-71fd-bb0d-d65ea92843ec	01a235a3-de68-71fd-bb0d-d65ea92843ec	approve	\N	2026-12-02 07:24:25.579094+00	\N
01a235a3-e554-76c9-9394-7176139187a2	01a235a3-de68-71fd-bb0d-d65ea92843ec	01a235a3-de68-71fd-bb0d-d65ea92843ec	deny	no	2026-12-02 07:24:25.625439+00	\N
\.


--
-- Name: audit_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.audit_id_seq', 29, true);


--
-- Name: notifications_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.notifications_id_seq', 1, false);


--
-- Name: outbox_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.outbox_id_seq', 31, true);


--
-- Name: agents agents_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agents
    ADD CONSTRAINT agents_name_key UNIQUE (name);


--
-- Name: agents agents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agents
    ADD CONSTRAINT agents_pkey PRIMARY KEY (id);


--
-- Name: api_keys api_keys_key_hash_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash);


--
-- Name: api_keys api_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);


--
-- Name: approvals approvals_agent_id_request_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.approvals
    ADD CONSTRAINT approvals_agent_id_request_id_key UNIQUE (agent_id, request_id);


--
-- Name: approvals approvals_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.approvals
    ADD CONSTRAINT approvals_pkey PRIMARY KEY (id);


--
-- Name: approvers approvers_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.approvers
    ADD CONSTRAINT approvers_name_key UNIQUE (name);


--
-- Name: approvers approvers_oidc_subject_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.approvers
    ADD CONSTRAINT approvers_oidc_subject_key UNIQUE (oidc_subject);


--
-- Name: approvers approvers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.approvers
    ADD CONSTRAINT approvers_pkey PRIMARY KEY (id);


--
-- Name: audit audit_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit
    ADD CONSTRAINT audit_pkey PRIMARY KEY (id);


--
-- Name: audit_seal audit_seal_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_seal
    ADD CONSTRAINT audit_seal_pkey PRIMARY KEY (seq);


--
-- Name: batch_votes batch_votes_batch_uid_cast_by_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.batch_votes
    ADD CONSTRAINT batch_votes_batch_uid_cast_by_key UNIQUE (batch_uid, cast_by);


--
-- Name: batch_votes batch_votes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.batch_votes
    ADD CONSTRAINT batch_votes_pkey PRIMARY KEY (batch_uid, approver_id);


--
-- Name: batches batches_agent_id_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.batches
    ADD CONSTRAINT batches_agent_id_id_key UNIQUE (agent_id, id);


--
-- Name: batches batches_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.batches
    ADD CONSTRAINT batches_pkey PRIMARY KEY (uid);


--
-- Name: delegations delegations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.delegations
    ADD CONSTRAINT delegations_pkey PRIMARY KEY (id);


--
-- Name: grant_agents grant_agents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.grant_agents
    ADD CONSTRAINT grant_agents_pkey PRIMARY KEY (grant_id, agent_id);


--
-- Name: grants grants_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.grants
    ADD CONSTRAINT grants_pkey PRIMARY KEY (id);


--
-- Name: notifications notifications_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_pkey PRIMARY KEY (id);


--
-- Name: oidc_logins oidc_logins_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oidc_logins
    ADD CONSTRAINT oidc_logins_pkey PRIMARY KEY (state_hash);


--
-- Name: outbox outbox_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.outbox
    ADD CONSTRAINT outbox_pkey PRIMARY KEY (id);


--
-- Name: passkeys passkeys_credential_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.passkeys
    ADD CONSTRAINT passkeys_credential_id_key UNIQUE (credential_id);


--
-- Name: passkeys passkeys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.passkeys
    ADD CONSTRAINT passkeys_pkey PRIMARY KEY (id);


--
-- Name: policies policies_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.policies
    ADD CONSTRAINT policies_pkey PRIMARY KEY (id);


--
-- Name: policy_approvers policy_approvers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.policy_approvers
    ADD CONSTRAINT policy_approvers_pkey PRIMARY KEY (policy_id, approver_id);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);


--
-- Name: sessions sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_pkey PRIMARY KEY (id);


--
-- Name: sessions sessions_token_hash_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_token_hash_key UNIQUE (token_hash);


--
-- Name: signin_links signin_links_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.signin_links
    ADD CONSTRAINT signin_links_pkey PRIMARY KEY (token_hash);


--
-- Name: votes votes_approval_id_cast_by_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.votes
    ADD CONSTRAINT votes_approval_id_cast_by_key UNIQUE (approval_id, cast_by);


--
-- Name: votes votes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.votes
    ADD CONSTRAINT votes_pkey PRIMARY KEY (approval_id, approver_id);


--
-- Name: api_keys_agent; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX api_keys_agent ON public.api_keys USING btree (agent_id);


--
-- Name: approvals_approved; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX approvals_approved ON public.approvals USING btree (decided_at) WHERE (status = 'approved'::text);


--
-- Name: approvals_batch; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX approvals_batch ON public.approvals USING btree (agent_id, batch_id) WHERE (batch_id IS NOT NULL);


--
-- Name: approvals_escalate; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX approvals_escalate ON public.approvals USING btree (escalate_at) WHERE ((status = 'pending'::text) AND (escalate_at IS NOT NULL));


--
-- Name: approvals_executing; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX approvals_executing ON public.approvals USING btree (lease_expires_at) WHERE (status = 'executing'::text);


--
-- Name: approvals_pending; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX approvals_pending ON public.approvals USING btree (expires_at) WHERE (status = 'pending'::text);


--
-- Name: approvals_reminder; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX approvals_reminder ON public.approvals USING btree (next_reminder_at) WHERE ((status = 'pending'::text) AND (next_reminder_at IS NOT NULL));


--
-- Name: approvals_terminal; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX approvals_terminal ON public.approvals USING btree (updated_at) WHERE (status = ANY (ARRAY['executed'::text, 'failed'::text, 'denied'::text, 'expired'::text, 'cancelled'::text]));


--
-- Name: audit_approval; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX audit_approval ON public.audit USING btree (approval_id) WHERE (approval_id IS NOT NULL);


--
-- Name: audit_txid; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX audit_txid ON public.audit USING btree (txid);


--
-- Name: batches_unfinished; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX batches_unfinished ON public.batches USING btree (created_at) WHERE (finished_at IS NULL);


--
-- Name: delegations_approver; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX delegations_approver ON public.delegations USING btree (approver_id, starts_at);


--
-- Name: notifications_approval; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX notifications_approval ON public.notifications USING btree (approval_id);


--
-- Name: notifications_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX notifications_due ON public.notifications USING btree (next_attempt_at) WHERE (status = 'queued'::text);


--
-- Name: oidc_logins_expiry; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX oidc_logins_expiry ON public.oidc_logins USING btree (expires_at);


--
-- Name: passkeys_approver; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX passkeys_approver ON public.passkeys USING btree (approver_id) WHERE (revoked_at IS NULL);


--
-- Name: sessions_approver; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX sessions_approver ON public.sessions USING btree (approver_id) WHERE (revoked_at IS NULL);


--
-- Name: sessions_expiry; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX sessions_expiry ON public.sessions USING btree (expires_at);


--
-- Name: signin_links_expiry; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX signin_links_expiry ON public.signin_links USING btree (expires_at);


--
-- Name: approvals approvals_guard; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER approvals_guard BEFORE UPDATE ON public.approvals FOR EACH ROW EXECUTE FUNCTION public.approvals_guard();


--
-- Name: approvals approvals_notify_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER approvals_notify_insert AFTER INSERT ON public.approvals FOR EACH ROW WHEN ((new.status = 'approved'::text)) EXECUTE FUNCTION public.approvals_notify();


--
-- Name: approvals approvals_notify_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER approvals_notify_update AFTER UPDATE OF status ON public.approvals FOR EACH ROW WHEN (((new.status IS DISTINCT FROM old.status) AND (new.status = ANY (ARRAY['approved'::text, 'executed'::text, 'failed'::text, 'denied'::text, 'expired'::text, 'cancelled'::text])))) EXECUTE FUNCTION public.approvals_notify();


--
-- Name: audit audit_append_only; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_append_only BEFORE DELETE OR UPDATE ON public.audit FOR EACH ROW EXECUTE FUNCTION public.append_only();


--
-- Name: audit audit_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON public.audit FOR EACH STATEMENT EXECUTE FUNCTION public.append_only();


--
-- Name: audit_seal audit_seal_append_only; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_seal_append_only BEFORE DELETE OR UPDATE ON public.audit_seal FOR EACH ROW EXECUTE FUNCTION public.append_only();


--
-- Name: audit_seal audit_seal_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_seal_no_truncate BEFORE TRUNCATE ON public.audit_seal FOR EACH STATEMENT EXECUTE FUNCTION public.append_only();


--
-- Name: notifications notifications_notify; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER notifications_notify AFTER INSERT ON public.notifications FOR EACH STATEMENT EXECUTE FUNCTION public.notifications_notify();


--
-- Name: outbox outbox_notify; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER outbox_notify AFTER INSERT ON public.outbox FOR EACH STATEMENT EXECUTE FUNCTION public.outbox_notify();


--
-- Name: api_keys api_keys_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id);


--
-- Name: approvals approvals_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.approvals
    ADD CONSTRAINT approvals_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id);


--
-- Name: approvals approvals_grant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.approvals
    ADD CONSTRAINT approvals_grant_id_fkey FOREIGN KEY (grant_id) REFERENCES public.grants(id);


--
-- Name: approvers approvers_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.approvers
    ADD CONSTRAINT approvers_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id);


--
-- Name: batch_votes batch_votes_approver_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.batch_votes
    ADD CONSTRAINT batch_votes_approver_id_fkey FOREIGN KEY (approver_id) REFERENCES public.approvers(id);


--
-- Name: batch_votes batch_votes_batch_uid_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.batch_votes
    ADD CONSTRAINT batch_votes_batch_uid_fkey FOREIGN KEY (batch_uid) REFERENCES public.batches(uid) ON DELETE CASCADE;


--
-- Name: batch_votes batch_votes_cast_by_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.batch_votes
    ADD CONSTRAINT batch_votes_cast_by_fkey FOREIGN KEY (cast_by) REFERENCES public.approvers(id);


--
-- Name: batches batches_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.batches
    ADD CONSTRAINT batches_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id);


--
-- Name: batches batches_grant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.batches
    ADD CONSTRAINT batches_grant_id_fkey FOREIGN KEY (grant_id) REFERENCES public.grants(id);


--
-- Name: delegations delegations_approver_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.delegations
    ADD CONSTRAINT delegations_approver_id_fkey FOREIGN KEY (approver_id) REFERENCES public.approvers(id);


--
-- Name: delegations delegations_delegate_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.delegations
    ADD CONSTRAINT delegations_delegate_id_fkey FOREIGN KEY (delegate_id) REFERENCES public.approvers(id);


--
-- Name: grant_agents grant_agents_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.grant_agents
    ADD CONSTRAINT grant_agents_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id);


--
-- Name: grant_agents grant_agents_grant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.grant_agents
    ADD CONSTRAINT grant_agents_grant_id_fkey FOREIGN KEY (grant_id) REFERENCES public.grants(id) ON DELETE CASCADE;


--
-- Name: grants grants_policy_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.grants
    ADD CONSTRAINT grants_policy_id_fkey FOREIGN KEY (policy_id) REFERENCES public.policies(id);


--
-- Name: notifications notifications_approval_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_approval_id_fkey FOREIGN KEY (approval_id) REFERENCES public.approvals(id) ON DELETE CASCADE;


--
-- Name: notifications notifications_approver_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_approver_id_fkey FOREIGN KEY (approver_id) REFERENCES public.approvers(id);


--
-- Name: notifications notifications_batch_uid_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_batch_uid_fkey FOREIGN KEY (batch_uid) REFERENCES public.batches(uid) ON DELETE CASCADE;


--
-- Name: notifications notifications_recipient_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_recipient_id_fkey FOREIGN KEY (recipient_id) REFERENCES public.approvers(id);


--
-- Name: passkeys passkeys_approver_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.passkeys
    ADD CONSTRAINT passkeys_approver_id_fkey FOREIGN KEY (approver_id) REFERENCES public.approvers(id);


--
-- Name: policy_approvers policy_approvers_approver_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.policy_approvers
    ADD CONSTRAINT policy_approvers_approver_id_fkey FOREIGN KEY (approver_id) REFERENCES public.approvers(id);


--
-- Name: policy_approvers policy_approvers_policy_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.policy_approvers
    ADD CONSTRAINT policy_approvers_policy_id_fkey FOREIGN KEY (policy_id) REFERENCES public.policies(id) ON DELETE CASCADE;


--
-- Name: sessions sessions_approver_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_approver_id_fkey FOREIGN KEY (approver_id) REFERENCES public.approvers(id) ON DELETE CASCADE;


--
-- Name: signin_links signin_links_approver_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.signin_links
    ADD CONSTRAINT signin_links_approver_id_fkey FOREIGN KEY (approver_id) REFERENCES public.approvers(id) ON DELETE CASCADE;


--
-- Name: votes votes_approval_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.votes
    ADD CONSTRAINT votes_approval_id_fkey FOREIGN KEY (approval_id) REFERENCES public.approvals(id) ON DELETE CASCADE;


--
-- Name: votes votes_approver_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.votes
    ADD CONSTRAINT votes_approver_id_fkey FOREIGN KEY (approver_id) REFERENCES public.approvers(id);


--
-- Name: votes votes_cast_by_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.votes
    ADD CONSTRAINT votes_cast_by_fkey FOREIGN KEY (cast_by) REFERENCES public.approvers(id);


--
-- Name: votes votes_passkey_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.votes
    ADD CONSTRAINT votes_passkey_id_fkey FOREIGN KEY (passkey_id) REFERENCES public.passkeys(id);


--
-- PostgreSQL database dump complete
--

\unrestrict 6rqjUXe1ZnnMIrPcqKadAUZrFNUbyTu0mAs2UsZPpGWJbrfdoJGYnBkq3qZA1gS

