/*
 * call.c -- one provider call of the executor: the request as libcurl sends
 * it (the caller's headers, the Idempotency-Key, the injected secret) and
 * the response as it is captured (status, headers, body capped at
 * CS_RESPONSE_MAX_BYTES, Retry-After). The connection is refused at
 * socket time when the host resolved to a private address the grant does
 * not name. What a result means (retry, executed, failed) is decided in
 * executor.c.
 */
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "call.h"
#include "cs_crypto.h"
#include "cs_mem.h"
#include "cs_process.h"
#include "cs_request.h"
#include "cs_url.h"

#define RESP_HEADERS_MAX 64
#define RESP_HEADER_BYTES_MAX 16384
#define RETRY_AFTER_CAP_MS 60000

/* ---- capturing the response ---- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct job *j = arg;
    cs_buf_append_trunc(&j->resp, p, size * n);
    return size * n; /* keep reading past the cap: the call has happened */
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct job *j = arg;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* A new response (e.g. after 100 Continue): start over. */
        json_object_put(j->resp_headers);
        j->resp_headers = json_object_new_object();
        j->resp_header_bytes = 0;
        j->retry_after_ms = -1;
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon || colon == p)
        return len;
    j->resp_header_bytes += len;
    if (j->resp_header_bytes > RESP_HEADER_BYTES_MAX ||
        json_object_object_length(j->resp_headers) >= RESP_HEADERS_MAX)
        return len;
    char *name = cs_strndup(p, (size_t)(colon - p));
    for (char *c = name; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    const char *v = colon + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    char *value = cs_strndup(v, (size_t)(end - v));
    json_object *prev = NULL;
    if (json_object_object_get_ex(j->resp_headers, name, &prev)) {
        char *joined = cs_asprintf("%s, %s", json_object_get_string(prev), value);
        json_object_object_add(j->resp_headers, name, json_object_new_string(joined));
        cs_free(joined);
    } else {
        json_object_object_add(j->resp_headers, name, json_object_new_string(value));
    }
    if (strcmp(name, "retry-after") == 0) {
        /* Seconds, or an HTTP date (RFC 9110 10.2.3). */
        char *e = NULL;
        long s = strtol(value, &e, 10);
        if (e == value || *e != '\0') {
            time_t at = curl_getdate(value, NULL);
            s = at > 0 ? (long)(at - time(NULL)) : -1;
            s = at > 0 && s < 0 ? 0 : s;
        }
        if (s >= 0)
            j->retry_after_ms = s * 1000 > RETRY_AFTER_CAP_MS ? RETRY_AFTER_CAP_MS : s * 1000;
    }
    cs_free(name);
    cs_free(value);
    return len;
}

/*
 * A call on a connection of its own (no keys) records, as libcurl closes
 * each of its sockets, how many bytes the provider's TCP stack acknowledged
 * (Linux TCP_INFO). A request that was written into the socket but of which
 * no byte was acknowledged never reached the provider's application: the
 * handshake's own sequence number is the only thing acknowledged when the
 * provider's accept queue was full.
 */
static int on_close(void *arg, curl_socket_t s)
{
    struct job *j = arg;
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
        len >= offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked)) {
        if ((int64_t)ti.tcpi_bytes_acked > j->acked)
            j->acked = (int64_t)ti.tcpi_bytes_acked;
        if (ti.tcpi_bytes_acked <= 1) {
            /* Abort rather than close: a plain close would leave the kernel
             * delivering the unacknowledged request after we gave up on it
             * (the late arrivals of issue 14). With a reset it never arrives. */
            struct linger l = {1, 0};
            setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        }
    } else {
        j->acked = INT64_MAX; /* cannot tell: assume it arrived */
    }
    return close(s);
}

static curl_socket_t on_open(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct job *j = arg;
    (void)purpose;
    if (cs_addr_is_private(&addr->addr) && !j->allow_private) {
        j->blocked = true;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype, addr->protocol);
}

/* ---- building the request ---- */

static enum cs_err inject(struct job *j, const struct cs_grant *g, const unsigned char *secret,
                          size_t len)
{
    char *line;
    if (g->inject == CS_INJECT_BEARER) {
        line = cs_asprintf("Authorization: Bearer %.*s", (int)len, secret);
    } else if (g->inject == CS_INJECT_BASIC) {
        char *b64 = cs_b64_encode(secret, len, false);
        line = cs_asprintf("Authorization: Basic %s", b64);
        cs_wipe(b64, strlen(b64));
        cs_free(b64);
    } else {
        line = cs_asprintf("%s: %.*s", g->inject_header, (int)len, secret);
    }
    struct curl_slist *s = curl_slist_append(j->hdrs, line);
    cs_wipe(line, strlen(line));
    cs_free(line);
    if (!s)
        return CS_ERR_INTERNAL;
    j->hdrs = s;
    return CS_OK;
}

enum cs_err call_headers(struct job *j, const struct cs_grant *g, const struct cs_config *cfg,
                         char *err)
{
    bool has_ct = false;
    json_object_object_foreach(j->req_headers, name, val)
    {
        if (cs_header_forbidden(name) ||
            (g->inject == CS_INJECT_HEADER && strcasecmp(name, g->inject_header) == 0))
            return cs_err_set(err, CS_ERR_FORBIDDEN_HEADER, "stored request sets %s", name);
        has_ct = has_ct || strcasecmp(name, "content-type") == 0;
        char *line = cs_asprintf("%s: %s", name, json_object_get_string(val));
        j->hdrs = curl_slist_append(j->hdrs, line);
        cs_free(line);
    }
    char *idem = cs_asprintf("Idempotency-Key: countersign-%s", j->id);
    j->hdrs = curl_slist_append(j->hdrs, idem);
    cs_free(idem);
    j->hdrs = curl_slist_append(j->hdrs, "Expect:");
    if (!has_ct)
        j->hdrs = curl_slist_append(j->hdrs, "Content-Type:");
    unsigned char *secret = NULL;
    size_t slen = 0;
    enum cs_err rc = cs_grant_secret(g, cfg->master_key, &secret, &slen, err);
    if (rc)
        return rc;
    rc = inject(j, g, secret, slen);
    cs_wipe(secret, slen);
    cs_free(secret);
    return rc;
}

CURL *call_easy(struct job *j, const struct cs_config *cfg)
{
    CURL *e = curl_easy_init();
    cs_assert(e);
    cs_buf_free(&j->resp);
    cs_buf_init(&j->resp, (size_t)cfg->response_max_bytes);
    json_object_put(j->resp_headers);
    j->resp_headers = json_object_new_object();
    j->resp_header_bytes = 0;
    j->retry_after_ms = -1;
    j->blocked = false;
    j->acked = j->idempotent ? INT64_MAX : -1;
    curl_easy_setopt(e, CURLOPT_URL, j->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, j);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)j->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(j->timeout_ms < 10000 ? j->timeout_ms : 10000));
    curl_easy_setopt(e, CURLOPT_USERAGENT, "countersign/" CS_VERSION);
    /* HTTP/2 where the provider offers it over TLS (ALPN), many calls on one
     * connection; keep-alive otherwise (see the reuse rule below). */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, j);
    if (cfg->exec_ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, cfg->exec_ca_file);
    if (!j->idempotent) {
        /* libcurl silently re-sends a request once when a reused keep-alive
         * connection dies before any answer. Without idempotency keys that
         * could run the call twice: such calls get a connection of their own. */
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
        /* Such a connection closes with its call: what its peer acknowledged is
         * known before the call's result is read. */
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close);
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, j);
    }
    if (!strcmp(j->method, "HEAD"))
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(j->method, "GET") || j->body_len)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, j->method);
    if (j->body_len || !strcmp(j->method, "POST") || !strcmp(j->method, "PUT") ||
        !strcmp(j->method, "PATCH")) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body ? (char *)j->body : "");
    }
    return e;
}

void call_wipe_headers(struct job *j)
{
    for (struct curl_slist *s = j->hdrs; s; s = s->next)
        cs_wipe(s->data, strlen(s->data));
    curl_slist_free_all(j->hdrs);
    j->hdrs = NULL;
}
