/*
 * test_request.c -- unit tests of request parsing and digests
 * (lib/cs_request.c).
 *
 * One parser serves the Kafka envelope and the HTTP submit body; these
 * tests hold what it promises both: the right keys for each mode, every
 * bad field named in err, credential and hop-by-hop headers refused in any
 * case, one body at most and within its cap, path and query parameters
 * encoded so that they cannot change the URL's structure, and a digest
 * that follows the layout in cs_request.h -- stable under header order and
 * name case, different when anything the approver is shown changes.
 *
 * Fixtures are JSON written with ' for " so they stay readable; none of
 * them needs a real apostrophe.
 */
#include <stdint.h>
#include <string.h>

#include "cs_json.h"
#include "cs_mem.h"
#include "cs_request.h"
#include "cs_test.h"
#include "request_fixture.h"

#define ENV(extra)                                                                   \
    "{'request_id':'r-1','agent':'billing-bot','grant_id':'stripe','method':'POST'," \
    "'url':'https://api.example.com/v1/refunds'" extra "}"
#define SUB(extra) \
    "{'grant_id':'stripe','method':'POST','url':'https://api.example.com/v1/x'" extra "}"

/* Parses the '-quoted JSON sq as a request of the given mode. */
static enum cs_err parse(const char *sq, unsigned mode, size_t max_body, struct cs_request *rq,
                         char *err)
{
    return fixture_request(sq, mode, max_body, rq, err);
}

static const char *header(const struct cs_request *rq, const char *name)
{
    json_object *v = NULL;
    return json_object_object_get_ex(rq->headers, name, &v) ? json_object_get_string(v) : NULL;
}

/* ---- fields and modes ---- */

CS_TEST(envelope_minimal)
{
    struct cs_request rq;
    char err[CS_ERRLEN] = "";
    if (!CS_CHECK_RC(parse(ENV(""), CS_REQ_ENVELOPE, 1024, &rq, err), CS_OK))
        return;
    CS_CHECK_EQ_STR(rq.request_id, "r-1");
    CS_CHECK_EQ_STR(rq.agent, "billing-bot");
    CS_CHECK_EQ_STR(rq.grant_id, "stripe");
    CS_CHECK_EQ_STR(rq.method, "POST");
    CS_CHECK_EQ_STR(rq.url, "https://api.example.com/v1/refunds");
    CS_CHECK_EQ_STR(rq.host, "api.example.com");
    CS_CHECK_EQ_STR(rq.path, "/v1/refunds");
    CS_CHECK_EQ_STR(rq.reason, "");
    CS_CHECK(rq.batch_id == NULL);
    CS_CHECK(rq.body_len == 0 && !rq.body_is_json);
    CS_CHECK_EQ_INT(json_object_object_length(rq.headers), 0);
    CS_CHECK(json_object_is_type(rq.context, json_type_object));
    cs_request_free(&rq);
    CS_CHECK(rq.url == NULL && rq.headers == NULL);
    cs_request_free(&rq);
    cs_request_free(NULL);
}

CS_TEST(submit_minimal)
{
    struct cs_request rq;
    char err[CS_ERRLEN] = "";
    if (CS_CHECK_RC(parse(SUB(""), CS_REQ_SUBMIT, 1024, &rq, err), CS_OK)) {
        CS_CHECK(rq.request_id == NULL);
        CS_CHECK(rq.agent == NULL);
        cs_request_free(&rq);
    }
    if (CS_CHECK_RC(parse(SUB(",'idempotency_key':'k 1','reason':'why','batch_id':'b-1',"
                              "'context':{'ticket':4312},'extra_headers':{'X-Trace':'t'}"),
                          CS_REQ_SUBMIT, 1024, &rq, err),
                    CS_OK)) {
        CS_CHECK_EQ_STR(rq.request_id, "k 1");
        CS_CHECK_EQ_STR(rq.reason, "why");
        CS_CHECK_EQ_STR(rq.batch_id, "b-1");
        CS_CHECK_EQ_STR(header(&rq, "X-Trace"), "t");
        CS_CHECK_EQ_STR(cs_json_text(rq.context, NULL), "{\"ticket\":4312}");
        cs_request_free(&rq);
    }
}

CS_TEST(mode_keys)
{
    static const struct {
        const char *json;
        unsigned mode;
        const char *field;
    } cases[] = {
        {SUB(",'agent':'a'"), CS_REQ_SUBMIT, "\"agent\""},
        {SUB(",'headers':{}"), CS_REQ_SUBMIT, "\"headers\""},
        {SUB(",'request_id':'r'"), CS_REQ_SUBMIT, "\"request_id\""},
        {ENV(",'extra_headers':{}"), CS_REQ_ENVELOPE, "\"extra_headers\""},
        {ENV(",'idempotency_key':'k'"), CS_REQ_ENVELOPE, "\"idempotency_key\""},
        {ENV(",'urll':'x'"), CS_REQ_ENVELOPE, "\"urll\""},
        {SUB(",'Method':'GET'"), CS_REQ_SUBMIT, "\"Method\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cs_request rq;
        char err[CS_ERRLEN] = "";
        CS_CHECK_RC(parse(cases[i].json, cases[i].mode, 1024, &rq, err), CS_ERR_INVALID);
        CS_CHECK_HAS(err, "unknown field");
        CS_CHECK_HAS(err, cases[i].field);
    }
}

CS_TEST(field_errors_name_the_field)
{
    static const struct {
        const char *json;
        unsigned mode;
        enum cs_err rc;
        const char *detail;
    } cases[] = {
        {"{'agent':'a','grant_id':'g','method':'GET','url':'https://x.example/'}", CS_REQ_ENVELOPE,
         CS_ERR_INVALID, "\"request_id\" is required"},
        {"{'request_id':'r','grant_id':'g','method':'GET','url':'https://x.example/'}",
         CS_REQ_ENVELOPE, CS_ERR_INVALID, "\"agent\" is required"},
        {"{'method':'GET','url':'https://x.example/'}", CS_REQ_SUBMIT, CS_ERR_INVALID,
         "\"grant_id\" is required"},
        {"{'grant_id':'g','url':'https://x.example/'}", CS_REQ_SUBMIT, CS_ERR_INVALID,
         "\"method\" is required"},
        {"{'grant_id':'g','method':'GET'}", CS_REQ_SUBMIT, CS_ERR_INVALID, "\"url\" is required"},
        {"{'grant_id':'g','method':'GET','url':null}", CS_REQ_SUBMIT, CS_ERR_INVALID,
         "\"url\" is required"},
        {"{'request_id':'','agent':'a','grant_id':'g','method':'GET','url':'https://x.example/'}",
         CS_REQ_ENVELOPE, CS_ERR_INVALID, "\"request_id\" must not be empty"},
        {"{'grant_id':'','method':'GET','url':'https://x.example/'}", CS_REQ_SUBMIT, CS_ERR_INVALID,
         "\"grant_id\" must not be empty"},
        {"{'grant_id':'g','method':'','url':'https://x.example/'}", CS_REQ_SUBMIT, CS_ERR_INVALID,
         "\"method\" must not be empty"},
        {"{'grant_id':'g','method':'GET','url':''}", CS_REQ_SUBMIT, CS_ERR_INVALID,
         "\"url\" must not be empty"},
        {"{'grant_id':7,'method':'GET','url':'https://x.example/'}", CS_REQ_SUBMIT, CS_ERR_INVALID,
         "\"grant_id\" must be a string"},
        {"{'grant_id':'g','method':['GET'],'url':'https://x.example/'}", CS_REQ_SUBMIT,
         CS_ERR_INVALID, "\"method\" must be a string"},
        {"{'grant_id':'g','method':'GET','url':{'u':1}}", CS_REQ_SUBMIT, CS_ERR_INVALID,
         "\"url\" must be a string"},
        {SUB(",'reason':5"), CS_REQ_SUBMIT, CS_ERR_INVALID, "\"reason\" must be a string"},
        {SUB(",'extra_headers':[]"), CS_REQ_SUBMIT, CS_ERR_INVALID,
         "\"extra_headers\" must be an object"},
        {ENV(",'headers':'x'"), CS_REQ_ENVELOPE, CS_ERR_INVALID, "\"headers\" must be an object"},
        {SUB(",'query_params':[1]"), CS_REQ_SUBMIT, CS_ERR_INVALID,
         "\"query_params\" must be an object"},
        {SUB(",'path_params':'a'"), CS_REQ_SUBMIT, CS_ERR_INVALID,
         "\"path_params\" must be an object"},
        {SUB(",'context':'c'"), CS_REQ_SUBMIT, CS_ERR_INVALID, "\"context\" must be an object"},
        {SUB(",'body':5"), CS_REQ_SUBMIT, CS_ERR_INVALID, "\"body\" must be a string"},
        {SUB(",'body_b64':true"), CS_REQ_SUBMIT, CS_ERR_INVALID, "\"body_b64\" must be a string"},
        {SUB(",'body_b64':'not base64!'"), CS_REQ_SUBMIT, CS_ERR_INVALID, "\"body_b64\""},
        {"{'grant_id':'g h','method':'GET','url':'https://x.example/'}", CS_REQ_SUBMIT,
         CS_ERR_INVALID, "\"grant_id\""},
        {"{'request_id':'r','agent':'a/b','grant_id':'g','method':'GET',"
         "'url':'https://x.example/'}",
         CS_REQ_ENVELOPE, CS_ERR_INVALID, "\"agent\""},
        {SUB(",'batch_id':'b b'"), CS_REQ_SUBMIT, CS_ERR_INVALID, "\"batch_id\""},
        {SUB(",'idempotency_key':'a\\nb'"), CS_REQ_SUBMIT, CS_ERR_INVALID, "\"idempotency_key\""},
        {"{'grant_id':'g','method':'GET','url':'ftp://x.example/'}", CS_REQ_SUBMIT, CS_ERR_BAD_URL,
         "http"},
        {"{'grant_id':'g','method':'GET','url':'https://u:p@x.example/'}", CS_REQ_SUBMIT,
         CS_ERR_BAD_URL, "credentials"},
        {"{'grant_id':'g','method':'GET','url':'/v1/relative'}", CS_REQ_SUBMIT, CS_ERR_BAD_URL,
         "URL"},
        {"[1]", CS_REQ_SUBMIT, CS_ERR_INVALID, "JSON object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cs_request rq;
        char err[CS_ERRLEN] = "";
        if (!CS_CHECK_RC(parse(cases[i].json, cases[i].mode, 1024, &rq, err), cases[i].rc) ||
            !CS_CHECK_HAS(err, cases[i].detail))
            printf("  case %zu: %s\n", i, cases[i].json);
        CS_CHECK(rq.url == NULL && rq.headers == NULL); /* freed on error */
    }
}

/* ---- headers ---- */

CS_TEST(forbidden_headers)
{
    static const char *const names[] = {"Authorization",
                                        "authorization",
                                        "AUTHORIZATION",
                                        "cookie",
                                        "Cookie",
                                        "COOKIE",
                                        "Proxy-Authorization",
                                        "proxy-authorization",
                                        "X-Api-Key",
                                        "x-api-key",
                                        "X-API-KEY",
                                        "Host",
                                        "host",
                                        "hOsT",
                                        "Idempotency-Key",
                                        "Content-Length",
                                        "Transfer-Encoding",
                                        "Connection",
                                        NULL};
    for (const char *const *n = names; *n; n++) {
        CS_CHECK(cs_header_forbidden(*n));
        char json[256];
        snprintf(json, sizeof(json), SUB(",'extra_headers':{'X-Ok':'1','%s':'v'}"), *n);
        struct cs_request rq;
        char err[CS_ERRLEN] = "";
        if (!CS_CHECK_RC(parse(json, CS_REQ_SUBMIT, 1024, &rq, err), CS_ERR_FORBIDDEN_HEADER))
            printf("  header %s\n", *n);
        CS_CHECK_HAS(err, *n);
        snprintf(json, sizeof(json), ENV(",'headers':{'%s':'v'}"), *n);
        CS_CHECK_RC(parse(json, CS_REQ_ENVELOPE, 1024, &rq, err), CS_ERR_FORBIDDEN_HEADER);
        CS_CHECK_HAS(err, "\"headers\"");
    }
    CS_CHECK(!cs_header_forbidden("Content-Type"));
    CS_CHECK(!cs_header_forbidden("X-Authorization-Hint"));
    CS_CHECK(!cs_header_forbidden("Stripe-Version"));
}

CS_TEST(header_validation)
{
    static const struct {
        const char *json;
        const char *detail;
    } bad[] = {
        {SUB(",'extra_headers':{'X-A':'1','x-a':'2'}"), "twice"},
        {SUB(",'extra_headers':{'X-Trace':'1','X-TRACE':'2'}"), "twice"},
        {SUB(",'extra_headers':{'Bad Name':'1'}"), "invalid header name"},
        {SUB(",'extra_headers':{'':'1'}"), "invalid header name"},
        {SUB(",'extra_headers':{'X-N':1}"), "must be a string"},
        {SUB(",'extra_headers':{'X-N':null}"), "must be a string"},
        {SUB(",'extra_headers':{'X-N':'a\\r\\nInjected: 1'}"), "control character"},
        {SUB(",'extra_headers':{'X-N':'a\\u0000b'}"), "X-N"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cs_request rq;
        char err[CS_ERRLEN] = "";
        if (!CS_CHECK_RC(parse(bad[i].json, CS_REQ_SUBMIT, 1024, &rq, err), CS_ERR_INVALID) ||
            !CS_CHECK_HAS(err, bad[i].detail))
            printf("  case %zu\n", i);
    }
    struct cs_request rq;
    char err[CS_ERRLEN] = "";
    if (CS_CHECK_RC(parse(SUB(",'extra_headers':{'Stripe-Version':'2024-06-20','X-Tab':'a\\tb'}"),
                          CS_REQ_SUBMIT, 1024, &rq, err),
                    CS_OK)) {
        CS_CHECK_EQ_STR(header(&rq, "Stripe-Version"), "2024-06-20");
        CS_CHECK_EQ_STR(header(&rq, "X-Tab"), "a\tb");
        cs_request_free(&rq);
    }
}

/* ---- bodies ---- */

CS_TEST(json_body)
{
    struct cs_request rq;
    char err[CS_ERRLEN] = "";
    if (CS_CHECK_RC(parse(SUB(",'json': { 'b' : [1, 2.5, 'x/y'], 'a' : {} }"), CS_REQ_SUBMIT, 1024,
                          &rq, err),
                    CS_OK)) {
        CS_CHECK(rq.body_is_json);
        CS_CHECK_EQ_INT(rq.body_len, strlen("{\"b\":[1,2.5,\"x/y\"],\"a\":{}}"));
        CS_CHECK(rq.body && memcmp(rq.body, "{\"b\":[1,2.5,\"x/y\"],\"a\":{}}", rq.body_len) == 0);
        CS_CHECK_EQ_STR(header(&rq, "Content-Type"), "application/json");
        cs_request_free(&rq);
    }
    /* A caller's Content-Type, in any case, is kept and not doubled. */
    if (CS_CHECK_RC(parse(SUB(",'json':[1],"
                              "'extra_headers':{'content-type':'application/merge-patch+json'}"),
                          CS_REQ_SUBMIT, 1024, &rq, err),
                    CS_OK)) {
        CS_CHECK_EQ_INT(json_object_object_length(rq.headers), 1);
        CS_CHECK_EQ_STR(header(&rq, "content-type"), "application/merge-patch+json");
        cs_request_free(&rq);
    }
    if (CS_CHECK_RC(parse(SUB(",'json':null"), CS_REQ_SUBMIT, 1024, &rq, err), CS_OK)) {
        CS_CHECK(rq.body_len == 4 && memcmp(rq.body, "null", 4) == 0);
        cs_request_free(&rq);
    }
    /*
     * KNOWN-1: a bare value is a JSON body like any other, and the body as
     * stored parses again (policy rules read it with cs_json_parse).
     */
    static const char *const bare[] = {",'json':null", ",'json':5",   ",'json':-2.5e3",
                                       ",'json':true", ",'json':'x'", NULL};
    for (const char *const *b = bare; *b; b++) {
        char text[256];
        snprintf(text, sizeof(text), SUB("%s"), *b);
        if (!CS_CHECK_RC(parse(text, CS_REQ_SUBMIT, 1024, &rq, err), CS_OK))
            continue;
        json_object *doc = NULL;
        CS_CHECK(rq.body_is_json);
        if (!CS_CHECK_RC(cs_json_parse((const char *)rq.body, rq.body_len, &doc, err), CS_OK))
            printf("  body %.*s: %s\n", (int)rq.body_len, (const char *)rq.body, err);
        json_object_put(doc);
        cs_request_free(&rq);
    }
    /* A text body is sent as given, without a Content-Type of ours. */
    if (CS_CHECK_RC(parse(SUB(",'body':'a=1&b=2'"), CS_REQ_SUBMIT, 1024, &rq, err), CS_OK)) {
        CS_CHECK(!rq.body_is_json);
        CS_CHECK(rq.body_len == 7 && memcmp(rq.body, "a=1&b=2", 7) == 0);
        CS_CHECK(header(&rq, "Content-Type") == NULL);
        cs_request_free(&rq);
    }
    if (CS_CHECK_RC(parse(SUB(",'body_b64':'AP8A'"), CS_REQ_SUBMIT, 1024, &rq, err), CS_OK)) {
        CS_CHECK(rq.body_len == 3 && memcmp(rq.body, "\0\xff\0", 3) == 0);
        cs_request_free(&rq);
    }
}

CS_TEST(one_body_at_most)
{
    static const char *const both[] = {SUB(",'json':{},'body':'x'"),
                                       SUB(",'json':{},'body_b64':'eA=='"),
                                       SUB(",'body':'x','body_b64':'eA=='"),
                                       SUB(",'json':null,'body':''"),
                                       SUB(",'json':1,'body':'x','body_b64':'eA=='"),
                                       NULL};
    for (const char *const *j = both; *j; j++) {
        struct cs_request rq;
        char err[CS_ERRLEN] = "";
        CS_CHECK_RC(parse(*j, CS_REQ_SUBMIT, 1024, &rq, err), CS_ERR_INVALID);
        CS_CHECK_HAS(err, "at most one");
    }
}

CS_TEST(body_caps)
{
    struct cs_request rq;
    char err[CS_ERRLEN] = "";
    CS_CHECK_RC(parse(SUB(",'body':'0123456789abcdef'"), CS_REQ_SUBMIT, 16, &rq, err), CS_OK);
    cs_request_free(&rq);
    CS_CHECK_RC(parse(SUB(",'body':'0123456789abcdefg'"), CS_REQ_SUBMIT, 16, &rq, err),
                CS_ERR_TOO_LARGE);
    /* {"a":"0123456789"} is 18 bytes compact, however it was spaced. */
    CS_CHECK_RC(parse(SUB(",'json':{ 'a' : '0123456789' }"), CS_REQ_SUBMIT, 18, &rq, err), CS_OK);
    cs_request_free(&rq);
    CS_CHECK_RC(parse(SUB(",'json':{'a':'0123456789'}"), CS_REQ_SUBMIT, 17, &rq, err),
                CS_ERR_TOO_LARGE);
    CS_CHECK_HAS(err, "\"json\"");
    /* 16 and 17 bytes of base64. */
    CS_CHECK_RC(parse(SUB(",'body_b64':'MDEyMzQ1Njc4OWFiY2RlZg=='"), CS_REQ_SUBMIT, 16, &rq, err),
                CS_OK);
    CS_CHECK_EQ_INT(rq.body_len, 16);
    cs_request_free(&rq);
    CS_CHECK_RC(parse(SUB(",'body_b64':'MDEyMzQ1Njc4OWFiY2RlZmc='"), CS_REQ_SUBMIT, 16, &rq, err),
                CS_ERR_TOO_LARGE);
    CS_CHECK_HAS(err, "\"body_b64\"");
    CS_CHECK_RC(parse(SUB(",'body_b64':'MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6'"),
                      CS_REQ_SUBMIT, 16, &rq, err),
                CS_ERR_TOO_LARGE);
    CS_CHECK_RC(parse(SUB(",'body':''"), CS_REQ_SUBMIT, 0, &rq, err), CS_OK);
    CS_CHECK_EQ_INT(rq.body_len, 0);
    cs_request_free(&rq);
}

/* ---- URL parameters, method, context ---- */

static void expect_url(const char *json, const char *url, int line)
{
    struct cs_request rq;
    char err[CS_ERRLEN] = "";
    enum cs_err rc = parse(json, CS_REQ_SUBMIT, 1024, &rq, err);
    if (!cs_test_eq_rc(rc, CS_OK, __FILE__, line, json)) {
        printf("  %s\n", err);
        return;
    }
    cs_test_eq_str(rq.url, url, __FILE__, line, "rq.url");
    cs_request_free(&rq);
}

static void expect_error(const char *json, enum cs_err want, const char *detail, int line)
{
    struct cs_request rq;
    char err[CS_ERRLEN] = "";
    cs_test_eq_rc(parse(json, CS_REQ_SUBMIT, 1024, &rq, err), want, __FILE__, line, json);
    cs_test_has(err, detail, __FILE__, line, "err");
}

#define URL_FIXTURE(url, extra) "{'grant_id':'g','method':'GET','url':'" url "'" extra "}"

CS_TEST(path_params)
{
    expect_url(URL_FIXTURE("https://x.example/v1/users/{user}/orders/{order}",
                           ",'path_params':{'user':'a b&c?d#e%f','order':42}"),
               "https://x.example/v1/users/a%20b%26c%3Fd%23e%25f/orders/42", __LINE__);
    expect_url(URL_FIXTURE("https://x.example/v1/{id}/{id}", ",'path_params':{'id':'z'}"),
               "https://x.example/v1/z/z", __LINE__);
    expect_url(URL_FIXTURE("https://x.example/v1/{v}", ",'path_params':{'v':true}"),
               "https://x.example/v1/true", __LINE__);
    expect_url(URL_FIXTURE("https://x.example/v1/{v}", ",'path_params':{'v':'caf\\u00e9~._-'}"),
               "https://x.example/v1/caf%C3%A9~._-", __LINE__);
    expect_error(URL_FIXTURE("https://x.example/v1/{user}/{order}", ",'path_params':{'user':'a'}"),
                 CS_ERR_INVALID, "no value for {order}", __LINE__);
    expect_error(URL_FIXTURE("https://x.example/v1/{user}", ""), CS_ERR_INVALID,
                 "no value for {user}", __LINE__);
    expect_error(
        URL_FIXTURE("https://x.example/v1/{user}", ",'path_params':{'user':'a','extra':'b'}"),
        CS_ERR_INVALID, "extra is not used", __LINE__);
    expect_error(URL_FIXTURE("https://x.example/v1/{a}/{a}", ",'path_params':{'a':'1','b':'2'}"),
                 CS_ERR_INVALID, "b is not used", __LINE__);
    expect_error(URL_FIXTURE("https://x.example/v1", ",'path_params':{'a':'1'}"), CS_ERR_INVALID,
                 "a is not used", __LINE__);
    expect_error(URL_FIXTURE("https://x.example/v1/{a}", ",'path_params':{'a':''}"), CS_ERR_INVALID,
                 "{a} is empty", __LINE__);
    expect_error(URL_FIXTURE("https://x.example/v1/{a}", ",'path_params':{'a':[1]}"),
                 CS_ERR_INVALID, "no value for {a}", __LINE__);
    expect_error(URL_FIXTURE("https://x.example/v1/{a}", ",'path_params':{'a':{}}"), CS_ERR_INVALID,
                 "no value for {a}", __LINE__);
    expect_error(URL_FIXTURE("https://x.example/v1/{}", ""), CS_ERR_INVALID, "placeholder",
                 __LINE__);
    /* A value can never leave its segment. */
    expect_error(URL_FIXTURE("https://x.example/v1/users/{id}/x", ",'path_params':{'id':'..'}"),
                 CS_ERR_INVALID, "{id}", __LINE__);
    expect_error(URL_FIXTURE("https://x.example/v1/users/{id}/x", ",'path_params':{'id':'.'}"),
                 CS_ERR_INVALID, "{id}", __LINE__);
    expect_error(URL_FIXTURE("https://x.example/v1/users/{id}", ",'path_params':{'id':'../admin'}"),
                 CS_ERR_BAD_URL, "encoded", __LINE__);
    expect_url(URL_FIXTURE("https://x.example/v1/users/{id}", ",'path_params':{'id':'...'}"),
               "https://x.example/v1/users/...", __LINE__);
}

CS_TEST(query_params)
{
    expect_url(URL_FIXTURE("https://x.example/v1/search?x=1",
                           ",'query_params':{'q':'a b&c=d','tag':['t1','t2'],'n':5,'f':true}"),
               "https://x.example/v1/search?x=1&q=a+b%26c%3dd&tag=t1&tag=t2&n=5&f=true", __LINE__);
    expect_url(URL_FIXTURE("https://x.example/v1", ",'query_params':{'k':'\\u00e9/?#'}"),
               "https://x.example/v1?k=%c3%a9%2f%3f%23", __LINE__);
    expect_url(URL_FIXTURE("https://x.example/v1#frag", ",'query_params':{'a':'1'}"),
               "https://x.example/v1?a=1", __LINE__);
    expect_url(URL_FIXTURE("https://x.example/v1?keep=me", ",'query_params':{}"),
               "https://x.example/v1?keep=me", __LINE__);
    expect_error(URL_FIXTURE("https://x.example/v1", ",'query_params':{'a':{'b':1}}"),
                 CS_ERR_INVALID, "\"query_params\": a", __LINE__);
    expect_error(URL_FIXTURE("https://x.example/v1", ",'query_params':{'a':[1,[2]]}"),
                 CS_ERR_INVALID, "\"query_params\": a", __LINE__);
    expect_error(URL_FIXTURE("https://x.example/v1", ",'query_params':{'a':null}"), CS_ERR_INVALID,
                 "\"query_params\"", __LINE__);
    expect_error(URL_FIXTURE("https://x.example/v1", ",'query_params':{'':'x'}"), CS_ERR_INVALID,
                 "\"query_params\"", __LINE__);
    /* A '=' in a name would move the split between name and value. */
    expect_error(URL_FIXTURE("https://x.example/v1", ",'query_params':{'admin=true&x':'1'}"),
                 CS_ERR_INVALID, "\"query_params\"", __LINE__);
}

/* Inputs that mean two things (issue 12, section 5): a NUL cuts a URL parameter; a
 * JSON body with a name twice is read by the policy one way and by a provider another;
 * a method override turns the POST the policy saw into something else. */
CS_TEST(inputs_that_mean_two_things)
{
    expect_error(URL_FIXTURE("https://x.example/v1/{id}", ",'path_params':{'id':'1\\u00009999'}"),
                 CS_ERR_INVALID, "{id} contains a NUL", __LINE__);
    expect_error(URL_FIXTURE("https://x.example/v1", ",'query_params':{'amount':'1\\u00009999'}"),
                 CS_ERR_INVALID, "amount contains a NUL", __LINE__);
    expect_error(URL_FIXTURE("https://x.example/v1", ",'query_params':{'a':['1','2\\u0000']}"),
                 CS_ERR_INVALID, "a contains a NUL", __LINE__);
    expect_error(URL_FIXTURE("https://x.example/v1", ",'query_params':{'a\\u0000b':'1'}"),
                 CS_ERR_MALFORMED_JSON, "U+0000", __LINE__);
    expect_error(SUB(",'json':{'amount':1,'amount':99999}"), CS_ERR_MALFORMED_JSON, "twice",
                 __LINE__);
    expect_error(SUB(",'grant_id':'other'"), CS_ERR_MALFORMED_JSON, "twice", __LINE__);
    static const char *const json_types[] = {"application/json", "Application/JSON; charset=utf-8",
                                             "application/merchant+json", NULL};
    for (const char *const *t = json_types; *t; t++) {
        char json[512];
        snprintf(
            json, sizeof(json),
            SUB(",'extra_headers':{'Content-Type':'%s'},'body':'{\\'amount\\':1,\\'amount\\':99999}'"),
            *t);
        expect_error(json, CS_ERR_INVALID, "\"body\": the Content-Type says JSON", __LINE__);
        snprintf(
            json, sizeof(json),
            SUB(",'extra_headers':{'Content-Type':'%s'},'body_b64':'eyJhbW91bnQiOjEsImFtb3VudCI6OTk5OTl9'"),
            *t);
        expect_error(json, CS_ERR_INVALID, "twice", __LINE__);
        snprintf(json, sizeof(json),
                 SUB(",'extra_headers':{'Content-Type':'%s'},'body_b64':'eyJhIjoi/yJ9'"), *t);
        expect_error(json, CS_ERR_INVALID, "UTF-8", __LINE__);
        snprintf(json, sizeof(json), SUB(",'extra_headers':{'Content-Type':'%s'},'body':'{} {}'"),
                 *t);
        expect_error(json, CS_ERR_INVALID, "not strict JSON", __LINE__);
        snprintf(json, sizeof(json), SUB(",'extra_headers':{'Content-Type':'%s'},'body':''"), *t);
        expect_error(json, CS_ERR_INVALID, "empty", __LINE__);
        /* Strict JSON is fine. */
        snprintf(json, sizeof(json),
                 SUB(",'extra_headers':{'Content-Type':'%s'},'body_b64':'eyJhbW91bnQiOjF9'"), *t);
        struct cs_request rq;
        char err[CS_ERRLEN] = "";
        if (CS_CHECK_RC(parse(json, CS_REQ_SUBMIT, 1024, &rq, err), CS_OK))
            cs_request_free(&rq);
    }
    /* A body not declared JSON is the caller's bytes. */
    struct cs_request rq;
    char err[CS_ERRLEN] = "";
    if (CS_CHECK_RC(parse(SUB(",'extra_headers':{'Content-Type':'text/plain'},'body':'{} {'"),
                          CS_REQ_SUBMIT, 1024, &rq, err),
                    CS_OK))
        cs_request_free(&rq);
    static const char *const overrides[] = {"X-HTTP-Method-Override", "x-http-method",
                                            "X-Method-Override", NULL};
    for (const char *const *n = overrides; *n; n++) {
        char json[256];
        snprintf(json, sizeof(json), SUB(",'extra_headers':{'%s':'DELETE'}"), *n);
        if (!CS_CHECK_RC(parse(json, CS_REQ_SUBMIT, 1024, &rq, err), CS_ERR_FORBIDDEN_HEADER))
            printf("  header %s\n", *n);
    }
}

CS_TEST(method)
{
    static const char *const ok[][2] = {
        {"get", "GET"},       {"Post", "POST"}, {"PUT", "PUT"},        {"patch", "PATCH"},
        {"DELETE", "DELETE"}, {"head", "HEAD"}, {"OPTIONS", "OPTIONS"}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char json[200];
        snprintf(json, sizeof(json), "{'grant_id':'g','method':'%s','url':'https://x.example/'}",
                 ok[i][0]);
        struct cs_request rq;
        char err[CS_ERRLEN] = "";
        if (CS_CHECK_RC(parse(json, CS_REQ_SUBMIT, 1024, &rq, err), CS_OK)) {
            CS_CHECK_EQ_STR(rq.method, ok[i][1]);
            cs_request_free(&rq);
        }
    }
    static const char *const bad[] = {
        "TRACE", "CONNECT", "FETCH", "GET ", "G", "GETGETGETGETGETGET", NULL};
    for (const char *const *m = bad; *m; m++) {
        char json[200];
        snprintf(json, sizeof(json), "{'grant_id':'g','method':'%s','url':'https://x.example/'}",
                 *m);
        struct cs_request rq;
        char err[CS_ERRLEN] = "";
        CS_CHECK_RC(parse(json, CS_REQ_SUBMIT, 1024, &rq, err), CS_ERR_INVALID);
        CS_CHECK_HAS(err, "\"method\"");
    }
}

CS_TEST(context)
{
    struct cs_request rq;
    char err[CS_ERRLEN] = "";
    /* Postgres jsonb cannot hold U+0000 anywhere. */
    CS_CHECK_RC(parse(SUB(",'context':{'a':[{'b':'x\\u0000y'}]}"), CS_REQ_SUBMIT, 1024, &rq, err),
                CS_ERR_INVALID);
    CS_CHECK_HAS(err, "\"context\"");
    CS_CHECK_RC(parse(SUB(",'context':{'a':'x\\\\u0000y'}"), CS_REQ_SUBMIT, 1024, &rq, err), CS_OK);
    cs_request_free(&rq);

    static const char head[] = "{'grant_id':'g','method':'GET','url':'https://x.example/',"
                               "'context':{'k':'";
    char *big = cs_malloc(sizeof(head) + CS_CONTEXT_MAX + 4);
    memcpy(big, head, sizeof(head) - 1);
    memset(big + sizeof(head) - 1, 'x', CS_CONTEXT_MAX);
    cs_strlcpy(big + sizeof(head) - 1 + CS_CONTEXT_MAX, "'}}", 4);
    CS_CHECK_RC(parse(big, CS_REQ_SUBMIT, 1024, &rq, err), CS_ERR_TOO_LARGE);
    CS_CHECK_HAS(err, "\"context\"");
    cs_free(big);
}

/* ---- digest ---- */

/* The digest computed here from the layout documented in cs_request.h. */
static void lp(struct cs_sha256 *h, const char *p, size_t n)
{
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    cs_sha256_update(h, len, 8);
    cs_sha256_update(h, p, n);
}

CS_TEST(digest_follows_documented_layout)
{
    struct cs_request rq;
    char err[CS_ERRLEN] = "";
    if (!CS_CHECK_RC(parse(SUB(",'extra_headers':{'X-B':'2','x-a':'1'},'body':'hi'"), CS_REQ_SUBMIT,
                           1024, &rq, err),
                     CS_OK))
        return;
    unsigned char want[CS_SHA256_LEN];
    struct cs_sha256 *h = cs_sha256_new();
    cs_sha256_update(h, "countersign-request-v1", 22);
    lp(h, "POST", 4);
    lp(h, "https://api.example.com/v1/x", 28);
    lp(h, "stripe", 6);
    cs_sha256_update(h, "\0\0\0\2", 4);
    lp(h, "x-a", 3);
    lp(h, "1", 1);
    lp(h, "x-b", 3);
    lp(h, "2", 1);
    lp(h, "hi", 2);
    cs_sha256_final(h, want);
    CS_CHECK(memcmp(rq.digest, want, CS_SHA256_LEN) == 0);

    unsigned char again[CS_SHA256_LEN];
    cs_request_digest(rq.method, rq.url, rq.grant_id, rq.headers, rq.body, rq.body_len, again);
    CS_CHECK(memcmp(rq.digest, again, CS_SHA256_LEN) == 0);
    cs_request_free(&rq);
}

static bool digest_of(const char *json, unsigned char out[CS_SHA256_LEN])
{
    struct cs_request rq;
    char err[CS_ERRLEN] = "";
    if (parse(json, CS_REQ_SUBMIT, 1024, &rq, err) != CS_OK) {
        printf("  fixture refused: %s\n", err);
        return false;
    }
    memcpy(out, rq.digest, CS_SHA256_LEN);
    cs_request_free(&rq);
    return true;
}

CS_TEST(digest_stable_and_sensitive)
{
#define REQ(method, url, grant, headers, body)                                                \
    "{'grant_id':'" grant "','method':'" method "','url':'" url "','extra_headers':{" headers \
    "},'body':'" body "'}"
    static const char *const same[] = {
        REQ("POST", "https://x.example/v1", "g", "'X-A':'1','X-B':'2'", "b"),
        REQ("POST", "https://x.example/v1", "g", "'X-B':'2','X-A':'1'", "b"),
        REQ("post", "https://X.EXAMPLE/v1", "g", "'x-b':'2','X-a':'1'", "b"),
        REQ("POST", "https://x.example/z/../v1", "g", "'X-A':'1','x-B':'2'", "b"), NULL};
    static const char *const differ[] = {
        REQ("PUT", "https://x.example/v1", "g", "'X-A':'1','X-B':'2'", "b"),
        REQ("POST", "https://x.example/v2", "g", "'X-A':'1','X-B':'2'", "b"),
        REQ("POST", "https://x.example/v1?a=1", "g", "'X-A':'1','X-B':'2'", "b"),
        REQ("POST", "https://x.example/v1", "h", "'X-A':'1','X-B':'2'", "b"),
        REQ("POST", "https://x.example/v1", "g", "'X-A':'1','X-B':'3'", "b"),
        REQ("POST", "https://x.example/v1", "g", "'X-A':'1','X-C':'2'", "b"),
        REQ("POST", "https://x.example/v1", "g", "'X-A':'1'", "b"),
        REQ("POST", "https://x.example/v1", "g", "'X-A':'1','X-B':'2'", "c"),
        REQ("POST", "https://x.example/v1", "g", "'X-A':'1','X-B':'2'", ""),
        /* Length prefixes: moving a byte between fields changes the digest. */
        REQ("POST", "https://x.example/v1", "g", "'X-A':'1','X-B':'2b'", ""), NULL};
#undef REQ
    unsigned char base[CS_SHA256_LEN], d[CS_SHA256_LEN];
    if (!CS_CHECK(digest_of(same[0], base)))
        return;
    for (const char *const *j = same; *j; j++)
        if (CS_CHECK(digest_of(*j, d)) && !CS_CHECK(memcmp(d, base, CS_SHA256_LEN) == 0))
            printf("  digest differs for %s\n", *j);
    for (const char *const *j = differ; *j; j++)
        if (CS_CHECK(digest_of(*j, d)) && !CS_CHECK(memcmp(d, base, CS_SHA256_LEN) != 0))
            printf("  digest unchanged for %s\n", *j);
}

CS_TEST_MAIN(CS_RUN(envelope_minimal), CS_RUN(submit_minimal), CS_RUN(mode_keys),
             CS_RUN(field_errors_name_the_field), CS_RUN(forbidden_headers),
             CS_RUN(header_validation), CS_RUN(json_body), CS_RUN(one_body_at_most),
             CS_RUN(body_caps), CS_RUN(path_params), CS_RUN(query_params),
             CS_RUN(inputs_that_mean_two_things), CS_RUN(method), CS_RUN(context),
             CS_RUN(digest_follows_documented_layout), CS_RUN(digest_stable_and_sensitive))
