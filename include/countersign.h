/*
 * countersign.h -- the public C client of Countersign, the human-in-the-loop
 * approval gateway (the one public header; see client/README.md).
 *
 * An agent asks Countersign to make an HTTP call with a secret it holds (a
 * grant). When the grant's policy requires it, the call waits as a pending
 * approval until approvers decide; once approved, Countersign executes it
 * once and keeps the provider's response:
 *
 *   countersign_proxy_request()     -> a result (no approval needed) or pending
 *   countersign_await_approval()    -> the result, or DENIED / EXPIRED /
 *                                      CANCELLED / EXECUTION_FAILED / TIMEOUT
 *   countersign_get_approval_status(), countersign_cancel_approval()
 *   countersign_submit_batch()      -> many calls decided at once by one batch
 *                                      decision; countersign_seal_batch(),
 *                                      countersign_get_batch_status(),
 *                                      countersign_await_batch()
 *   countersign_producer_*()        -> the same request as a Kafka envelope;
 *                                      countersign_produce_seal() seals a batch
 *
 * Built on libcurl (easy interface) and json-c; the producer on librdkafka.
 * Link with libcountersign-client.a and `pkg-config --libs libcurl json-c
 * rdkafka` -lpthread -lm. This header needs only the C11 standard library.
 *
 * Conventions, for every function below:
 *   - A function that can fail returns an enum countersign_code (COUNTERSIGN_OK
 *     is 0) and fills a caller's struct countersign_error (or char
 *     err[COUNTERSIGN_ERRLEN]); the error argument may be NULL.
 *   - Ownership: every object returned through an `**out` argument belongs to
 *     the caller, who releases it with the matching _free(); every _free(NULL)
 *     does nothing. On failure *out is set to NULL. Input structs and strings
 *     are only read during the call (nothing is kept). struct countersign_error
 *     is caller-allocated and holds no heap memory: there is nothing to free.
 *   - Memory: allocation failure aborts the process (like librdkafka), so no
 *     function fails for lack of memory.
 *   - Threads: a client or producer is used by one thread at a time; use one
 *     per thread. Creating clients from several threads at once is safe with
 *     libcurl >= 7.84 (thread-safe curl_global_init).
 *   - Secrets: the API key is sent only as "Authorization: Bearer"; it never
 *     appears in an error message, and it is wiped from memory on free.
 */
#ifndef COUNTERSIGN_H
#define COUNTERSIGN_H

/* The public header keeps its hand-laid tables and field notes (tools/format.sh). */
/* clang-format off */

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define COUNTERSIGN_MUSTCHECK __attribute__((warn_unused_result))
#else
#define COUNTERSIGN_MUSTCHECK
#endif

#define COUNTERSIGN_VERSION "0.1.0"

/* Size of the char err[] buffers and of struct countersign_error's message. */
#define COUNTERSIGN_ERRLEN 512
/* An approval id is a UUID: 36 characters. */
#define COUNTERSIGN_ID_LEN 36
/* RFC 3339 UTC timestamps ("2025-01-31T12:00:00.123Z") fit in this. */
#define COUNTERSIGN_TIME_LEN 40
/* The longest reason the server accepts (approver's, agent's, canceller's). */
#define COUNTERSIGN_REASON_MAX 4096
/* await_approval's and await_batch's timeout_seconds: no local limit. */
#define COUNTERSIGN_WAIT_FOREVER (-1.0)
/* The longest batch id (letters, digits and ._:- only). */
#define COUNTERSIGN_BATCH_ID_MAX 128
/* The most members a batch may have (the largest seal count). */
#define COUNTERSIGN_BATCH_MAX 100000

/* ==== errors ============================================================= */

/*
 * The outcome of a call; the same categories as the Python and TypeScript
 * SDKs' error classes. `server_code` of struct countersign_error holds the
 * precise code (docs/ERRORS.md, or one of the client's own codes in brackets).
 */
enum countersign_code {
    COUNTERSIGN_OK = 0,
    COUNTERSIGN_DENIED,           /* an approver denied it (409 denied); see reason, decided_by */
    COUNTERSIGN_EXPIRED,          /* the window elapsed undecided (410 expired) */
    COUNTERSIGN_TIMEOUT,          /* await_approval's own timeout passed: it may still be
                                     pending (see last_status); await again later [timeout] */
    COUNTERSIGN_EXECUTION_FAILED, /* approved (or no approval needed) but the call failed
                                     (502 execution_failed); see error_code, error_message */
    COUNTERSIGN_CANCELLED,        /* it was cancelled (409 cancelled) */
    COUNTERSIGN_AUTHENTICATION,   /* missing, unknown or revoked API key (401 unauthenticated) */
    COUNTERSIGN_NOT_FOUND,        /* no such approval (or not yours), no such grant (404) */
    COUNTERSIGN_VALIDATION,       /* the request is invalid (400, 413, 422, other 4xx):
                                     invalid_request, forbidden_header, invalid_url, ... */
    COUNTERSIGN_PERMISSION,       /* not allowed (403): key scope, URL outside the grant */
    COUNTERSIGN_CONFLICT,         /* another 409: not_pending, conflict (idempotency key reused) */
    COUNTERSIGN_CONNECTION,       /* no answer: [connect_error] (nothing was sent),
                                     [request_timeout], [transport_error]; for the producer:
                                     the broker did not acknowledge the message */
    COUNTERSIGN_SERVER,           /* 5xx (database_unavailable, http_503...) or an answer the
                                     client cannot read [invalid_response] */
    COUNTERSIGN_INVALID_ARGUMENT  /* refused locally, nothing was sent [invalid_argument] */
};

/* The code's name ("denied", "execution_failed", ...); never NULL. */
const char *countersign_code_name(enum countersign_code code);

/*
 * Everything known about a failure. Filled by every call that takes one
 * (zeroed -- code COUNTERSIGN_OK, batch_index -1 -- on success). String
 * fields are always NUL-terminated, "" when unknown, and cut to fit (never an
 * API key).
 */
struct countersign_error {
    enum countersign_code code;
    int http_status;                          /* 0 when decided locally or nothing came back */
    char server_code[64];                     /* "forbidden_header", "denied", "connect_error"... */
    char message[COUNTERSIGN_ERRLEN];         /* for people */
    char approval_id[COUNTERSIGN_ID_LEN + 1]; /* when known */
    /* details of DENIED / EXPIRED / CANCELLED */
    char reason[COUNTERSIGN_REASON_MAX + 1];  /* the approver's or canceller's reason */
    char decided_by[128];                     /* who: the deciding approver's id, "agent:<name>"
                                                 (cancelled), "scheduler:..." (expired) */
    char decided_at[COUNTERSIGN_TIME_LEN];
    /* details of EXECUTION_FAILED */
    char error_code[64];                      /* connect_failed, tls_error, timeout, outcome_unknown,
                                                 host_not_allowed, ... */
    char error_message[COUNTERSIGN_ERRLEN];
    /* details of TIMEOUT: the status seen last ("pending", "approved", "executing";
       for await_batch the batch's: "open", "decidable", "decided") */
    char last_status[16];
    /* batch calls: the batch id; for submit_batch also the index in reqs of the
       member that was refused (its own error is above), else -1 */
    char batch_id[COUNTERSIGN_BATCH_ID_MAX + 1];
    long batch_index;
};

/* ==== the client ========================================================= */

struct countersign_client;

/*
 * Makes a client for the API at base_url (NULL: $COUNTERSIGN_URL, else
 * http://127.0.0.1:8080; a path prefix is kept) with an agent's API key.
 * Nothing is sent yet. Returns NULL, with err filled, for a missing key or a
 * base URL that is not http(s). Owned by the caller:
 * countersign_client_free().
 * Defaults: timeout 30 s, 3 retries, backoff 0.5 s doubling up to 8 s, poll
 * interval 2 s.
 */
struct countersign_client *countersign_client_new(const char *base_url, const char *api_key,
                                                  char err[COUNTERSIGN_ERRLEN]);

/* Closes the connection and wipes the key. NULL does nothing. */
void countersign_client_free(struct countersign_client *client);

/*
 * The HTTP timeout of each request, in seconds (> 0). A long-poll adds its
 * wait to it, a submission adds 60 s (the longest the server runs a call
 * inline). COUNTERSIGN_INVALID_ARGUMENT for a bad value.
 */
enum countersign_code countersign_client_set_timeout(struct countersign_client *client,
                                                     double seconds,
                                                     char err[COUNTERSIGN_ERRLEN]);

/*
 * The retry policy, the same in the Python and TypeScript SDKs: docs/RETRIES.md
 * is its table, and tests/integration/test_sdk_retries.py checks these against it.
 */
#define COUNTERSIGN_DEFAULT_MAX_RETRIES 3     /* retries of a retriable failure */
#define COUNTERSIGN_DEFAULT_BACKOFF     0.5   /* the first pause's ceiling, s */
#define COUNTERSIGN_DEFAULT_BACKOFF_MAX 8.0   /* the longest pause, s */
#define COUNTERSIGN_RETRY_AFTER_MAX     60.0  /* the longest Retry-After honoured, s */
#define COUNTERSIGN_RETRY_STATUSES      {429, 500, 502, 503, 504}
#define COUNTERSIGN_MAX_WAIT_SECONDS    60    /* the longest long-poll wait asked for */

/*
 * Retries of a retriable failure (default COUNTERSIGN_DEFAULT_MAX_RETRIES; 0
 * turns them off); the pause before retry n is min(backoff_max, backoff * 2^n),
 * half of it random (defaults COUNTERSIGN_DEFAULT_BACKOFF and _BACKOFF_MAX); a
 * Retry-After header (at most COUNTERSIGN_RETRY_AFTER_MAX) wins. What is retried:
 *   get_approval_status, get_batch_status: transport errors and
 *     COUNTERSIGN_RETRY_STATUSES (429, 500, 502, 503, 504);
 *   proxy_request with an idempotency_key, each member of submit_batch (it
 *     always has one), seal_batch: the same (the server answers a repeated
 *     key with the first answer; the same seal again changes nothing);
 *   proxy_request without one, cancel_approval: only a failure to connect
 *     (nothing was sent).
 */
enum countersign_code countersign_client_set_retries(struct countersign_client *client,
                                                     int max_retries, double backoff_seconds,
                                                     double backoff_max_seconds,
                                                     char err[COUNTERSIGN_ERRLEN]);

/*
 * await_approval's pause after a transport error or a retriable 5xx, and
 * await_batch's first pause between reads (> 0 s).
 */
enum countersign_code countersign_client_set_poll_interval(struct countersign_client *client,
                                                           double seconds,
                                                           char err[COUNTERSIGN_ERRLEN]);

/* Appended to the User-Agent "countersign-c/<version> libcurl/<version>" (copied). */
enum countersign_code countersign_client_set_user_agent(struct countersign_client *client,
                                                        const char *user_agent,
                                                        char err[COUNTERSIGN_ERRLEN]);

/* ==== submitting a call ================================================== */

/* A name and a value; in requests both are the caller's, in responses the response's. */
struct countersign_header {
    const char *name;
    const char *value;
};

/*
 * The call to make. Only method, url and grant_id are required; NULL / 0
 * leaves a field out. Give at most one of json and body.
 */
struct countersign_request {
    const char *method;          /* GET POST PUT PATCH DELETE HEAD OPTIONS, any case */
    const char *url;             /* under one of the grant's allowed base URLs; may hold
                                    {name} placeholders filled from path_params */
    const char *grant_id;
    const char *json;            /* JSON text of any value ("null" sends JSON null); sent
                                    compactly with Content-Type application/json */
    const void *body;            /* raw bytes (sent base64; body_len 0 is an empty body) */
    size_t body_len;
    const struct countersign_header *headers;  /* extra headers; never Authorization, Cookie,
                                    Proxy-Authorization, X-Api-Key, Host, Idempotency-Key or
                                    hop-by-hop headers (the server refuses: forbidden_header) */
    size_t n_headers;
    const struct countersign_header *query_params; /* a repeated name sends a list */
    size_t n_query_params;
    const struct countersign_header *path_params;
    size_t n_path_params;
    const char *reason;          /* why; shown to approvers: be concrete */
    const char *context;         /* JSON object text shown to approvers (at most 16 KiB) */
    const char *idempotency_key; /* your own identity of the operation ("refund-ticket-4312"):
                                    a resubmission returns the first answer */
    const char *batch_id;        /* makes the call a member of this batch: it waits for the
                                    batch decision (countersign_submit_batch() sets it) */
};

enum countersign_kind {
    COUNTERSIGN_PENDING = 1, /* waiting for approval (or, without approval, still executing) */
    COUNTERSIGN_RESULT = 2   /* executed: the provider's answer */
};

/*
 * What a submission or a wait returns. Owned by the caller:
 * countersign_response_free(); every pointer inside is owned by it.
 */
struct countersign_response {
    enum countersign_kind kind;
    char approval_id[COUNTERSIGN_ID_LEN + 1];
    char status[16];                          /* pending | approved | executing | executed */
    /* COUNTERSIGN_PENDING */
    char *approval_url;                       /* the page to hand to people: approvers
                                                 sign in there and decide */
    char expires_at[COUNTERSIGN_TIME_LEN];    /* RFC 3339 */
    /* COUNTERSIGN_RESULT */
    int status_code;                          /* the provider's HTTP status, any value */
    struct countersign_header *headers;       /* the provider's headers, names lower-cased */
    size_t n_headers;
    unsigned char *body;                      /* body_len bytes, followed by a NUL not counted
                                                 (so a text body is a C string); never NULL
                                                 for a result */
    size_t body_len;
    bool body_truncated;                      /* the server stored only the first bytes */
    char executed_at[COUNTERSIGN_TIME_LEN];
};

/*
 * Submits the call (POST /v1/proxy). On COUNTERSIGN_OK *out is a
 * COUNTERSIGN_RESULT when no approval was needed and the call ran inline, or
 * COUNTERSIGN_PENDING (hand approval_url to the approvers, then
 * countersign_await_approval()). Fails with VALIDATION, AUTHENTICATION,
 * PERMISSION, NOT_FOUND (unknown_grant), CONFLICT, EXECUTION_FAILED (inline
 * call failed), CONNECTION, SERVER, INVALID_ARGUMENT; a resubmitted
 * idempotency_key may also answer DENIED, CANCELLED or EXPIRED.
 */
enum countersign_code countersign_proxy_request(struct countersign_client *client,
                                                const struct countersign_request *req,
                                                struct countersign_response **out,
                                                struct countersign_error *error)
    COUNTERSIGN_MUSTCHECK;

/* The value of the response header `name` (any case), or NULL. Borrowed from r. */
const char *countersign_response_header(const struct countersign_response *r, const char *name);

/* Frees a response and everything in it. NULL does nothing. */
void countersign_response_free(struct countersign_response *r);

/* ==== status, wait, cancel =============================================== */

/* An approval's state. Owned by the caller: countersign_status_free(). */
struct countersign_status {
    char approval_id[COUNTERSIGN_ID_LEN + 1];
    char status[16];      /* pending approved executing executed failed denied expired cancelled */
    bool is_terminal;     /* executed, failed, denied, expired or cancelled */
    bool has_result;      /* executed: await_approval returns the provider's answer at once */
    int approvals_received;
    int approvals_required;
    char created_at[COUNTERSIGN_TIME_LEN];
    char expires_at[COUNTERSIGN_TIME_LEN];
    char decided_at[COUNTERSIGN_TIME_LEN];   /* "" until decided */
    char executed_at[COUNTERSIGN_TIME_LEN];  /* "" until executed */
    char *decision_reason;                   /* NULL when none; owned by the status */
    char error_code[64];                     /* for failed, else "" */
    char *grant_id, *method, *url, *batch_id; /* NULL when absent; owned by the status */
};

/*
 * Reads an approval's status (GET /v1/approvals/{id}); only the submitting
 * agent's approvals are visible (another's is NOT_FOUND).
 */
enum countersign_code countersign_get_approval_status(struct countersign_client *client,
                                                      const char *approval_id,
                                                      struct countersign_status **out,
                                                      struct countersign_error *error)
    COUNTERSIGN_MUSTCHECK;

/*
 * Waits for the outcome with the server's long-poll (GET
 * /v1/approvals/{id}/result?wait=N, N the whole seconds left, at most 60),
 * so it returns as soon as the outcome is stored. timeout_seconds >= 0, or
 * COUNTERSIGN_WAIT_FOREVER; 0 asks once. On COUNTERSIGN_OK *result is a
 * COUNTERSIGN_RESULT. Otherwise: DENIED (error->reason is the approver's),
 * EXPIRED, CANCELLED, EXECUTION_FAILED (error->error_code), TIMEOUT (the
 * local wait gave up; error->last_status; a later call may succeed), or --
 * when the server could not be reached up to the deadline (transport errors
 * and retriable 5xx are retried every poll interval) -- the last CONNECTION
 * or SERVER error. Blocks the calling thread.
 */
enum countersign_code countersign_await_approval(struct countersign_client *client,
                                                 const char *approval_id, double timeout_seconds,
                                                 struct countersign_response **result,
                                                 struct countersign_error *error)
    COUNTERSIGN_MUSTCHECK;

/*
 * Cancels a pending approval (POST /v1/approvals/{id}/cancel) with an
 * optional reason. On COUNTERSIGN_OK, *out (when out is not NULL) is the new
 * status. CONFLICT or CANCELLED when it is no longer pending.
 */
enum countersign_code countersign_cancel_approval(struct countersign_client *client,
                                                  const char *approval_id, const char *reason,
                                                  struct countersign_status **out,
                                                  struct countersign_error *error)
    COUNTERSIGN_MUSTCHECK;

/* Frees a status and everything in it. NULL does nothing. */
void countersign_status_free(struct countersign_status *st);

/* ==== batches ============================================================ */

/*
 * A batch is many calls (members, all with one grant and so one policy)
 * that approvers decide at once on one page: approve all, deny all, or
 * approve all but listed members (by request id: the idempotency key). Each
 * member then executes, or not, on its own. Nothing is decided before the
 * batch is sealed with its member count and every member is stored; members
 * and the seal may arrive in any order (HTTP or Kafka).
 */

/* How many members are in one approval status. */
struct countersign_batch_count {
    char status[16];                          /* pending executed denied failed expired ... */
    int count;
};

/*
 * A batch's state (GET /v1/batches/{id}). Owned by the caller:
 * countersign_batch_status_free(); every pointer inside is owned by it.
 */
struct countersign_batch_status {
    char batch_id[COUNTERSIGN_BATCH_ID_MAX + 1];
    char batch_uid[COUNTERSIGN_ID_LEN + 1];   /* the server's id (what the batch page signs) */
    char status[16];      /* open (the seal or members missing), decidable (approvers are
                             notified and decide on the batch page), decided, expired (not
                             decided within the window) */
    int expected;         /* the sealed member count; -1 until sealed */
    int members;          /* members stored */
    struct countersign_batch_count *counts;   /* members per approval status, in no order;
                                                 see countersign_batch_count() */
    size_t n_counts;
    char digest[65];      /* hex SHA-256 over the members' digests shown to approvers;
                             "" until decidable */
    bool is_terminal;     /* every member is terminal and the batch summary was published:
                             nothing changes after that */
    int approvals_received;
    int approvals_required;
    char created_at[COUNTERSIGN_TIME_LEN];
    char expires_at[COUNTERSIGN_TIME_LEN];    /* "" until the first member fixes it */
    char decided_at[COUNTERSIGN_TIME_LEN];    /* "" until decided */
    char finished_at[COUNTERSIGN_TIME_LEN];   /* "" until terminal */
    char decided_by[128];                     /* who decided ("approver:<id>"), or "" */
    char decision[16];                        /* approved | denied, or "" */
    char *grant_id, *policy_id;               /* NULL until the first member; owned */
    /* Only from countersign_submit_batch(): the approval id of each of its
       requests, in the order given (n_approval_ids == n); else NULL and 0. */
    char **approval_ids;
    size_t n_approval_ids;
};

/* How many members of st are in `status` ("executed", ...); 0 when none. */
int countersign_batch_count(const struct countersign_batch_status *st, const char *status);

/*
 * Submits reqs[0..n-1] as the members of batch `batch_id` (POST /v1/proxy
 * with batch_id, one member after the other), then -- when `seal` -- seals
 * the batch with n members (countersign_seal_batch()). On COUNTERSIGN_OK,
 * *out (when out is not NULL) is the batch's state with approval_ids.
 *
 * batch_id: 1..COUNTERSIGN_BATCH_ID_MAX letters, digits and ._:- . Each
 * request is what countersign_proxy_request() takes; its batch_id must be
 * NULL or this batch_id. A request without an idempotency_key gets
 * "<batch_id>:<index>" (index in reqs), so submitting the same batch again
 * -- after a crash, a timeout -- finds the members already stored instead
 * of adding new ones, and every member submission is retried like a read.
 * A member waits for the batch decision even when its policy alone would
 * not require approval.
 *
 * Every request is checked before anything is sent: INVALID_ARGUMENT,
 * nothing sent, for a bad batch_id, n == 0 with seal (a batch needs a
 * member), n > COUNTERSIGN_BATCH_MAX, a request refused locally, or two
 * requests with one idempotency key (they would be one member);
 * error->batch_index names the request. If the server refuses a member, no
 * further member is sent, the batch is NOT sealed, and that member's error
 * is returned with error->batch_index: CONFLICT (a member after the batch
 * was complete, another grant or policy than the batch's, an idempotency
 * key reused for another request), VALIDATION, NOT_FOUND (unknown_grant),
 * PERMISSION, EXPIRED (the batch's window elapsed), CONNECTION / SERVER once
 * retries are spent. Fix the cause and submit the same requests again. A
 * member that already has an outcome (a resubmitted, decided batch: DENIED,
 * CANCELLED, EXECUTION_FAILED) is not an error. The seal's own errors are
 * countersign_seal_batch()'s.
 *
 * seal false submits the members only: to send a large batch in parts, give
 * each request its own idempotency_key (the default one counts from 0 in
 * every call), then countersign_seal_batch() with the total.
 */
enum countersign_code countersign_submit_batch(struct countersign_client *client,
                                               const char *batch_id,
                                               const struct countersign_request *reqs, size_t n,
                                               bool seal, struct countersign_batch_status **out,
                                               struct countersign_error *error)
    COUNTERSIGN_MUSTCHECK;

/*
 * Seals the batch with its member count, 1..COUNTERSIGN_BATCH_MAX (POST
 * /v1/batches/{id}/seal). The batch becomes decidable once the seal and all
 * `count` members are stored, in any order. On COUNTERSIGN_OK, *out (when
 * out is not NULL) is its state. Sealing again with the same count changes
 * nothing (so it is retried like a read). CONFLICT when the batch is
 * already sealed for another count or has more members already, EXPIRED
 * when its window has elapsed, INVALID_ARGUMENT for a bad batch_id or count.
 */
enum countersign_code countersign_seal_batch(struct countersign_client *client,
                                             const char *batch_id, int count,
                                             struct countersign_batch_status **out,
                                             struct countersign_error *error)
    COUNTERSIGN_MUSTCHECK;

/*
 * Reads the batch's state (GET /v1/batches/{id}). NOT_FOUND for a batch id
 * this agent never used (no member, no seal).
 */
enum countersign_code countersign_get_batch_status(struct countersign_client *client,
                                                   const char *batch_id,
                                                   struct countersign_batch_status **out,
                                                   struct countersign_error *error)
    COUNTERSIGN_MUSTCHECK;

/*
 * Waits until the batch is terminal and returns its final state in *out:
 * read the outcome from the counts (countersign_batch_count(st, "executed"));
 * denied, expired or failed members are not errors here (await a member's
 * approval id for its own result). There is no long-poll for batches: it
 * reads GET /v1/batches/{id} at once, then after the poll interval (2 s by
 * default), half as long again each time, at most 10 s between reads (or the
 * poll interval when longer), never past the deadline. timeout_seconds >= 0,
 * or COUNTERSIGN_WAIT_FOREVER; 0 looks once. Fails with TIMEOUT when the
 * local wait gave up (error->last_status is the batch's status, the message
 * has its counts; the batch goes on: await it again later, or read it with
 * countersign_get_batch_status()), NOT_FOUND for an unknown batch, or --
 * when the server could not be reached up to the deadline -- the last
 * CONNECTION or SERVER error. Blocks the calling thread.
 */
enum countersign_code countersign_await_batch(struct countersign_client *client,
                                              const char *batch_id, double timeout_seconds,
                                              struct countersign_batch_status **out,
                                              struct countersign_error *error)
    COUNTERSIGN_MUSTCHECK;

/* Frees a batch status and everything in it. NULL does nothing. */
void countersign_batch_status_free(struct countersign_batch_status *st);

/* ==== the Kafka producer ================================================= */

/*
 * A request envelope for the requests topic (README "Kafka topics and
 * messages"): the fields of struct countersign_request, with request_id (the
 * producer's id, deduplicated per agent) and agent in place of an API key.
 * request_id, agent, grant_id, method and url are required.
 */
struct countersign_envelope {
    const char *request_id;
    const char *agent;
    const char *grant_id;
    const char *method;
    const char *url;
    const struct countersign_header *headers;
    size_t n_headers;
    const char *json;             /* JSON text; at most one of json and body */
    const void *body;             /* raw bytes, sent as body_b64 */
    size_t body_len;
    const struct countersign_header *query_params;
    size_t n_query_params;
    const struct countersign_header *path_params;
    size_t n_path_params;
    const char *reason;
    const char *context;          /* JSON object text */
    const char *batch_id;         /* a member of this batch: seal it with
                                     countersign_produce_seal() (or over HTTP) */
};

struct countersign_producer;

/*
 * An idempotent Kafka producer (acks=all) for `<topic_prefix>.requests`
 * (topic_prefix NULL: "countersign"). brokers: "host:port[,host:port]".
 * Nothing is sent until the first produce. Returns NULL with err filled on a
 * bad configuration. Owned by the caller: countersign_producer_free().
 */
struct countersign_producer *countersign_producer_new(const char *brokers,
                                                      const char *topic_prefix,
                                                      char err[COUNTERSIGN_ERRLEN]);

/*
 * countersign_producer_new() for a cluster that wants SASL or TLS: props
 * holds n_props librdkafka properties as name, value, name, value, ...
 * (e.g. "security.protocol", "SASL_SSL", "sasl.mechanisms", "SCRAM-SHA-512",
 * "sasl.username", ..., "sasl.password", ..., "ssl.ca.location", ...,
 * "ssl.certificate.location", ..., "ssl.key.location", ...), borrowed.
 * bootstrap.servers, enable.idempotence, acks and message.timeout.ms are the
 * producer's own and refused; a refused secret (a password, *.pem) is never
 * quoted in err. SCRAM against Kafka 4.x needs librdkafka 2.6.1 or later.
 */
struct countersign_producer *countersign_producer_new_props(const char *brokers,
                                                            const char *topic_prefix,
                                                            const char *const *props,
                                                            size_t n_props,
                                                            char err[COUNTERSIGN_ERRLEN]);

/*
 * Enqueues one envelope, keyed by its request_id, and waits for the broker's
 * delivery report: COUNTERSIGN_OK means the broker has stored it (the worker
 * will ingest it; a repeated request_id is a no-op there). Blocks for at most
 * 30 s (message.timeout.ms), then COUNTERSIGN_CONNECTION with err saying
 * why. COUNTERSIGN_INVALID_ARGUMENT, nothing sent, for what can be told
 * wrong here: a missing field, an unknown method, JSON that does not parse,
 * json and body both given, a message over the producer's size limit (the
 * worker judges the rest and dead-letters what it refuses, with the reason).
 * There is no separate flush: nothing is left in flight after it returns.
 */
enum countersign_code countersign_produce_request(struct countersign_producer *producer,
                                                  const struct countersign_envelope *env,
                                                  char err[COUNTERSIGN_ERRLEN])
    COUNTERSIGN_MUSTCHECK;

/*
 * Seals batch `batch_id` of `agent` with its member count
 * (1..COUNTERSIGN_BATCH_MAX): {"type": "seal", "agent", "batch_id",
 * "count"} on the requests topic, keyed by the batch id, and waits for the
 * broker like countersign_produce_request(). The members
 * (countersign_envelope.batch_id) and the seal may be produced in any order;
 * the batch becomes decidable once the worker has stored both. The same
 * seal again is a no-op there; a seal with another count is dead-lettered
 * (conflict). INVALID_ARGUMENT, nothing sent, for a missing agent, a bad
 * batch_id (1..COUNTERSIGN_BATCH_ID_MAX letters, digits and ._:-) or count.
 */
enum countersign_code countersign_produce_seal(struct countersign_producer *producer,
                                               const char *agent, const char *batch_id,
                                               int count, char err[COUNTERSIGN_ERRLEN])
    COUNTERSIGN_MUSTCHECK;

/*
 * Envelope signatures (README "Signed envelopes"). The worker refuses a
 * record on the requests topic unless it carries
 *   countersign-signature: t=<unix seconds>,k=<key id>,v1=<hex>
 * with v1 = HMAC-SHA256(secret, "<t>." || record value), signed by a live
 * key of the envelope's agent (`countersign agent key create AGENT` prints
 * the key id and the 64-hex-digit secret once).
 */
#define COUNTERSIGN_SIGNATURE_HEADER "countersign-signature"
#define COUNTERSIGN_SIGNATURE_MAX 160   /* the header value, with its NUL */

/*
 * Makes every later produce on this producer (envelopes and seals) carry the
 * signature header, signed with this agent key at the time of producing.
 * key_id is "csk_" and 16 lower-case hex digits, secret 64 lower-case hex
 * digits; both are copied (the secret is wiped when the producer is freed).
 * INVALID_ARGUMENT for a malformed key id or secret. Without a key the
 * producer sends unsigned envelopes, which a worker refuses unless its
 * operator set CS_KAFKA_ALLOW_UNSIGNED.
 */
enum countersign_code countersign_producer_set_signing_key(struct countersign_producer *producer,
                                                           const char *key_id, const char *secret,
                                                           char err[COUNTERSIGN_ERRLEN])
    COUNTERSIGN_MUSTCHECK;

/*
 * For your own producer: writes into out the countersign-signature header
 * value for the record value value[0..len) at unix_time (seconds; sign just
 * before producing: the worker refuses a time outside its replay window,
 * 5 minutes by default). INVALID_ARGUMENT for a malformed key id or secret.
 */
enum countersign_code countersign_sign_envelope(const char *key_id, const char *secret,
                                                long long unix_time, const void *value,
                                                size_t len,
                                                char out[COUNTERSIGN_SIGNATURE_MAX],
                                                char err[COUNTERSIGN_ERRLEN])
    COUNTERSIGN_MUSTCHECK;

/* Flushes (up to 5 s) and destroys the producer. NULL does nothing. */
void countersign_producer_free(struct countersign_producer *producer);

#ifdef __cplusplus
}
#endif

/* clang-format on */

#endif
