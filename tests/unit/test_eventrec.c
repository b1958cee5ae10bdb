/*
 * test_eventrec.c -- unit tests of rendering an event's JSON from the record
 * a transition emitted (lib/cs_eventrec.c, migration 016).
 *
 * The first cases are records and documents Postgres 15 wrote for the same
 * rows (cs_event_rec / cs_result_rec / cs_created_rec next to cs_event /
 * cs_result, TimeZone UTC): quotes, backslashes, commas, parentheses, a
 * newline and non-ASCII text in the fields, an empty string beside NULLs.
 * The rendered JSON must equal Postgres's document (as JSON, not as bytes:
 * jsonb orders its keys its own way). tests/integration/test_event_records.py
 * compares the two on a live server, through the relay, for every state.
 */
#include <json-c/json.h>
#include <string.h>

#include "cs_eventrec.h"
#include "cs_mem.h"
#include "cs_test.h"

static const struct {
    const char *rec, *json;
} pg_cases[] = {
    {"(e,8f6ab64f-eaf5-4b3b-8cf4-e574fbb33d16,denied,0,template,4ce2855f-d977-43ce-b12c-3b8c8d616a75,g,,POST,http://127.0.0.1:1/v1/refunds,2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881,1796209949296666,1796213549296666,1796210510451449,\"approver:alice \"\"the, (great)\"\"\",\"no\\\\way, \"\"quoted\"\"\nnew line é ☃ \",,1796210510511172)",
     "{\"at\": \"2026-12-02T11:21:50.511172+00:00\", \"url\": \"http://127.0.0.1:1/v1/refunds\", \"type\": \"approval.denied\", \"digest\": \"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\", \"method\": \"POST\", \"status\": \"denied\", \"agent_id\": \"4ce2855f-d977-43ce-b12c-3b8c8d616a75\", \"attempts\": 0, \"event_id\": \"8f6ab64f-eaf5-4b3b-8cf4-e574fbb33d16:denied:0\", \"grant_id\": \"g\", \"created_at\": \"2026-12-02T11:12:29.296666+00:00\", \"decided_at\": \"2026-12-02T11:21:50.451449+00:00\", \"decided_by\": \"approver:alice \\\"the, (great)\\\"\", \"expires_at\": \"2026-12-02T12:12:29.296666+00:00\", \"request_id\": \"template\", \"approval_id\": \"8f6ab64f-eaf5-4b3b-8cf4-e574fbb33d16\", \"decision_reason\": \"no\\\\way, \\\"quoted\\\"\\nnew line é ☃ \"}"},
    {"(r,3f478ba4-1dab-482c-b316-abe1db68ea10,executed,1,template,4ce2855f-d977-43ce-b12c-3b8c8d616a75,g,b-1,POST,http://127.0.0.1:1/v1/refunds,2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881,1796209949296666,1796213549296666,1796210509469785,policy,,,1796210510511172,1796210510469785,201,\"{\"\"X-A\"\": \"\"b \\\\\"\"c\\\\\"\"\"\", \"\"Content-Type\"\": \"\"application/json\"\"}\",eyJvayI6dHJ1ZX0=,f,)", "{\"at\": \"2026-12-02T11:21:50.511172+00:00\", \"url\": \"http://127.0.0.1:1/v1/refunds\", \"type\": \"result.executed\", \"digest\": \"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\", \"method\": \"POST\", \"status\": \"executed\", \"headers\": {\"X-A\": \"b \\\"c\\\"\", \"Content-Type\": \"application/json\"}, \"agent_id\": \"4ce2855f-d977-43ce-b12c-3b8c8d616a75\", \"attempts\": 1, \"batch_id\": \"b-1\", \"body_b64\": \"eyJvayI6dHJ1ZX0=\", \"event_id\": \"3f478ba4-1dab-482c-b316-abe1db68ea10:executed:1\", \"grant_id\": \"g\", \"created_at\": \"2026-12-02T11:12:29.296666+00:00\", \"decided_at\": \"2026-12-02T11:21:49.469785+00:00\", \"decided_by\": \"policy\", \"expires_at\": \"2026-12-02T12:12:29.296666+00:00\", \"request_id\": \"template\", \"approval_id\": \"3f478ba4-1dab-482c-b316-abe1db68ea10\", \"executed_at\": \"2026-12-02T11:21:50.469785+00:00\", \"status_code\": 201, \"body_truncated\": false}"},
    {"(r,e98b9526-f6fa-4656-bd97-1c90548485b1,failed,3,template,4ce2855f-d977-43ce-b12c-3b8c8d616a75,g,,POST,http://127.0.0.1:1/v1/refunds,2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881,1796209949296666,1796213549296666,1796210510000000,\"\",,timeout,1796210510511172,,,,,,\"may have received, (x) \"\"y\"\"\")",
     "{\"at\": \"2026-12-02T11:21:50.511172+00:00\", \"url\": \"http://127.0.0.1:1/v1/refunds\", \"type\": \"result.failed\", \"digest\": \"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\", \"method\": \"POST\", \"status\": \"failed\", \"agent_id\": \"4ce2855f-d977-43ce-b12c-3b8c8d616a75\", \"attempts\": 3, \"event_id\": \"e98b9526-f6fa-4656-bd97-1c90548485b1:failed:3\", \"grant_id\": \"g\", \"created_at\": \"2026-12-02T11:12:29.296666+00:00\", \"decided_at\": \"2026-12-02T11:21:50+00:00\", \"decided_by\": \"\", \"error_code\": \"timeout\", \"expires_at\": \"2026-12-02T12:12:29.296666+00:00\", \"request_id\": \"template\", \"approval_id\": \"e98b9526-f6fa-4656-bd97-1c90548485b1\", \"error_message\": \"may have received, (x) \\\"y\\\"\"}"},
    {"(p,06b842b1-d85f-4969-8b79-8b5103e15538,pending,0,template,4ce2855f-d977-43ce-b12c-3b8c8d616a75,g,,POST,http://127.0.0.1:1/v1/refunds,2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881,1796209949296666,1796213549296666,,,,,1796210510511172,http://x/status/abc,\"{efd32128-6c8d-4d58-aa45-5fdb59a57d26,0005bc0a-0f00-4a5d-9555-b7083648b9b0}\")",
     "{\"at\": \"2026-12-02T11:21:50.511172+00:00\", \"url\": \"http://127.0.0.1:1/v1/refunds\", \"type\": \"approval.pending\", \"digest\": \"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\", \"method\": \"POST\", \"status\": \"pending\", \"agent_id\": \"4ce2855f-d977-43ce-b12c-3b8c8d616a75\", \"attempts\": 0, \"event_id\": \"06b842b1-d85f-4969-8b79-8b5103e15538:pending:0\", \"grant_id\": \"g\", \"approvers\": [\"efd32128-6c8d-4d58-aa45-5fdb59a57d26\", \"0005bc0a-0f00-4a5d-9555-b7083648b9b0\"], \"created_at\": \"2026-12-02T11:12:29.296666+00:00\", \"expires_at\": \"2026-12-02T12:12:29.296666+00:00\", \"request_id\": \"template\", \"approval_id\": \"06b842b1-d85f-4969-8b79-8b5103e15538\", \"approval_url\": \"http://x/status/abc\"}"},
};

CS_TEST(renders_what_postgres_builds)
{
    for (size_t i = 0; i < sizeof(pg_cases) / sizeof(pg_cases[0]); i++) {
        char *out = NULL, err[CS_ERRLEN];
        size_t n = 0;
        if (!CS_CHECK_RC(
                cs_eventrec_render(pg_cases[i].rec, strlen(pg_cases[i].rec), &out, &n, err), CS_OK))
            continue;
        CS_CHECK(cs_eventrec_is(pg_cases[i].rec, strlen(pg_cases[i].rec)));
        CS_CHECK(n == strlen(out));
        json_object *got = json_tokener_parse(out), *want = json_tokener_parse(pg_cases[i].json);
        CS_CHECK(got && want);
        if (!CS_CHECK(json_object_equal(got, want)))
            fprintf(stderr, "case %zu:\n got  %s\n want %s\n", i, out, pg_cases[i].json);
        json_object_put(got);
        json_object_put(want);
        cs_free(out);
    }
}

CS_TEST(json_payloads_are_not_records)
{
    CS_CHECK(!cs_eventrec_is("{\"event_id\":\"x\"}", 16));
    CS_CHECK(!cs_eventrec_is("", 0));
}

CS_TEST(times_are_rfc3339_utc)
{
    static const struct {
        const char *us, *iso;
    } t[] = {{"0", "1970-01-01T00:00:00+00:00"},
             {"1796210510000000", "2026-12-02T11:21:50+00:00"},
             {"1796210510500000", "2026-12-02T11:21:50.5+00:00"},
             {"1796210510000001", "2026-12-02T11:21:50.000001+00:00"}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char rec[400], *out = NULL, err[CS_ERRLEN];
        size_t n;
        snprintf(rec, sizeof(rec),
                 "(e,0190abcd-0000-7000-8000-000000000001,expired,0,r1,"
                 "0190abcd-0000-7000-8000-000000000002,g,,POST,https://p/x,00,%s,%s,,,,,%s)",
                 t[i].us, t[i].us, t[i].us);
        if (!CS_CHECK_RC(cs_eventrec_render(rec, strlen(rec), &out, &n, err), CS_OK))
            continue;
        json_object *o = json_tokener_parse(out), *v = NULL;
        CS_CHECK(json_object_object_get_ex(o, "created_at", &v));
        CS_CHECK_EQ_STR(json_object_get_string(v), t[i].iso);
        CS_CHECK(!json_object_object_get_ex(o, "decided_at", NULL)); /* NULL: left out */
        json_object_put(o);
        cs_free(out);
    }
}

CS_TEST(refuses_malformed_records)
{
    static const char *const bad[] = {
        "",
        "(",
        ")",
        "()",
        "(e)",
        "x(e)",
        /* unknown kind, wrong field counts */
        "(z,a,pending,0,r,g1,g,,POST,u,00,1,1,,,,,1)",
        "(e,a,pending,0,r,g1,g,,POST,u,00,1,1,,,,,1,extra)",
        "(r,a,pending,0,r,g1,g,,POST,u,00,1,1,,,,,1)",
        /* quoting */
        "(e,\"a,pending,0,r,g1,g,,POST,u,00,1,1,,,,,1)",
        "(e,\"a\"x,pending,0,r,g1,g,,POST,u,00,1,1,,,,,1)",
        "(e,a\"b,pending,0,r,g1,g,,POST,u,00,1,1,,,,,1)",
        "(e,a,pending,0,r,g1,g,,POST,u,00,1,1,,,,,1\\)",
        /* values */
        "(e,a,pending,x,r,g1,g,,POST,u,00,1,1,,,,,1)",
        "(e,a,pending,-1,r,g1,g,,POST,u,00,1,1,,,,,1)",
        "(e,a,pending,9401796213549296666,r,g1,g,,POST,u,00,1,1,,,,,1)", /* overflow, fuzz */
        "(e,a,pending,0,r,g1,g,,POST,u,00,soon,1,,,,,1)",
        "(e,a,pending,0,r,g1,g,,POST,u,00,-5,1,,,,,1)",
        "(e,a,pending,0,r,g1,g,,POST,u,00,99999999999999999999,1,,,,,1)",
        "(e,,pending,0,r,g1,g,,POST,u,00,1,1,,,,,1)",
        "(p,a,pending,0,r,g1,g,,POST,u,00,1,1,,,,,1,https://x,\"{a,b}\")",
        "(p,a,pending,0,r,g1,g,,POST,u,00,1,1,,,,,1,https://x,)",
        "(r,a,executed,1,r,g1,g,,POST,u,00,1,1,1,,,,1,1,200,\"{\"\"a\"\":\",,f,)",
        "(r,a,executed,1,r,g1,g,,POST,u,00,1,1,1,,,,1,1,200,,,maybe,)",
        "(r,a,executed,1,r,g1,g,,POST,u,00,1,1,1,,,,1,1,2000,,,,)",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *out = (char *)"x", err[CS_ERRLEN] = "";
        size_t n = 9;
        if (!CS_CHECK_RC(cs_eventrec_render(bad[i], strlen(bad[i]), &out, &n, err), CS_ERR_INVALID))
            fprintf(stderr, "accepted: %s\n", bad[i]);
        CS_CHECK(out == NULL && n == 0 && err[0] != '\0');
    }
    /* A NUL inside is refused, quoted or not. */
    static const char nul[] = "(e,a\0b,pending,0,r,g1,g,,POST,u,00,1,1,,,,,1)";
    char *out = NULL, err[CS_ERRLEN];
    size_t n;
    CS_CHECK_RC(cs_eventrec_render(nul, sizeof(nul) - 1, &out, &n, err), CS_ERR_INVALID);
}

CS_TEST_MAIN(CS_RUN(renders_what_postgres_builds), CS_RUN(json_payloads_are_not_records),
             CS_RUN(times_are_rfc3339_utc), CS_RUN(refuses_malformed_records))
