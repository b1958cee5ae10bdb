/*
 * test_failures.c -- the C client's error scenarios on the real system (bad
 * key, forbidden header, unknown grant, invalid arguments, ...) and its
 * retry policy against a stub playing the API (503, 429 + Retry-After,
 * execution_failed never retried, submissions retried only with a key).
 * Driven by tests/integration/test_sdk_c.py through client/test_client.c.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "countersign.h"
#include "cs_mem.h"
#include "test_client.h"

void test_errors(struct countersign_client *c)
{
    struct countersign_response *r = NULL;
    struct countersign_status *st = NULL;
    struct countersign_error e;
    char *url = stub("/v1/refunds/x");

    /* A bad key: 401, and the key never shows in the error. */
    const char *bad = "cs_0000000000000000000000000000000000000000";
    struct countersign_client *stranger = client(bad);
    enum countersign_code rc = refund(stranger, "/v1/refunds/x", 500, &r, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_AUTHENTICATION, e, "submit with a bad key"))
        CHECK(e.http_status == 401 && !strcmp(e.server_code, "unauthenticated") &&
                  !strstr(e.message, bad),
              "401 unauthenticated, key not in the message");
    rc = countersign_get_approval_status(stranger, "00000000-0000-0000-0000-000000000001", &st, &e);
    CHECK_CODE(rc, COUNTERSIGN_AUTHENTICATION, e, "status with a bad key");
    countersign_client_free(stranger);

    /* A forbidden header: 400 forbidden_header. */
    const struct countersign_header steal[] = {{"Authorization", "Bearer sk_live_stolen"}};
    struct countersign_request req = {.method = "POST",
                                      .url = url,
                                      .grant_id = "stripe",
                                      .json = "{\"amount\":5}",
                                      .headers = steal,
                                      .n_headers = 1,
                                      .reason = "small refund"};
    rc = countersign_proxy_request(c, &req, &r, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_VALIDATION, e, "Authorization as an extra header"))
        CHECK(e.http_status == 400 && !strcmp(e.server_code, "forbidden_header") && e.message[0],
              "400 forbidden_header: %s", e.message);

    /* An unknown grant: 404 unknown_grant. */
    req.headers = NULL;
    req.n_headers = 0;
    req.grant_id = "no-such-grant";
    rc = countersign_proxy_request(c, &req, &r, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_NOT_FOUND, e, "unknown grant"))
        CHECK(e.http_status == 404 && !strcmp(e.server_code, "unknown_grant"), "404 unknown_grant");

    /* Refused locally: nothing is sent. */
    req.grant_id = "stripe";
    req.body = "x";
    req.body_len = 1;
    rc = countersign_proxy_request(c, &req, &r, &e);
    CHECK(rc == COUNTERSIGN_INVALID_ARGUMENT && e.http_status == 0 && r == NULL,
          "json and body both -> %s: %s", countersign_code_name(rc), e.message);
    req.body = NULL;
    req.body_len = 0;
    req.method = "TRACE";
    rc = countersign_proxy_request(c, &req, &r, &e);
    CHECK(rc == COUNTERSIGN_INVALID_ARGUMENT, "unknown method -> %s", countersign_code_name(rc));
    req.method = "POST";
    req.context = "[1,2]";
    rc = countersign_proxy_request(c, &req, &r, &e);
    CHECK(rc == COUNTERSIGN_INVALID_ARGUMENT, "context not an object -> %s: %s",
          countersign_code_name(rc), e.message);
    req.context = NULL;
    rc = countersign_get_approval_status(c, "../admin", &st, &e);
    CHECK(rc == COUNTERSIGN_INVALID_ARGUMENT && st == NULL, "a bad approval id is refused");
    rc = countersign_get_approval_status(c, "00000000-0000-0000-0000-000000000001", &st, &e);
    CHECK_CODE(rc, COUNTERSIGN_NOT_FOUND, e, "an unknown approval");

    /* Idempotency: the same key answers the first approval; another request conflicts. */
    struct countersign_response *first = NULL, *second = NULL;
    req.json = "{\"amount\":500}";
    req.idempotency_key = "refund-ticket-4312";
    rc = countersign_proxy_request(c, &req, &first, &e);
    CHECK_CODE(rc, COUNTERSIGN_OK, e, "submit with an idempotency key");
    rc = countersign_proxy_request(c, &req, &second, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "the same again") && first)
        CHECK(second->kind == COUNTERSIGN_PENDING &&
                  !strcmp(first->approval_id, second->approval_id),
              "the same approval");
    req.json = "{\"amount\":501}";
    rc = countersign_proxy_request(c, &req, &r, &e);
    CHECK(rc == COUNTERSIGN_CONFLICT && e.http_status == 409,
          "the key for another request -> "
          "%s %d",
          countersign_code_name(rc), e.http_status);
    countersign_response_free(first);
    countersign_response_free(second);

    /* Nobody listening: a connection error, retried, then reported. */
    char err[COUNTERSIGN_ERRLEN];
    struct countersign_client *dead = countersign_client_new("http://127.0.0.1:1", api_key, err);
    rc = countersign_client_set_retries(dead, 2, 0.01, 0.02, err);
    CHECK(rc == COUNTERSIGN_OK, "set_retries");
    CHECK(countersign_client_set_timeout(dead, -1, err) == COUNTERSIGN_INVALID_ARGUMENT,
          "a negative timeout is refused: %s", err);
    rc = countersign_get_approval_status(dead, "00000000-0000-0000-0000-000000000001", &st, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_CONNECTION, e, "no server"))
        CHECK(!strcmp(e.server_code, "connect_error") && !strstr(e.message, api_key),
              "connect_error, no key in: %s", e.message);
    countersign_client_free(dead);
    CHECK(countersign_client_new("ftp://x", api_key, err) == NULL, "ftp:// refused: %s", err);
    CHECK(countersign_client_new(base_url, "", err) == NULL, "an empty key refused: %s", err);
    cs_free(url);
}

/*
 * The retry policy, against the stub provider standing in for the API
 * (CS_STUB_URL as base URL; test_sdk_c.py programs its answers and counts
 * what arrived): reads retry 5xx and 429 (honouring Retry-After), a
 * submission only with an idempotency key, nobody retries execution_failed.
 */
void test_retries(void)
{
    char err[COUNTERSIGN_ERRLEN];
    struct countersign_client *c = countersign_client_new(stub_url, api_key, err);
    struct countersign_status *st = NULL;
    struct countersign_response *r = NULL;
    struct countersign_error e;
    if (!CHECK(c != NULL, "client on the fake API"))
        return;
    CHECK(countersign_client_set_retries(c, 3, 0.01, 0.05, err) == COUNTERSIGN_OK &&
              countersign_client_set_poll_interval(c, 0.1, err) == COUNTERSIGN_OK &&
              countersign_client_set_user_agent(c, "c-test/1", err) == COUNTERSIGN_OK,
          "settings");
    enum countersign_code rc =
        countersign_get_approval_status(c, "00000000-0000-0000-0000-0000000000aa", &st, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "status after two 503s"))
        CHECK(!strcmp(st->status, "pending") && st->approvals_required == 2, "parsed");
    countersign_status_free(st);
    st = NULL;

    double t0 = now();
    rc = countersign_get_approval_status(c, "00000000-0000-0000-0000-0000000000cc", &st, &e);
    double took = now() - t0;
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "status after a 429 with Retry-After: 1"))
        CHECK(took >= 0.9, "waited %.2f s as told", took);
    countersign_status_free(st);
    st = NULL;

    rc = countersign_get_approval_status(c, "00000000-0000-0000-0000-0000000000ee", &st, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_SERVER, e, "a 500 page, four times"))
        CHECK(e.http_status == 500 && !strcmp(e.server_code, "http_500") &&
                  strstr(e.message, "oops"),
              "http_500: %s", e.message);

    rc = countersign_await_approval(c, "00000000-0000-0000-0000-0000000000bb", 5, &r, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_EXECUTION_FAILED, e, "execution_failed is not retried"))
        CHECK(e.http_status == 502 && !strcmp(e.error_code, "connect_failed"), "502 %s",
              e.error_code);

    rc = countersign_await_approval(c, "00000000-0000-0000-0000-0000000000dd", 10, &r, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "await through two 503s"))
        CHECK(r->status_code == 200 && r->body_len == 2 && !memcmp(r->body, "ok", 2) &&
                  countersign_response_header(r, "CONTENT-TYPE") &&
                  !strcmp(countersign_response_header(r, "content-type"), "text/plain"),
              "the result, headers lower-cased");
    countersign_response_free(r);
    r = NULL;

    rc = countersign_get_approval_status(c, "00000000-0000-0000-0000-0000000000ff", &st, &e);
    CHECK(rc == COUNTERSIGN_SERVER && !strcmp(e.server_code, "invalid_response"),
          "a 200 that is not JSON -> %s %s", countersign_code_name(rc), e.server_code);

    struct countersign_request req = {
        .method = "POST", .url = "https://x.test/", .grant_id = "stripe", .reason = "retry test"};
    rc = countersign_proxy_request(c, &req, &r, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_SERVER, e, "a submission without key, 503"))
        CHECK(e.http_status == 503 && !strcmp(e.server_code, "unavailable"), "503 unavailable");
    req.idempotency_key = "retry-1";
    rc = countersign_proxy_request(c, &req, &r, &e);
    CHECK_CODE(rc, COUNTERSIGN_SERVER, e, "a submission with a key, 503 four times");

    /* Batches: await reads again after a 503, a seal is re-sent, odd answers are refused. */
    struct countersign_batch_status *b = NULL;
    rc = countersign_await_batch(c, "rb-await", 10, &b, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "await_batch through two 503s and an open batch"))
        CHECK(b->is_terminal && countersign_batch_count(b, "executed") == 2 &&
                  countersign_batch_count(b, "denied") == 0 && b->expected == 2 &&
                  !strcmp(b->finished_at, "2030-01-01T00:00:00Z") && b->grant_id == NULL,
              "terminal, executed 2");
    countersign_batch_status_free(b);
    b = NULL;
    rc = countersign_seal_batch(c, "rb-seal", 3, &b, &e);
    if (CHECK_CODE(rc, COUNTERSIGN_OK, e, "seal_batch through a 503"))
        CHECK(!strcmp(b->status, "open") && b->expected == 3 && b->members == 1 && !b->is_terminal,
              "open, 1 of 3");
    countersign_batch_status_free(b);
    b = NULL;
    rc = countersign_get_batch_status(c, "rb-bad", &b, &e);
    CHECK(rc == COUNTERSIGN_SERVER && !strcmp(e.server_code, "invalid_response") && b == NULL &&
              !strcmp(e.batch_id, "rb-bad"),
          "counts that are not an object -> %s %s", countersign_code_name(rc), e.server_code);
    rc = countersign_await_batch(c, "rb-gone", 10, &b, &e);
    CHECK(rc == COUNTERSIGN_NOT_FOUND && b == NULL, "await of an unknown batch -> %s",
          countersign_code_name(rc));
    countersign_client_free(c);
}
