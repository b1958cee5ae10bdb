/*
 * test_approval.c -- unit tests of approval rows and the request check
 * (lib/cs_approval.c: cs_approval_row_write, cs_approval_check). Nothing
 * here needs a database.
 *
 * Every row is written once, as JSON text, in its final form (a batch
 * member's pending in its batch's window, with no link of its own). These tests hold
 * that the text is strict JSON (the parser that guards every envelope
 * accepts it) whatever the strings hold -- quotes, backslashes, every
 * control character, multi-byte UTF-8 -- that every field is the request's
 * (the body byte for byte across base64 chunk boundaries, headers and
 * context as given), that a pending row's approval_url is the approval's
 * /status/ page -- a token verifying with the approval link key for that
 * id, naming nobody, living CS_LINK_GRACE_MS past the window -- that an
 * approved row has none, that no row carries the former per-approver
 * `links`, that a row that does not fit leaves the buffer as it was,
 * and that the allow-list check from bases parsed at load refuses exactly
 * what the textual one refuses, with the same words.
 */
#include <string.h>

#include "cs_approval.h"
#include "cs_json.h"
#include "cs_link.h"
#include "cs_mem.h"
#include "cs_test.h"
#include "request_fixture.h"
#include "cs_url.h"

#define ALICE "0190a5d0-ac96-774b-bcce-b302099a8057"
#define BOB "0190a5d0-ac96-774b-bcce-b302099a8058"
#define AGENT "0190a5d0-ac96-774b-bcce-b302099a8059"
#define PUBLIC "https://cs.example.com/"

/* A grant `stripe` under policy `pay` (alice; bob as alice's delegate when delegated). */
struct fixture {
    struct cs_policy pol;
    struct cs_policy_approver ap[2];
    char esc[1][CS_UUID_STRLEN + 1];
    struct cs_grant g;
    char *bases[3];
    char agents[1][CS_UUID_STRLEN + 1];
    struct cs_agent agent;
    struct cs_link_keys keys;
};

static void fixture_init(struct fixture *f, bool delegated, bool parsed)
{
    memset(f, 0, sizeof(*f));
    f->pol.id = "pay";
    f->pol.mode = CS_POLICY_ALWAYS;
    f->pol.rules = json_object_new_array();
    f->pol.quorum = 1;
    f->pol.window_seconds = 3600;
    f->pol.exec_timeout_ms = 10000;
    f->pol.max_attempts = 3;
    f->pol.reminder_interval_s = 600;
    f->pol.escalate_after_s = 1800;
    cs_strlcpy(f->esc[0], BOB, sizeof(f->esc[0]));
    f->pol.escalation = f->esc;
    f->pol.nescalation = 1;
    cs_strlcpy(f->ap[0].approver_id, ALICE, sizeof(f->ap[0].approver_id));
    cs_strlcpy(f->ap[0].voter_id, delegated ? BOB : ALICE, sizeof(f->ap[0].voter_id));
    cs_strlcpy(f->ap[1].approver_id, BOB, sizeof(f->ap[1].approver_id));
    cs_strlcpy(f->ap[1].voter_id, BOB, sizeof(f->ap[1].voter_id));
    f->pol.approvers = f->ap;
    f->pol.napprovers = 2;
    f->bases[0] = "not a url";
    f->bases[1] = "https://api.example.com/v1";
    f->bases[2] = "https://api.example.com/other/";
    f->g.id = "stripe";
    f->g.bases = f->bases;
    f->g.nbases = 3;
    f->g.idempotency_keys = true;
    cs_strlcpy(f->agents[0], AGENT, sizeof(f->agents[0]));
    f->g.agents = f->agents;
    f->g.nagents = 1;
    f->g.policy = &f->pol;
    if (parsed) {
        /* What the catalog keeps when it loads the grant. */
        f->g.base_urls = cs_calloc(3, sizeof(*f->g.base_urls));
        for (int i = 0; i < 3; i++)
            if (cs_url_parse(f->bases[i], &f->g.base_urls[i], NULL) != CS_OK)
                memset(&f->g.base_urls[i], 0, sizeof(f->g.base_urls[i]));
        json_object *snap = cs_policy_snapshot(&f->pol, f->g.idempotency_keys);
        f->g.policy_json = cs_strdup(cs_json_text(snap, NULL));
        json_object_put(snap);
    }
    cs_strlcpy(f->agent.id, AGENT, sizeof(f->agent.id));
    f->agent.name = "billing-bot";
    unsigned char master[32];
    for (int i = 0; i < 32; i++)
        master[i] = (unsigned char)(i * 7 + 1);
    cs_link_keys_derive(master, &f->keys);
}

static void fixture_free(struct fixture *f)
{
    json_object_put(f->pol.rules);
    if (f->g.base_urls)
        for (int i = 0; i < f->g.nbases; i++)
            cs_url_free(&f->g.base_urls[i]);
    cs_free(f->g.base_urls);
    cs_free(f->g.policy_json);
}

/* Parses JSON written with ' for " as an envelope. */
static enum cs_err request(const char *sq, struct cs_request *rq, char *err)
{
    return fixture_request(sq, CS_REQ_ENVELOPE, 1 << 20, rq, err);
}

static const char *str_of(json_object *o, const char *k)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, k, &v) ? v : NULL;
}

/* Checks one written row against what it was written from. */
static void check_row(json_object *row, const struct cs_request *rq, const struct fixture *f,
                      bool needs, const char *id, int64_t expires_ms, int64_t before, int64_t after,
                      int64_t member_ms)
{
    char hex[2 * CS_SHA256_LEN + 1], err[CS_ERRLEN];
    bool member = rq->batch_id != NULL;
    needs = needs || member; /* a batch member waits for its batch's decision */
    CS_CHECK_EQ_STR(str_of(row, "id"), id);
    CS_CHECK(cs_uuid_valid(id) && id[14] == '7');
    CS_CHECK_EQ_STR(str_of(row, "request_id"), rq->request_id ? rq->request_id : id);
    CS_CHECK_EQ_STR(str_of(row, "agent_id"), AGENT);
    CS_CHECK_EQ_STR(str_of(row, "grant_id"), "stripe");
    CS_CHECK_EQ_STR(str_of(row, "policy_id"), "pay");
    CS_CHECK_EQ_STR(str_of(row, "batch_id"), rq->batch_id);
    CS_CHECK_EQ_STR(str_of(row, "method"), rq->method);
    CS_CHECK_EQ_STR(str_of(row, "url"), rq->url);
    CS_CHECK(json_object_equal(get(row, "headers"), rq->headers));
    CS_CHECK(json_object_equal(get(row, "context"), rq->context));
    CS_CHECK_EQ_STR(str_of(row, "reason"), rq->reason);
    const char *b64 = str_of(row, "body_b64");
    unsigned char *body = NULL;
    size_t blen = 0;
    if (CS_CHECK(b64) && CS_CHECK_RC(cs_b64_decode(b64, strlen(b64), false, &body, &blen), CS_OK)) {
        CS_CHECK_EQ_INT(blen, rq->body_len);
        CS_CHECK(blen == 0 || memcmp(body, rq->body, blen) == 0);
        cs_free(body);
    }
    cs_hex_encode(rq->digest, CS_SHA256_LEN, hex);
    CS_CHECK_EQ_STR(str_of(row, "digest_hex"), hex);
    json_object *snap = cs_policy_snapshot(&f->pol, true);
    CS_CHECK(json_object_equal(get(row, "policy"), snap));
    json_object_put(snap);
    CS_CHECK_EQ_INT(json_object_get_int(get(row, "quorum")), needs ? 1 : 0);
    CS_CHECK_EQ_STR(str_of(row, "status"), needs ? "pending" : "approved");
    CS_CHECK_EQ_INT(json_object_get_int64(get(row, "expires_ms")), expires_ms);
    if (member)
        CS_CHECK_EQ_INT(expires_ms, member_ms);
    else
        CS_CHECK(expires_ms >= before + 3600 * 1000 && expires_ms <= after + 3600 * 1000);
    CS_CHECK_EQ_STR(str_of(row, "actor"), "agent:billing-bot");
    json_object *approvers = get(row, "approvers");
    CS_CHECK_EQ_INT(json_object_array_length(approvers), needs ? 2 : 0);
    /* Only the fields the insert reads: none of the former per-approver links. */
    static const char *const known[] = {
        "id",           "request_id", "agent_id",         "grant_id",    "policy_id", "batch_id",
        "method",       "url",        "headers",          "body_b64",    "reason",    "context",
        "digest_hex",   "policy",     "approvers",        "quorum",      "status",    "expires_ms",
        "approval_url", "holders",    "next_reminder_ms", "escalate_ms", "actor"};
    json_object_object_foreach(row, key, val)
    {
        (void)val;
        bool ok = false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            ok = ok || strcmp(key, known[i]) == 0;
        if (!ok)
            printf("  unexpected row field \"%s\"\n", key);
        CS_CHECK(ok);
    }
    CS_CHECK(!get(row, "links"));
    const char *url = str_of(row, "approval_url");
    if (!needs || member) {
        CS_CHECK(!get(row, "approval_url") && !get(row, "holders") &&
                 !get(row, "next_reminder_ms") && !get(row, "escalate_ms"));
        return;
    }
    json_object *holders = get(row, "holders");
    CS_CHECK_EQ_INT(json_object_array_length(holders), 2);
    for (size_t i = 0; i < 2; i++) {
        json_object *pair = json_object_array_get_idx(holders, i);
        CS_CHECK_EQ_STR(json_object_get_string(json_object_array_get_idx(approvers, i)),
                        f->ap[i].approver_id);
        CS_CHECK_EQ_STR(json_object_get_string(json_object_array_get_idx(pair, 0)),
                        f->ap[i].approver_id);
        CS_CHECK_EQ_STR(json_object_get_string(json_object_array_get_idx(pair, 1)),
                        f->ap[i].voter_id);
    }
    int64_t now = expires_ms - 3600 * 1000;
    CS_CHECK_EQ_INT(json_object_get_int64(get(row, "next_reminder_ms")), now + 600 * 1000);
    CS_CHECK_EQ_INT(json_object_get_int64(get(row, "escalate_ms")), now + 1800 * 1000);

    /* The approval's status page: the one link for everyone, naming nobody. */
    const char *prefix = "https://cs.example.com/status/";
    if (!CS_CHECK(url && strncmp(url, prefix, strlen(prefix)) == 0))
        return;
    const char *tok = url + strlen(prefix);
    CS_CHECK_EQ_INT(strlen(tok), CS_LINK_TOKEN_LEN);
    struct cs_link got;
    if (CS_CHECK_RC(cs_link_verify(f->keys.approval, tok, before, &got, err), CS_OK)) {
        CS_CHECK_EQ_STR(got.approval_id, id);
        CS_CHECK_EQ_STR(got.approver_id, CS_NIL_UUID);
        CS_CHECK_EQ_STR(got.voter_id, CS_NIL_UUID);
        CS_CHECK_EQ_INT(got.expires_ms, expires_ms + CS_LINK_GRACE_MS);
    }
    CS_CHECK_RC(cs_link_verify(f->keys.batch, tok, before, &got, err), CS_ERR_BAD_TOKEN);
    /* The same link every place that hands it out (cs_link_approval_path). */
    char path[CS_LINK_PATH_MAX];
    cs_link_approval_path(&f->keys, id, expires_ms, path);
    CS_CHECK_EQ_STR(url + strlen("https://cs.example.com"), path);
}

/* Writes the row of rq after a prefix, parses it strictly and checks it. */
static void write_and_check(const struct cs_request *rq, struct fixture *f, bool needs)
{
    struct cs_buf b;
    char id[CS_UUID_STRLEN + 1], err[CS_ERRLEN];
    int64_t expires_ms = 0, member_ms = rq->batch_id ? cs_now_ms() + 7200 * 1000 : 0;
    cs_buf_init(&b, CS_APPROVAL_ROWS_MAX);
    CS_CHECK_RC(cs_buf_puts(&b, "[1,"), CS_OK);
    int64_t before = cs_now_ms();
    enum cs_err rc = cs_approval_row_write(&b, rq, &f->agent, &f->g, needs, member_ms, &f->keys,
                                           PUBLIC, "agent:billing-bot", id, &expires_ms);
    int64_t after = cs_now_ms();
    CS_CHECK_RC(rc, CS_OK);
    CS_CHECK_RC(cs_buf_puts(&b, "]"), CS_OK);
    json_object *arr = NULL;
    if (CS_CHECK_RC(cs_json_parse(b.data, b.len, &arr, err), CS_OK)) {
        CS_CHECK_EQ_INT(json_object_array_length(arr), 2);
        check_row(json_object_array_get_idx(arr, 1), rq, f, needs, id, expires_ms, before, after,
                  member_ms);
    } else {
        printf("  %s\n  %s\n", err, b.data);
    }
    json_object_put(arr);
    cs_buf_free(&b);
}

/* The row cs_approval_row_write writes for rq (not a batch member), parsed. */
static json_object *row_of(const struct cs_request *rq, struct fixture *f, bool needs,
                           const char *public_url, char id[CS_UUID_STRLEN + 1], int64_t *expires_ms)
{
    struct cs_buf b;
    char err[CS_ERRLEN];
    json_object *row = NULL;
    cs_buf_init(&b, CS_APPROVAL_ROWS_MAX);
    CS_CHECK_RC(cs_approval_row_write(&b, rq, &f->agent, &f->g, needs, 0, &f->keys, public_url,
                                      "agent:x", id, expires_ms),
                CS_OK);
    CS_CHECK_RC(cs_json_parse(b.data, b.len, &row, err), CS_OK);
    cs_buf_free(&b);
    return row;
}

CS_TEST(row_fields_and_approval_url)
{
    struct fixture f;
    struct cs_request rq;
    char err[CS_ERRLEN];
    for (int parsed = 0; parsed < 2; parsed++) {
        for (int delegated = 0; delegated < 2; delegated++) {
            fixture_init(&f, delegated, parsed);
            if (CS_CHECK_RC(request("{'request_id':'r-1','agent':'billing-bot','grant_id':'stripe',"
                                    "'method':'post','url':'https://api.example.com/v1/refunds',"
                                    "'headers':{'Stripe-Version':'2024-06-20','X-Q':'a\\\\\\\"b'},"
                                    "'json':{'amount':2500,'f':1.5e3,'n':-0.0},"
                                    "'reason':'double charge','context':{'t':[1,{'a':null}]}}",
                                    &rq, err),
                            CS_OK)) {
                write_and_check(&rq, &f, true);
                write_and_check(&rq, &f, false);
                cs_request_free(&rq);
            } else {
                printf("  %s\n", err);
            }
            fixture_free(&f);
        }
    }
}

CS_TEST(row_strings_escaped)
{
    struct fixture f;
    struct cs_request rq;
    char err[CS_ERRLEN];
    fixture_init(&f, false, true);
    /* Every control character, quotes, backslashes, '/', and UTF-8 of 2, 3 and 4 bytes. */
    const char *env =
        "{'request_id':'q\\\"uo\\\\te/\\u00e9','agent':'billing-bot','grant_id':'stripe',"
        "'method':'GET','url':'https://api.example.com/v1/x?q=1','batch_id':'b-1',"
        "'reason':'\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r"
        "\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019"
        "\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f \\\" \\\\ / \\u007f \\u00e9 \\u20ac "
        "\\ud83d\\ude00 end','body':'line\\nnext'}";
    if (CS_CHECK_RC(request(env, &rq, err), CS_OK)) {
        CS_CHECK(strchr(rq.reason, '\x01') && strchr(rq.reason, '\x1f'));
        write_and_check(&rq, &f, true);
        cs_request_free(&rq);
    } else {
        printf("  %s\n", err);
    }
    fixture_free(&f);
}

CS_TEST(row_body_every_chunk_boundary)
{
    /* Base64 is written 768 bytes at a time: lengths around each boundary. */
    static const size_t lens[] = {0, 1, 2, 3, 766, 767, 768, 769, 770, 1535, 1536, 1537, 5000};
    struct fixture f;
    char err[CS_ERRLEN];
    fixture_init(&f, false, true);
    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        unsigned char *raw = cs_malloc(lens[k] + 1);
        for (size_t i = 0; i < lens[k]; i++)
            raw[i] = (unsigned char)(i * 131 + k);
        char *b64 = cs_b64_encode(raw, lens[k], false);
        char *env = cs_asprintf("{'request_id':'r-%zu','agent':'billing-bot','grant_id':'stripe',"
                                "'method':'PUT','url':'https://api.example.com/v1/x',"
                                "'body_b64':'%s'}",
                                k, b64);
        struct cs_request rq;
        if (CS_CHECK_RC(request(env, &rq, err), CS_OK)) {
            CS_CHECK_EQ_INT(rq.body_len, lens[k]);
            write_and_check(&rq, &f, false);
            cs_request_free(&rq);
        } else {
            printf("  %zu: %s\n", lens[k], err);
        }
        cs_free(env);
        cs_free(b64);
        cs_free(raw);
    }
    fixture_free(&f);
}

CS_TEST(row_too_large_leaves_buffer)
{
    struct fixture f;
    struct cs_request rq;
    char err[CS_ERRLEN], id[CS_UUID_STRLEN + 1];
    int64_t expires_ms;
    fixture_init(&f, false, true);
    if (!CS_CHECK_RC(request("{'request_id':'r-1','agent':'billing-bot','grant_id':'stripe',"
                             "'method':'POST','url':'https://api.example.com/v1/x','body':'x'}",
                             &rq, err),
                     CS_OK)) {
        fixture_free(&f);
        return;
    }
    /* Find the row's size, then give each cap below it: nothing may be left behind. */
    struct cs_buf b;
    cs_buf_init(&b, CS_APPROVAL_ROWS_MAX);
    CS_CHECK_RC(cs_approval_row_write(&b, &rq, &f.agent, &f.g, true, 0, &f.keys, PUBLIC, "agent:x",
                                      id, &expires_ms),
                CS_OK);
    size_t full = b.len;
    cs_buf_free(&b);
    for (size_t cap = 5; cap < full + 5; cap += 97) {
        cs_buf_init(&b, cap);
        CS_CHECK_RC(cs_buf_puts(&b, "[1,"), CS_OK);
        enum cs_err rc = cs_approval_row_write(&b, &rq, &f.agent, &f.g, true, 0, &f.keys, PUBLIC,
                                               "agent:x", id, &expires_ms);
        if (cap < full + 3) {
            CS_CHECK_RC(rc, CS_ERR_TOO_LARGE);
            CS_CHECK_EQ_INT(b.len, 3);
            CS_CHECK_EQ_STR(b.data, "[1,");
        } else {
            CS_CHECK_RC(rc, CS_OK);
            CS_CHECK_EQ_INT(b.len, full + 3);
        }
        cs_buf_free(&b);
    }
    cs_request_free(&rq);
    fixture_free(&f);
}

CS_TEST(approval_url_and_schedule)
{
    struct fixture f;
    struct cs_request rq;
    char err[CS_ERRLEN], id[CS_UUID_STRLEN + 1];
    int64_t expires_ms = 0;
    fixture_init(&f, false, true);
    if (!CS_CHECK_RC(request("{'request_id':'r-1','agent':'billing-bot','grant_id':'stripe',"
                             "'method':'GET','url':'https://api.example.com/v1/x'}",
                             &rq, err),
                     CS_OK)) {
        fixture_free(&f);
        return;
    }
    /* A public URL with or without its trailing slash gives one approval_url. */
    static const char *const bases[] = {"https://cs.example.com", "https://cs.example.com//"};
    for (size_t i = 0; i < 2; i++) {
        json_object *row = row_of(&rq, &f, true, bases[i], id, &expires_ms);
        char path[CS_LINK_PATH_MAX];
        cs_link_approval_path(&f.keys, id, expires_ms, path);
        char *want = cs_asprintf("https://cs.example.com%s", path);
        CS_CHECK_EQ_STR(str_of(row, "approval_url"), want);
        cs_free(want);
        json_object_put(row);
    }
    /* A reminder or an escalation due at or after the window's end is not scheduled;
     * an escalation with nobody to escalate to neither. */
    static const struct {
        int64_t remind_s, escalate_s;
        int nesc;
        bool has_remind, has_escalate;
    } cases[] = {
        {600, 1800, 1, true, true}, {3600, 3600, 1, false, false}, {3599, 3599, 1, true, true},
        {0, 0, 1, false, false},    {600, 1800, 0, true, false},   {7200, 1800, 0, false, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        f.pol.reminder_interval_s = cases[i].remind_s;
        f.pol.escalate_after_s = cases[i].escalate_s;
        f.pol.nescalation = cases[i].nesc;
        json_object *row = row_of(&rq, &f, true, PUBLIC, id, &expires_ms);
        int64_t now = expires_ms - 3600 * 1000;
        json_object *r = get(row, "next_reminder_ms"), *e = get(row, "escalate_ms");
        if (!CS_CHECK_EQ_INT(r != NULL, cases[i].has_remind) ||
            !CS_CHECK_EQ_INT(e != NULL, cases[i].has_escalate))
            printf("  case %zu\n", i);
        if (r)
            CS_CHECK_EQ_INT(json_object_get_int64(r), now + cases[i].remind_s * 1000);
        if (e)
            CS_CHECK_EQ_INT(json_object_get_int64(e), now + cases[i].escalate_s * 1000);
        CS_CHECK(str_of(row, "approval_url"));
        json_object_put(row);
    }
    cs_request_free(&rq);
    fixture_free(&f);
}

CS_TEST(check_bases_parsed_at_load)
{
    /* The same answer, index and refusal as the textual allow-list check. */
    static const char *const urls[] = {
        "https://api.example.com/v1",        "https://api.example.com/v1/refunds",
        "https://API.example.com:443/v1/x",  "https://api.example.com/other/a",
        "https://api.example.com/v10",       "http://api.example.com/v1/x",
        "https://api.example.com:8443/v1/x", "https://evil.example.com/v1/x",
        "https://api.example.com/",          "https://api.example.com/v1/../other/b"};
    struct fixture f;
    fixture_init(&f, false, true);
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        struct cs_url u;
        char e1[CS_ERRLEN] = "", e2[CS_ERRLEN] = "";
        if (!CS_CHECK_RC(cs_url_parse(urls[i], &u, e1), CS_OK))
            continue;
        int i1 = -1, i2 = -1;
        enum cs_err r1 = cs_url_allowed(&u, f.g.bases, f.g.nbases, &i1, e1);
        enum cs_err r2 = cs_grant_url_allowed(&f.g, &u, &i2, e2);
        CS_CHECK_RC(r2, r1);
        CS_CHECK_EQ_INT(i2, i1);
        CS_CHECK_EQ_STR(e2, e1);
        cs_url_free(&u);
    }
    /* A grant loaded without parsed bases answers the same too. */
    struct fixture t;
    fixture_init(&t, false, false);
    struct cs_url u;
    char err[CS_ERRLEN];
    int idx = -1;
    if (CS_CHECK_RC(cs_url_parse("https://api.example.com/other/z", &u, err), CS_OK)) {
        CS_CHECK_RC(cs_grant_url_allowed(&t.g, &u, &idx, err), CS_OK);
        CS_CHECK_EQ_INT(idx, 2);
        cs_url_free(&u);
    }
    fixture_free(&t);

    /* Through cs_approval_check: a URL outside the bases is refused. */
    struct cs_request rq;
    bool needs = false;
    if (CS_CHECK_RC(request("{'request_id':'r','agent':'billing-bot','grant_id':'stripe',"
                            "'method':'GET','url':'https://evil.example.com/v1'}",
                            &rq, err),
                    CS_OK)) {
        CS_CHECK_RC(cs_approval_check(&rq, &f.agent, &f.g, &needs, err), CS_ERR_HOST_NOT_ALLOWED);
        CS_CHECK_HAS(err, "evil.example.com");
        cs_request_free(&rq);
    }
    if (CS_CHECK_RC(request("{'request_id':'r','agent':'billing-bot','grant_id':'stripe',"
                            "'method':'GET','url':'https://api.example.com/v1/ok'}",
                            &rq, err),
                    CS_OK)) {
        CS_CHECK_RC(cs_approval_check(&rq, &f.agent, &f.g, &needs, err), CS_OK);
        CS_CHECK(needs);
        cs_request_free(&rq);
    }
    fixture_free(&f);
}

CS_TEST(member_row_written_final)
{
    /* A batch member's row is written once, as its batch admitted it: pending
     * (whatever the policy said), in the batch's window, the policy's approvers
     * and quorum, no approval_url, holders, reminder or escalation of its own;
     * and the batch binds to the same policy snapshot and approvers. */
    struct fixture f;
    struct cs_request rq;
    char err[CS_ERRLEN];
    fixture_init(&f, false, true);
    f.pol.reminder_interval_s = 600;
    f.pol.escalate_after_s = 1800;
    f.pol.nescalation = 1;
    if (CS_CHECK_RC(request("{'request_id':'m-1','agent':'billing-bot','grant_id':'stripe',"
                            "'method':'POST','url':'https://api.example.com/v1/refunds',"
                            "'batch_id':'refunds-7','json':{'amount':5}}",
                            &rq, err),
                    CS_OK)) {
        write_and_check(&rq, &f, false);
        write_and_check(&rq, &f, true);
        struct cs_buf row, policy, approvers;
        char id[CS_UUID_STRLEN + 1];
        int64_t expires_ms = 0, window = cs_now_ms() + 99 * 1000;
        cs_buf_init(&row, CS_APPROVAL_ROWS_MAX);
        cs_buf_init(&policy, CS_APPROVAL_ROWS_MAX);
        cs_buf_init(&approvers, CS_APPROVAL_ROWS_MAX);
        CS_CHECK_RC(cs_approval_row_write(&row, &rq, &f.agent, &f.g, false, window, &f.keys, PUBLIC,
                                          "agent:x", id, &expires_ms),
                    CS_OK);
        CS_CHECK_EQ_INT(expires_ms, window);
        CS_CHECK_RC(cs_approval_policy_write(&policy, &approvers, &f.g), CS_OK);
        json_object *o = NULL, *p = NULL, *a = NULL;
        if (CS_CHECK_RC(cs_json_parse(row.data, row.len, &o, err), CS_OK) &&
            CS_CHECK_RC(cs_json_parse(policy.data, policy.len, &p, err), CS_OK) &&
            CS_CHECK_RC(cs_json_parse(approvers.data, approvers.len, &a, err), CS_OK)) {
            CS_CHECK(json_object_equal(get(o, "policy"), p));
            CS_CHECK(json_object_equal(get(o, "approvers"), a));
            CS_CHECK_EQ_INT(json_object_array_length(a), 2);
        }
        json_object_put(o);
        json_object_put(p);
        json_object_put(a);
        cs_buf_free(&row);
        cs_buf_free(&policy);
        cs_buf_free(&approvers);
        cs_request_free(&rq);
    }
    fixture_free(&f);
}

CS_TEST_MAIN(CS_RUN(row_fields_and_approval_url), CS_RUN(row_strings_escaped),
             CS_RUN(row_body_every_chunk_boundary), CS_RUN(row_too_large_leaves_buffer),
             CS_RUN(approval_url_and_schedule), CS_RUN(check_bases_parsed_at_load),
             CS_RUN(member_row_written_final))
