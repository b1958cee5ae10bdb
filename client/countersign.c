/*
 * countersign.c -- the C client itself: its settings, its one HTTP exchange
 * (libcurl easy interface, one handle per client so the connection is kept
 * alive), the retry policy and the mapping of answers to struct
 * countersign_error. Runs in the user's process, on the caller's thread.
 *
 * Invariants: the API key goes out only in "Authorization: Bearer" and is
 * scrubbed from every error text; a request that may have reached the server
 * is re-sent only when the caller said it may be (CLIENT_RETRY_ALL: reads
 * and submissions with an idempotency key); a submission without one never
 * reuses a kept-alive connection, so libcurl cannot silently re-send it on a
 * connection that died. Every answer is capped (REPLY_MAX) before parsing.
 * It does not follow redirects and speaks only http and https.
 *
 * The operations (submit, status, wait, cancel) are in approval.c.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "client.h"
#include "cs_mem.h"

#define DEFAULT_URL "http://127.0.0.1:8080"
#define REPLY_MAX ((size_t)64 << 20) /* stored bodies are capped server-side; base64 adds 1/3 */

struct countersign_client {
    char *base_url; /* without a trailing slash */
    char *api_key;  /* wiped on free */
    char *user_agent;
    CURL *curl;
    double timeout, backoff, backoff_max, poll_interval;
    int max_retries;
    uint32_t rng; /* xorshift state for backoff jitter */
};

/* ==== errors ============================================================= */

static const char *const code_names[] = {
    [COUNTERSIGN_OK] = "ok",
    [COUNTERSIGN_DENIED] = "denied",
    [COUNTERSIGN_EXPIRED] = "expired",
    [COUNTERSIGN_TIMEOUT] = "timeout",
    [COUNTERSIGN_EXECUTION_FAILED] = "execution_failed",
    [COUNTERSIGN_CANCELLED] = "cancelled",
    [COUNTERSIGN_AUTHENTICATION] = "authentication",
    [COUNTERSIGN_NOT_FOUND] = "not_found",
    [COUNTERSIGN_VALIDATION] = "validation",
    [COUNTERSIGN_PERMISSION] = "permission",
    [COUNTERSIGN_CONFLICT] = "conflict",
    [COUNTERSIGN_CONNECTION] = "connection",
    [COUNTERSIGN_SERVER] = "server",
    [COUNTERSIGN_INVALID_ARGUMENT] = "invalid_argument",
};

const char *countersign_code_name(enum countersign_code code)
{
    if ((unsigned)code < sizeof(code_names) / sizeof(code_names[0]) && code_names[code])
        return code_names[code];
    return "unknown";
}

void client_error_clear(struct countersign_error *e)
{
    if (e) {
        memset(e, 0, sizeof(*e));
        e->batch_index = -1;
    }
}

enum countersign_code client_fail(struct countersign_error *e, enum countersign_code code,
                                  int http_status, const char *server_code, const char *fmt, ...)
{
    if (!e)
        return code;
    client_error_clear(e);
    e->code = code;
    e->http_status = http_status;
    cs_strlcpy(e->server_code, server_code, sizeof(e->server_code));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return code;
}

enum countersign_code client_err(char *err, enum countersign_code code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, COUNTERSIGN_ERRLEN, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Replaces every occurrence of secret in s[size] with "***". */
static void scrub(char *s, size_t size, const char *secret)
{
    size_t n = strlen(secret);
    char *p;
    if (n == 0)
        return;
    while ((p = strstr(s, secret)) != NULL) {
        size_t tail = strlen(p + n) + 1;
        memcpy(p, "***", 3);
        memmove(p + 3, p + n, tail);
        if (n < 3)
            break; /* a key that short cannot be told apart from the mask */
    }
    (void)size;
}

static void scrub_error(struct countersign_error *e, const char *secret)
{
    if (!e)
        return;
    scrub(e->message, sizeof(e->message), secret);
    scrub(e->reason, sizeof(e->reason), secret);
    scrub(e->error_message, sizeof(e->error_message), secret);
    scrub(e->decided_by, sizeof(e->decided_by), secret);
}

bool client_retriable(const struct countersign_error *e)
{
    if (e->code == COUNTERSIGN_CONNECTION)
        return !strcmp(e->server_code, "connect_error") ||
               !strcmp(e->server_code, "request_timeout") ||
               !strcmp(e->server_code, "transport_error");
    if (e->code != COUNTERSIGN_SERVER || !strcmp(e->server_code, "invalid_response"))
        return false;
    static const int statuses[] = COUNTERSIGN_RETRY_STATUSES;
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (e->http_status == statuses[i])
            return true;
    return false;
}

/* The category of an HTTP error answer, as the SDKs decide it. */
static enum countersign_code category(long status, const char *code)
{
    if (!strcmp(code, "denied"))
        return COUNTERSIGN_DENIED;
    if (!strcmp(code, "cancelled"))
        return COUNTERSIGN_CANCELLED;
    if (!strcmp(code, "execution_failed"))
        return COUNTERSIGN_EXECUTION_FAILED;
    switch (status) {
    case 410: return COUNTERSIGN_EXPIRED;
    case 401: return COUNTERSIGN_AUTHENTICATION;
    case 403: return COUNTERSIGN_PERMISSION;
    case 404: return COUNTERSIGN_NOT_FOUND;
    case 409: return COUNTERSIGN_CONFLICT;
    default: break;
    }
    if (status >= 400 && status < 500 && status != 429)
        return COUNTERSIGN_VALIDATION;
    return COUNTERSIGN_SERVER;
}

/* Fills e from an error answer {"error": {"code", "message", "details"}}. */
static void error_from_reply(struct countersign_error *e, long status, const char *body, size_t len,
                             const char *approval_id)
{
    json_object *root = client_json_parse(body, len), *err = NULL, *details = NULL;
    if (root && json_object_object_get_ex(root, "error", &err) &&
        !json_object_is_type(err, json_type_object))
        err = NULL;
    const char *code = err ? client_json_str(err, "code") : NULL;
    const char *message = err ? client_json_str(err, "message") : NULL;
    char fallback[32];
    if (!code || !*code) {
        snprintf(fallback, sizeof(fallback), "http_%ld", status);
        code = fallback;
    }
    enum countersign_code cat = category(status, code);
    if (message && *message) {
        client_fail(e, cat, (int)status, code, "%s", message);
    } else {
        /* Not our JSON error (a proxy's page?): show a whitespace-collapsed snippet. */
        char snippet[201];
        size_t n = 0;
        for (size_t i = 0; i < len && n < sizeof(snippet) - 1; i++) {
            unsigned char ch = (unsigned char)body[i];
            bool space = ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t';
            if (space && (n == 0 || snippet[n - 1] == ' '))
                continue;
            snippet[n++] = space || ch < 0x20 ? ' ' : (char)ch;
        }
        snippet[n] = '\0';
        client_fail(e, cat, (int)status, code, "unexpected HTTP %ld answer from Countersign%s%s",
                    status, n ? ": " : "", snippet);
    }
    if (e && err && json_object_object_get_ex(err, "details", &details) &&
        json_object_is_type(details, json_type_object)) {
        client_json_copy(details, "approval_id", e->approval_id, sizeof(e->approval_id));
        client_json_copy(details, "reason", e->reason, sizeof(e->reason));
        client_json_copy(details, "decided_by", e->decided_by, sizeof(e->decided_by));
        client_json_copy(details, "decided_at", e->decided_at, sizeof(e->decided_at));
        client_json_copy(details, "error_code", e->error_code, sizeof(e->error_code));
        client_json_copy(details, "error_message", e->error_message, sizeof(e->error_message));
    }
    if (e && approval_id && !e->approval_id[0])
        cs_strlcpy(e->approval_id, approval_id, sizeof(e->approval_id));
    json_object_put(root);
}

/* ==== JSON helpers ======================================================= */

bool client_json_value(const char *text, size_t len, json_object **v)
{
    *v = NULL;
    if (!text || len >= INT32_MAX)
        return false;
    struct json_tokener *tok = json_tokener_new();
    /* Include the NUL: json-c then knows that a trailing number is complete. */
    json_object *o = json_tokener_parse_ex(tok, text, (int)len + 1);
    size_t end = json_tokener_get_parse_end(tok);
    while (end < len && strchr(" \t\r\n", text[end]))
        end++;
    bool ok = json_tokener_get_error(tok) == json_tokener_success && end >= len;
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(o);
        return false;
    }
    *v = o;
    return true;
}

json_object *client_json_parse(const char *text, size_t len)
{
    json_object *v = NULL;
    return client_json_value(text, len, &v) ? v : NULL;
}

const char *client_json_str(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

bool client_json_copy(json_object *o, const char *key, char *dst, size_t size)
{
    const char *s = client_json_str(o, key);
    cs_strlcpy(dst, s ? s : "", size);
    return s != NULL;
}

bool client_json_bool(json_object *o, const char *key, bool *out)
{
    json_object *v = NULL;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
        return false;
    *out = json_object_get_boolean(v);
    return true;
}

bool client_json_int(json_object *o, const char *key, int *out)
{
    json_object *v = NULL;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return false;
    int64_t n = json_object_get_int64(v);
    if (n < INT32_MIN || n > INT32_MAX)
        return false;
    *out = (int)n;
    return true;
}

json_object *client_reply_object(const struct client_reply *rep, struct countersign_error *e,
                                 const char *approval_id)
{
    json_object *o = client_json_parse(rep->body, rep->len);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        client_fail(e, COUNTERSIGN_SERVER, (int)rep->status, "invalid_response",
                    "Countersign answered HTTP %ld without a JSON object", rep->status);
        if (approval_id)
            cs_strlcpy(e->approval_id, approval_id, sizeof(e->approval_id));
        return NULL;
    }
    return o;
}

bool client_batch_id_ok(const char *id)
{
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789._:-";
    size_t n = id ? strlen(id) : 0;
    return n > 0 && n <= COUNTERSIGN_BATCH_ID_MAX && strspn(id, allowed) == n;
}

/* ==== time =============================================================== */

double client_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void client_sleep(double seconds)
{
    double until = client_now() + seconds;
    for (double left = seconds; left > 0; left = until - client_now()) {
        struct timespec ts = {.tv_sec = (time_t)left,
                              .tv_nsec = (long)((left - (double)(time_t)left) * 1e9)};
        if (nanosleep(&ts, NULL) == 0)
            break;
        if (errno != EINTR)
            break;
    }
}

/* ==== the client ========================================================= */

struct countersign_client *countersign_client_new(const char *base_url, const char *api_key,
                                                  char err[COUNTERSIGN_ERRLEN])
{
    if (!base_url || !*base_url)
        base_url = getenv("COUNTERSIGN_URL");
    if (!base_url || !*base_url)
        base_url = DEFAULT_URL;
    if (strncasecmp(base_url, "http://", 7) != 0 && strncasecmp(base_url, "https://", 8) != 0) {
        client_err(err, COUNTERSIGN_INVALID_ARGUMENT,
                   "the base URL must start with http:// or https://");
        return NULL;
    }
    if (!api_key || !*api_key) {
        client_err(err, COUNTERSIGN_INVALID_ARGUMENT, "an API key is required");
        return NULL;
    }
    if (strpbrk(api_key, "\r\n") || strpbrk(base_url, "\r\n ")) {
        client_err(err, COUNTERSIGN_INVALID_ARGUMENT,
                   "the API key and the base URL may not hold line breaks or spaces");
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        client_err(err, COUNTERSIGN_INVALID_ARGUMENT, "libcurl could not be initialised");
        return NULL;
    }
    CURL *curl = curl_easy_init();
    if (!curl) {
        curl_global_cleanup();
        client_err(err, COUNTERSIGN_INVALID_ARGUMENT, "libcurl could not make a handle");
        return NULL;
    }
    struct countersign_client *c = cs_calloc(1, sizeof(*c));
    c->base_url = cs_strdup(base_url);
    for (size_t n = strlen(c->base_url); n > 0 && c->base_url[n - 1] == '/'; n--)
        c->base_url[n - 1] = '\0';
    c->api_key = cs_strdup(api_key);
    c->curl = curl;
    c->timeout = 30.0;
    c->max_retries = COUNTERSIGN_DEFAULT_MAX_RETRIES;
    c->backoff = COUNTERSIGN_DEFAULT_BACKOFF;
    c->backoff_max = COUNTERSIGN_DEFAULT_BACKOFF_MAX;
    c->poll_interval = 2.0;
    c->rng = (uint32_t)time(NULL) ^ (uint32_t)(uintptr_t)c ^ 0x9e3779b9u;
    if (!c->rng)
        c->rng = 1;
    c->user_agent = cs_asprintf("countersign-c/%s %s", COUNTERSIGN_VERSION, curl_version());
    if (err)
        err[0] = '\0';
    return c;
}

void countersign_client_free(struct countersign_client *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    curl_global_cleanup();
    cs_wipe(c->api_key, strlen(c->api_key));
    cs_free(c->api_key);
    cs_free(c->base_url);
    cs_free(c->user_agent);
    cs_free(c);
}

enum countersign_code countersign_client_set_timeout(struct countersign_client *c, double seconds,
                                                     char err[COUNTERSIGN_ERRLEN])
{
    if (!c || !(seconds > 0) || seconds > 86400)
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT,
                          "the timeout must be more than 0 and at most 86400 seconds");
    c->timeout = seconds;
    return COUNTERSIGN_OK;
}

enum countersign_code countersign_client_set_retries(struct countersign_client *c, int max_retries,
                                                     double backoff_seconds,
                                                     double backoff_max_seconds,
                                                     char err[COUNTERSIGN_ERRLEN])
{
    if (!c || max_retries < 0 || max_retries > 100 || !(backoff_seconds >= 0) ||
        !(backoff_max_seconds >= 0) || backoff_max_seconds > 3600)
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT,
                          "max_retries must be 0..100 and the backoffs 0..3600 seconds");
    c->max_retries = max_retries;
    c->backoff = backoff_seconds;
    c->backoff_max = backoff_max_seconds;
    return COUNTERSIGN_OK;
}

enum countersign_code countersign_client_set_poll_interval(struct countersign_client *c,
                                                           double seconds,
                                                           char err[COUNTERSIGN_ERRLEN])
{
    if (!c || !(seconds > 0) || seconds > 3600)
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT,
                          "the poll interval must be more than 0 and at most 3600 seconds");
    c->poll_interval = seconds;
    return COUNTERSIGN_OK;
}

enum countersign_code countersign_client_set_user_agent(struct countersign_client *c,
                                                        const char *user_agent,
                                                        char err[COUNTERSIGN_ERRLEN])
{
    if (!c || !user_agent || strpbrk(user_agent, "\r\n") || strlen(user_agent) > 200)
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT,
                          "the user agent must be one line of at most 200 characters");
    cs_free(c->user_agent);
    c->user_agent =
        cs_asprintf("countersign-c/%s %s %s", COUNTERSIGN_VERSION, curl_version(), user_agent);
    return COUNTERSIGN_OK;
}

double client_poll_interval(const struct countersign_client *c)
{
    return c->poll_interval;
}

/* ==== one exchange ======================================================= */

struct sink {
    char *data;
    size_t len, cap;
    bool too_big;
    double retry_after; /* seconds from a Retry-After header, or -1 */
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t add = size * n;
    if (s->len + add > REPLY_MAX) {
        s->too_big = true;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    if (s->len + add + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + add + 1)
            cap *= 2;
        s->data = cs_realloc(s->data, cap);
        s->cap = cap;
    }
    memcpy(s->data + s->len, p, add);
    s->len += add;
    s->data[s->len] = '\0';
    return add;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof(name) - 1 && len < 200 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        char value[200];
        size_t v = len - (sizeof(name) - 1);
        memcpy(value, p + sizeof(name) - 1, v);
        value[v] = '\0';
        char *end = NULL;
        double secs = strtod(value, &end);
        while (end && (*end == ' ' || *end == '\r' || *end == '\n'))
            end++;
        if (!end || *end || end == value) {
            time_t when = curl_getdate(value, NULL);
            secs = when < 0 ? -1 : difftime(when, time(NULL));
        }
        if (secs == secs && secs >= -1)
            s->retry_after = secs < 0                             ? 0
                             : secs > COUNTERSIGN_RETRY_AFTER_MAX ? COUNTERSIGN_RETRY_AFTER_MAX
                                                                  : secs;
    }
    return len;
}

/*
 * Performs one request. Returns the curl code; *status is the HTTP status,
 * *sent whether any byte of the request went out.
 */
static CURLcode perform(struct countersign_client *c, const char *method, const char *url,
                        const char *body, double extra, bool fresh, long *status, bool *sent,
                        struct sink *s, char *curl_err)
{
    CURL *h = c->curl;
    struct curl_slist *hdrs = NULL;
    char *auth = cs_asprintf("Authorization: Bearer %s", c->api_key);
    hdrs = curl_slist_append(hdrs, auth);
    cs_wipe(auth, strlen(auth));
    cs_free(auth);
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (body)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");

    curl_easy_reset(h); /* keeps the live connection and the DNS cache */
    curl_err[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->timeout * 1000));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)((c->timeout + extra) * 1000));
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
    if (fresh)
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
    if (!strcmp(method, "POST")) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? strlen(body) : 0));
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    CURLcode cc = curl_easy_perform(h);
    long req_size = 0;
    *status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &req_size);
    *sent = req_size > 0;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hdrs);
    return cc;
}

static double backoff_delay(struct countersign_client *c, int retry)
{
    double ceiling = c->backoff;
    for (int i = 0; i < retry && ceiling < c->backoff_max; i++)
        ceiling *= 2;
    if (ceiling > c->backoff_max)
        ceiling = c->backoff_max;
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 17;
    c->rng ^= c->rng << 5;
    double r = (double)(c->rng % 10000) / 10000.0;
    return ceiling / 2 + r * ceiling / 2;
}

enum countersign_code client_call(struct countersign_client *c, const char *method,
                                  const char *path, const char *query, const char *body,
                                  double extra_seconds, enum client_retry retry,
                                  const char *approval_id, struct client_reply *out,
                                  struct countersign_error *e)
{
    char *url = cs_asprintf("%s%s%s%s", c->base_url, path, query ? "?" : "", query ? query : "");
    char curl_err[CURL_ERROR_SIZE];
    enum countersign_code rc;
    memset(out, 0, sizeof(*out));
    for (int attempt = 0;; attempt++) {
        struct sink s = {.retry_after = -1};
        long status = 0;
        bool sent = false;
        /* A submission that may not be re-sent never rides a kept-alive connection. */
        bool fresh = !strcmp(method, "POST") && retry != CLIENT_RETRY_ALL;
        CURLcode cc =
            perform(c, method, url, body, extra_seconds, fresh, &status, &sent, &s, curl_err);
        const char *why = curl_err[0] ? curl_err : curl_easy_strerror(cc);
        if (cc == CURLE_OK && status < 400) {
            out->status = status;
            out->body = s.data ? s.data : cs_strdup("");
            out->len = s.len;
            rc = COUNTERSIGN_OK;
            break;
        }
        if (cc == CURLE_OK)
            error_from_reply(e, status, s.data, s.len, approval_id);
        else if (s.too_big)
            client_fail(e, COUNTERSIGN_SERVER, (int)status, "invalid_response",
                        "Countersign's answer to %s %s is larger than %zu bytes", method, path,
                        REPLY_MAX);
        else if (!sent)
            client_fail(e, COUNTERSIGN_CONNECTION, 0, "connect_error",
                        "could not connect to Countersign at %s: %s", c->base_url, why);
        else if (cc == CURLE_OPERATION_TIMEDOUT)
            client_fail(e, COUNTERSIGN_CONNECTION, 0, "request_timeout",
                        "Countersign did not answer %s %s within %.0f s: %s", method, path,
                        c->timeout + extra_seconds, why);
        else
            client_fail(e, COUNTERSIGN_CONNECTION, 0, "transport_error", "%s %s failed: %s", method,
                        path, why);
        cs_free(s.data);
        rc = e->code;
        if (e->approval_id[0] == '\0' && approval_id)
            cs_strlcpy(e->approval_id, approval_id, sizeof(e->approval_id));
        bool may = (retry == CLIENT_RETRY_ALL && client_retriable(e)) ||
                   (retry == CLIENT_RETRY_CONNECT && e->code == COUNTERSIGN_CONNECTION &&
                    !strcmp(e->server_code, "connect_error"));
        if (!may || attempt >= c->max_retries)
            break;
        client_sleep(s.retry_after >= 0 ? s.retry_after : backoff_delay(c, attempt));
    }
    scrub_error(e, c->api_key);
    cs_free(url);
    return rc;
}

void client_reply_free(struct client_reply *r)
{
    if (!r)
        return;
    cs_free(r->body);
    r->body = NULL;
    r->len = 0;
}
