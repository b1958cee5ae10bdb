/*
 * fuzz_approval_row.c -- libFuzzer target: the approval row the ingest
 * writes as JSON text for every accepted envelope
 * (lib/cs_approval.c cs_approval_row_write), the one place untrusted
 * strings -- reason, url, headers, context, request_id -- are escaped by
 * hand rather than by json-c.
 *
 * Input: a Kafka request envelope. When cs_request_parse accepts it, its
 * row is written for a fixed agent and grant (pending), and the row must
 * be one JSON object that our own parser (the strict one guarding every
 * input; Postgres accepts what it accepts) takes, whose fields are the
 * request's: the strings byte for byte, the body through base64, headers
 * and context equal as JSON; its approval_url is the approval's status
 * page, <public URL>/status/<token>, the token verifying with the
 * approval link key for the row's id, naming nobody, until expires_ms +
 * CS_LINK_GRACE_MS; no row has the former `links`. A second, approved row
 * written after it in the same buffer leaves the first byte for byte as
 * it was, and holds the same fields with no approval_url.
 */
#include "cs_approval.h"
#include "cs_buf.h"
#include "cs_link.h"
#include "fuzz_request.h"

#define AGENT "0190a5d0-ac96-774b-bcce-b302099a8059"
#define ALICE "0190a5d0-ac96-774b-bcce-b302099a8057"
#define PUBLIC "https://cs.example.com/"
#define STATUS "https://cs.example.com/status/"

static const char *str_of(json_object *o, const char *k)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static json_object *field(json_object *o, const char *k)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, k, &v) ? v : NULL;
}

/*
 * The row at text[len] is a JSON object holding rq's fields, approval id
 * `id` expiring at expires_ms; pending (with its approval_url) or not.
 */
static void check_row(const char *text, size_t len, const struct cs_request *rq,
                      const struct cs_link_keys *keys, const char *id, int64_t expires_ms,
                      bool pending)
{
    char err[CS_ERRLEN];
    json_object *row = NULL;
    enum cs_err rc = cs_json_parse(text, len, &row, err);
    if (rc != CS_OK)
        fprintf(stderr, "row refused: %s\n%.*s\n", err, (int)(len < 400 ? len : 400), text);
    FUZZ_CHECK(rc == CS_OK && json_object_is_type(row, json_type_object));
    FUZZ_CHECK(str_of(row, "id") && strcmp(str_of(row, "id"), id) == 0);
    FUZZ_CHECK(rq->request_id && str_of(row, "request_id") &&
               strcmp(str_of(row, "request_id"), rq->request_id) == 0);
    FUZZ_CHECK(str_of(row, "method") && strcmp(str_of(row, "method"), rq->method) == 0);
    FUZZ_CHECK(str_of(row, "url") && strcmp(str_of(row, "url"), rq->url) == 0);
    FUZZ_CHECK(str_of(row, "reason") && strcmp(str_of(row, "reason"), rq->reason) == 0);
    FUZZ_CHECK(json_object_equal(field(row, "headers"), rq->headers));
    FUZZ_CHECK(json_object_equal(field(row, "context"), rq->context));
    const char *b64 = str_of(row, "body_b64");
    FUZZ_CHECK(b64 != NULL);
    unsigned char *body = NULL;
    size_t n = 0;
    FUZZ_CHECK(cs_b64_decode(b64, strlen(b64), false, &body, &n) == CS_OK);
    FUZZ_CHECK(n == rq->body_len && (n == 0 || memcmp(body, rq->body, n) == 0));
    cs_free(body);

    FUZZ_CHECK(field(row, "links") == NULL);
    const char *url = str_of(row, "approval_url");
    if (!pending || rq->batch_id) { /* a batch member has no link of its own */
        FUZZ_CHECK(field(row, "approval_url") == NULL);
    } else {
        FUZZ_CHECK(url && strncmp(url, STATUS, strlen(STATUS)) == 0);
        struct cs_link l;
        FUZZ_CHECK(cs_link_verify(keys->approval, url + strlen(STATUS),
                                  expires_ms + CS_LINK_GRACE_MS - 1, &l, err) == CS_OK);
        FUZZ_CHECK(strcmp(l.approval_id, id) == 0);
        FUZZ_CHECK(strcmp(l.approver_id, CS_NIL_UUID) == 0 && strcmp(l.voter_id, CS_NIL_UUID) == 0);
        FUZZ_CHECK(l.expires_ms == expires_ms + CS_LINK_GRACE_MS);
    }
    json_object_put(row);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cs_request rq;
    if (fuzz_request_parse(data, size, CS_REQ_ENVELOPE, &rq) != CS_OK) {
        cs_request_free(&rq);
        return 0;
    }
    struct cs_policy_approver ap = {0};
    cs_strlcpy(ap.approver_id, ALICE, sizeof(ap.approver_id));
    cs_strlcpy(ap.voter_id, ALICE, sizeof(ap.voter_id));
    struct cs_policy pol = {.id = "pay",
                            .mode = CS_POLICY_ALWAYS,
                            .quorum = 1,
                            .window_seconds = 3600,
                            .exec_timeout_ms = 10000,
                            .max_attempts = 3,
                            .approvers = &ap,
                            .napprovers = 1};
    struct cs_grant g = {.id = "stripe", .policy = &pol};
    struct cs_agent agent = {.name = "bot"};
    cs_strlcpy(agent.id, AGENT, sizeof(agent.id));
    static struct cs_link_keys keys;
    static bool derived;
    if (!derived) {
        static const unsigned char master[32] = {1};
        cs_link_keys_derive(master, &keys);
        derived = true;
    }

    struct cs_buf b;
    cs_buf_init(&b, CS_APPROVAL_ROWS_MAX);
    char id[CS_UUID_STRLEN + 1], id2[CS_UUID_STRLEN + 1];
    int64_t expires_ms = 0, expires2 = 0;
    FUZZ_CHECK(cs_approval_row_write(&b, &rq, &agent, &g, true, 0, &keys, PUBLIC, "agent:bot", id,
                                     &expires_ms) == CS_OK);
    size_t first = b.len;
    check_row(b.data, first, &rq, &keys, id, expires_ms, true);
    char *copy = cs_strndup(b.data, first);
    /* A second row after it (as in the ingest's buffer) leaves the first as it was. */
    FUZZ_CHECK(cs_approval_row_write(&b, &rq, &agent, &g, false, 0, &keys, PUBLIC, "agent:bot", id2,
                                     &expires2) == CS_OK);
    FUZZ_CHECK(b.len > first && memcmp(b.data, copy, first) == 0);
    check_row(b.data + first, b.len - first, &rq, &keys, id2, expires2, false);
    cs_free(copy);
    cs_buf_free(&b);
    cs_request_free(&rq);
    return 0;
}
