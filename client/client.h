/*
 * client.h -- what the files of client/ share; never installed, never
 * included by users (they see only include/countersign.h).
 *
 * countersign.c owns the client and its one HTTP exchange with retries and
 * the mapping of answers to struct countersign_error; approval.c the four
 * agent operations; batch.c the batch calls; request.c the JSON of a
 * request (HTTP and Kafka); base64.c the body encoding; producer.c the Kafka
 * producer.
 * Memory comes from lib/cs_mem.c (aborts on exhaustion), linked into
 * libcountersign-client.a; nothing else of lib/ is used.
 */
#ifndef CLIENT_H
#define CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "countersign.h"

/* How much of a request may be retried (see countersign_client_set_retries). */
enum client_retry {
    CLIENT_RETRY_NONE,    /* never (await_approval retries by itself) */
    CLIENT_RETRY_CONNECT, /* only when nothing was sent */
    CLIENT_RETRY_ALL      /* transport errors and 429/5xx */
};

/* One HTTP answer with a status below 400. */
struct client_reply {
    long status;
    char *body; /* owned (cs_free), NUL-terminated */
    size_t len;
};

/*
 * Sends method base_url+path[?query] with body (JSON text or NULL), retrying
 * per `retry`; extra_seconds is added to the HTTP timeout (long-polls,
 * inline execution). e must not be NULL. Returns COUNTERSIGN_OK and a reply the caller frees with
 * client_reply_free(), or the mapped error (approval_id, when known, is put
 * into it). Thread: the client's.
 */
enum countersign_code client_call(struct countersign_client *c, const char *method,
                                  const char *path, const char *query, const char *body,
                                  double extra_seconds, enum client_retry retry,
                                  const char *approval_id, struct client_reply *out,
                                  struct countersign_error *e);
void client_reply_free(struct client_reply *r);

/* Is a later identical request likely to get another answer? */
bool client_retriable(const struct countersign_error *e);

/* The poll interval of await_approval, seconds. */
double client_poll_interval(const struct countersign_client *c);

/* Sleeps `seconds` (monotonic); the monotonic clock in seconds. */
void client_sleep(double seconds);
double client_now(void);

/* Fills e (may be NULL) and returns code; the message is printf-formatted. */
enum countersign_code client_fail(struct countersign_error *e, enum countersign_code code,
                                  int http_status, const char *server_code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Zeroes e (may be NULL): code COUNTERSIGN_OK, batch_index -1. */
void client_error_clear(struct countersign_error *e);
/* Writes a formatted message into err[COUNTERSIGN_ERRLEN] (may be NULL), returns code. */
enum countersign_code client_err(char *err, enum countersign_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Parses the NUL-terminated JSON text of len bytes (surrounding whitespace
 * allowed) into *v (NULL for JSON null); false when it is not one JSON value.
 * The caller puts *v. client_json_parse: the same, NULL for anything else.
 */
bool client_json_value(const char *text, size_t len, json_object **v);
json_object *client_json_parse(const char *text, size_t len);
/* The string member `key` of o, or NULL when absent, null or not a string. Borrowed. */
const char *client_json_str(json_object *o, const char *key);
/* Copies a string member into dst[size] ("" when absent); false when absent. */
bool client_json_copy(json_object *o, const char *key, char *dst, size_t size);
/* A boolean / integer (within int) member into *out; false when absent or another type. */
bool client_json_bool(json_object *o, const char *key, bool *out);
bool client_json_int(json_object *o, const char *key, int *out);
/*
 * The reply's body as a JSON object (the caller puts it), or NULL with e
 * filled (SERVER, invalid_response; approval_id when given).
 */
json_object *client_reply_object(const struct client_reply *rep, struct countersign_error *e,
                                 const char *approval_id);

/* A batch id: 1..COUNTERSIGN_BATCH_ID_MAX letters, digits and ._:- (safe in a path). */
bool client_batch_id_ok(const char *id);

/*
 * The fields common to an HTTP submission and a Kafka envelope. The id is
 * sent as idempotency_key (HTTP) or request_id (Kafka, with agent).
 */
struct client_fields {
    const char *id, *agent, *grant_id, *method, *url, *json, *reason, *context, *batch_id;
    const void *body;
    size_t body_len;
    const struct countersign_header *headers, *query_params, *path_params;
    size_t n_headers, n_query_params, n_path_params;
};
/* The fields of HTTP submission req, under id and in batch_id (either may be NULL). */
struct client_fields client_fields_of(const struct countersign_request *req, const char *id,
                                      const char *batch_id);
#define CLIENT_JSON_HTTP 0
#define CLIENT_JSON_ENVELOPE 1

/*
 * Validates f and builds its JSON object text (cs_malloc'd, the caller frees
 * it) into *out. COUNTERSIGN_INVALID_ARGUMENT with err[COUNTERSIGN_ERRLEN].
 */
enum countersign_code client_request_json(const struct client_fields *f, int mode, char **out,
                                          char *err) COUNTERSIGN_MUSTCHECK;

/* Base64 (RFC 4648, padded). encode: a fresh cs_malloc'd string. */
char *client_b64_encode(const void *p, size_t n);
/* decode: *out (cs_malloc'd, n bytes plus a NUL not counted); false if invalid. */
bool client_b64_decode(const char *s, size_t len, unsigned char **out, size_t *n);

#endif
