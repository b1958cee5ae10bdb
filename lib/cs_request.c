/*
 * cs_request.c -- parsing, validation and digest of a requested call
 * (see cs_request.h). Used by the worker's Kafka ingest and by the api.
 * Nothing here touches the network or the database.
 */
#include "cs_request.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cs_buf.h"
#include "cs_ident.h"
#include "cs_json.h"
#include "cs_mem.h"
#include "cs_url.h"

static const char *const methods[] = {"GET",    "POST", "PUT",     "PATCH",
                                      "DELETE", "HEAD", "OPTIONS", NULL};

/* Headers callers may not set: credentials (security invariant 5), headers
 * that Countersign or libcurl owns, and method overrides, which many
 * frameworks honour: a POST the policy saw could run there as a DELETE. */
static const char *const forbidden_headers[] = {"authorization",
                                                "cookie",
                                                "proxy-authorization",
                                                "x-api-key",
                                                "host",
                                                "idempotency-key",
                                                "content-length",
                                                "transfer-encoding",
                                                "connection",
                                                "te",
                                                "upgrade",
                                                "expect",
                                                "keep-alive",
                                                "proxy-connection",
                                                "trailer",
                                                "x-http-method-override",
                                                "x-http-method",
                                                "x-method-override",
                                                NULL};

bool cs_header_forbidden(const char *name)
{
    for (const char *const *f = forbidden_headers; *f; f++)
        if (strcasecmp(*f, name) == 0)
            return true;
    return false;
}

void cs_request_free(struct cs_request *rq)
{
    if (!rq)
        return;
    cs_free(rq->request_id);
    cs_free(rq->agent);
    cs_free(rq->grant_id);
    cs_free(rq->method);
    cs_free(rq->url);
    cs_free(rq->host);
    cs_free(rq->path);
    json_object_put(rq->headers);
    cs_free(rq->body);
    cs_free(rq->reason);
    json_object_put(rq->context);
    cs_free(rq->batch_id);
    memset(rq, 0, sizeof(*rq));
}

/* A request id or idempotency key: 1..max bytes, no control character.
 * (Names of agents, grants and batches follow cs_ident.h.) */
static bool printable(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

/* True when a string anywhere in v holds U+0000, which a jsonb column refuses
 * (one such envelope would fail its whole ingest batch). */
static bool has_nul(json_object *v)
{
    if (json_object_is_type(v, json_type_string))
        return strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v);
    if (json_object_is_type(v, json_type_array))
        for (size_t i = 0; i < json_object_array_length(v); i++)
            if (has_nul(json_object_array_get_idx(v, i)))
                return true;
    if (json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, key, val)
        {
            (void)key;
            if (has_nul(val))
                return true;
        }
    }
    return false;
}

static bool header_name_ok(const char *s)
{
    if (!*s || strlen(s) > 256)
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || strchr("!#$%&'*+-.^_`|~", *s)))
            return false;
    return true;
}

static bool header_value_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 && *s != '\t')
            return false;
    return true;
}

static enum cs_err parse_headers(json_object *h, const char *field, struct cs_request *rq,
                                 char *err)
{
    rq->headers = json_object_new_object();
    if (!h)
        return CS_OK;
    if (json_object_object_length(h) > CS_HEADERS_MAX)
        return cs_err_set(err, CS_ERR_INVALID, "\"%s\": at most %d headers", field, CS_HEADERS_MAX);
    json_object_object_foreach(h, name, val)
    {
        if (!header_name_ok(name))
            return cs_err_set(err, CS_ERR_INVALID, "\"%s\": invalid header name \"%.64s\"", field,
                              name);
        if (cs_header_forbidden(name))
            return cs_err_set(err, CS_ERR_FORBIDDEN_HEADER,
                              "\"%s\": callers may not set the %s header", field, name);
        if (!json_object_is_type(val, json_type_string))
            return cs_err_set(err, CS_ERR_INVALID, "\"%s\": header %s must be a string", field,
                              name);
        const char *v = json_object_get_string(val);
        if ((size_t)json_object_get_string_len(val) != strlen(v) || strlen(v) > 8192 ||
            !header_value_ok(v))
            return cs_err_set(err, CS_ERR_INVALID,
                              "\"%s\": header %s has a control character or is too long", field,
                              name);
        json_object_object_foreach(rq->headers, seen, sv)
        {
            (void)sv;
            if (strcasecmp(seen, name) == 0)
                return cs_err_set(err, CS_ERR_INVALID, "\"%s\": header %s appears twice", field,
                                  name);
        }
        json_object_object_add(rq->headers, name, json_object_new_string(v));
    }
    return CS_OK;
}

/* Percent-encodes everything but RFC 3986 unreserved characters. */
static enum cs_err put_encoded(struct cs_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        enum cs_err rc;
        if (isalnum(c) || strchr("-._~", c))
            rc = cs_buf_append(b, s, 1);
        else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = cs_buf_append(b, e, 3);
        }
        if (rc)
            return rc;
    }
    return CS_OK;
}

/* Text of a scalar parameter value (string, number or boolean), or NULL;
 * *nul: a string holding U+0000, which the URL would cut (refused). */
static const char *scalar_text(json_object *v, bool *nul)
{
    *nul = json_object_is_type(v, json_type_string) &&
           strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v);
    if (json_object_is_type(v, json_type_string) || json_object_is_type(v, json_type_int) ||
        json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_boolean))
        return json_object_get_string(v);
    return NULL;
}

static enum cs_err substitute_path(const char *url, json_object *params, char **out, char *err)
{
    struct cs_buf b;
    cs_buf_init(&b, CS_URL_MAX);
    enum cs_err rc = CS_OK;
    for (const char *p = url; *p && !rc;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (!close) {
            rc = cs_buf_append(&b, p, 1);
            p++;
            continue;
        }
        char name[65];
        size_t n = (size_t)(close - p - 1);
        if (n == 0 || n >= sizeof(name)) {
            rc = cs_err_set(err, CS_ERR_INVALID, "\"url\": bad path parameter placeholder");
            break;
        }
        memcpy(name, p + 1, n);
        name[n] = '\0';
        json_object *v = NULL;
        const char *text = NULL;
        bool nul = false;
        if (!params || !json_object_object_get_ex(params, name, &v) ||
            !(text = scalar_text(v, &nul))) {
            rc = cs_err_set(err, CS_ERR_INVALID, "\"path_params\": no value for {%s}", name);
            break;
        }
        if (nul) {
            rc = cs_err_set(err, CS_ERR_INVALID, "\"path_params\": {%s} contains a NUL character",
                            name);
            break;
        }
        if (!*text) {
            rc = cs_err_set(err, CS_ERR_INVALID, "\"path_params\": {%s} is empty", name);
            break;
        }
        if (!strcmp(text, ".") || !strcmp(text, "..")) {
            /* Unreserved, so not encoded: it would climb out of its segment. */
            rc = cs_err_set(err, CS_ERR_INVALID, "\"path_params\": {%s} must not be . or ..", name);
            break;
        }
        rc = put_encoded(&b, text);
        p = close + 1;
    }
    if (!rc && params) {
        /* Checked by name: a placeholder used twice must not hide an unused one. */
        json_object_object_foreach(params, key, val)
        {
            (void)val;
            char *ph = cs_asprintf("{%s}", key);
            bool found = strstr(url, ph) != NULL;
            cs_free(ph);
            if (!found) {
                rc = cs_err_set(err, CS_ERR_INVALID,
                                "\"path_params\": %.64s is not used in \"url\"", key);
                break;
            }
        }
    }
    if (rc == CS_ERR_TOO_LARGE)
        rc = cs_err_set(err, CS_ERR_BAD_URL, "URL longer than %d bytes", CS_URL_MAX);
    if (rc) {
        cs_buf_free(&b);
        return rc;
    }
    *out = cs_buf_take(&b, NULL);
    return CS_OK;
}

static enum cs_err append_query(char **url, json_object *q, char *err)
{
    if (!q || json_object_object_length(q) == 0)
        return CS_OK;
    CURLU *h = curl_url();
    cs_assert(h);
    enum cs_err rc = CS_OK;
    if (curl_url_set(h, CURLUPART_URL, *url, 0) != CURLUE_OK) {
        curl_url_cleanup(h);
        return cs_err_set(err, CS_ERR_BAD_URL, "invalid URL");
    }
    json_object_object_foreach(q, key, val)
    {
        int n = json_object_is_type(val, json_type_array) ? (int)json_object_array_length(val) : 1;
        for (int i = 0; i < n && !rc; i++) {
            json_object *v = json_object_is_type(val, json_type_array)
                                 ? json_object_array_get_idx(val, (size_t)i)
                                 : val;
            bool nul = false;
            const char *text = scalar_text(v, &nul);
            if (nul) {
                rc = cs_err_set(err, CS_ERR_INVALID,
                                "\"query_params\": %.64s contains a NUL character", key);
                break;
            }
            if (!text || !*key || strchr(key, '=')) {
                rc = cs_err_set(err, CS_ERR_INVALID,
                                "\"query_params\": %.64s must be a name without '=' and a string, "
                                "number, boolean or an array of them",
                                key);
                break;
            }
            char *pair = cs_asprintf("%s=%s", key, text);
            if (curl_url_set(h, CURLUPART_QUERY, pair, CURLU_APPENDQUERY | CURLU_URLENCODE) !=
                CURLUE_OK)
                rc = cs_err_set(err, CS_ERR_BAD_URL, "cannot add query parameter %.64s", key);
            cs_free(pair);
        }
        if (rc)
            break;
    }
    char *full = NULL;
    if (!rc && curl_url_get(h, CURLUPART_URL, &full, 0) != CURLUE_OK)
        rc = cs_err_set(err, CS_ERR_BAD_URL, "invalid URL");
    if (!rc) {
        cs_free(*url);
        *url = cs_strdup(full);
    }
    curl_free(full);
    curl_url_cleanup(h);
    return rc;
}

/* True when the headers declare a JSON body: a Content-Type of
 * application/json or any "+json" type, parameters aside. */
static bool declares_json(json_object *headers)
{
    json_object_object_foreach(headers, name, v)
    {
        if (strcasecmp(name, "content-type") != 0)
            continue;
        const char *t = json_object_get_string(v);
        while (*t == ' ' || *t == '\t')
            t++;
        size_t n = strcspn(t, "; \t");
        return (n == 16 && strncasecmp(t, "application/json", 16) == 0) ||
               (n > 5 && strncasecmp(t + n - 5, "+json", 5) == 0 && memchr(t, '/', n));
    }
    return false;
}

/*
 * A raw body ("body" or "body_b64") whose Content-Type says JSON must be
 * strict JSON (cs_json_parse: one value, RFC 3629 UTF-8, no name twice):
 * policy rules and the approval page read it with json-c, which keeps the
 * last of two "amount"s, while a provider may keep the first.
 */
static enum cs_err strict_json_body(const char *field, const struct cs_request *rq, char *err)
{
    if (!declares_json(rq->headers))
        return CS_OK;
    json_object *doc = NULL;
    char jerr[CS_ERRLEN];
    enum cs_err rc = rq->body_len ? cs_json_parse((const char *)rq->body, rq->body_len, &doc, jerr)
                                  : cs_err_set(jerr, CS_ERR_MALFORMED_JSON, "it is empty");
    json_object_put(doc);
    if (rc == CS_ERR_MALFORMED_JSON || rc == CS_ERR_TOO_LARGE)
        return cs_err_set(
            err, CS_ERR_INVALID,
            "\"%s\": the Content-Type says JSON, but the body is not strict JSON (%s)", field,
            jerr);
    return rc ? cs_err_set(err, rc, "%s", jerr) : CS_OK;
}

static enum cs_err parse_body(json_object *obj, size_t max_body, struct cs_request *rq, char *err)
{
    json_object *js = NULL, *tmp = NULL;
    const char *text = NULL, *b64 = NULL;
    int given = 0;
    if (json_object_object_get_ex(obj, "json", &tmp))
        given++, js = tmp; /* a JSON null body is allowed: it serialises as "null" */
    enum cs_err rc = cs_json_str(obj, "body", false, SIZE_MAX, &text, err);
    if (!rc)
        rc = cs_json_str(obj, "body_b64", false, SIZE_MAX, &b64, err);
    if (rc)
        return rc;
    if ((text && strlen(text) > max_body) || (b64 && strlen(b64) > max_body / 3 * 4 + 4))
        return cs_err_set(err, CS_ERR_TOO_LARGE, "the body is larger than %zu bytes", max_body);
    given += (text != NULL) + (b64 != NULL);
    if (given > 1)
        return cs_err_set(err, CS_ERR_INVALID,
                          "give at most one of \"json\", \"body\", \"body_b64\"");
    if (json_object_object_get_ex(obj, "json", &tmp)) {
        size_t len = 0;
        const char *s = js ? cs_json_text(js, &len) : "null";
        if (!js)
            len = 4;
        if (len > max_body)
            return cs_err_set(err, CS_ERR_TOO_LARGE, "\"json\" is larger than %zu bytes", max_body);
        rq->body = cs_memdup(s, len);
        rq->body_len = len;
        rq->body_is_json = true;
        bool has_ct = false;
        json_object_object_foreach(rq->headers, name, v)
        {
            (void)v;
            has_ct = has_ct || strcasecmp(name, "content-type") == 0;
        }
        if (!has_ct)
            json_object_object_add(rq->headers, "Content-Type",
                                   json_object_new_string("application/json"));
    } else if (text) {
        rq->body_len = strlen(text);
        rq->body = cs_memdup(text, rq->body_len);
        return strict_json_body("body", rq, err);
    } else if (b64) {
        if (cs_b64_decode(b64, strlen(b64), false, &rq->body, &rq->body_len) != CS_OK)
            return cs_err_set(err, CS_ERR_INVALID, "\"body_b64\" is not valid base64");
        if (rq->body_len > max_body)
            return cs_err_set(err, CS_ERR_TOO_LARGE, "\"body_b64\" decodes to more than %zu bytes",
                              max_body);
        return strict_json_body("body_b64", rq, err);
    }
    return CS_OK;
}

enum cs_err cs_request_parse(json_object *obj, unsigned mode, size_t max_body,
                             struct cs_request *rq, char *err)
{
    static const char *const envelope_keys[] = {
        "request_id",  "agent",  "grant_id", "method",   "url",
        "headers",     "json",   "body",     "body_b64", "query_params",
        "path_params", "reason", "context",  "batch_id", NULL};
    static const char *const submit_keys[] = {
        "idempotency_key", "grant_id",    "method", "url",
        "extra_headers",   "json",        "body",   "body_b64",
        "query_params",    "path_params", "reason", "context",
        "batch_id",        NULL};
    const bool env = mode == CS_REQ_ENVELOPE;
    const char *rid = NULL, *agent = NULL, *grant = NULL, *method = NULL, *url = NULL,
               *reason = NULL, *batch = NULL;
    json_object *headers = NULL, *query = NULL, *pathp = NULL, *context = NULL;
    enum cs_err rc;

    memset(rq, 0, sizeof(*rq));
    if (!json_object_is_type(obj, json_type_object))
        return cs_err_set(err, CS_ERR_INVALID, "the request must be a JSON object");
    if ((rc = cs_json_only_keys(obj, env ? envelope_keys : submit_keys, err)) ||
        (rc = cs_json_str(obj, env ? "request_id" : "idempotency_key", env, CS_REQ_ID_MAX, &rid,
                          err)) ||
        (env && (rc = cs_json_str(obj, "agent", true, 64, &agent, err))) ||
        (rc = cs_json_str(obj, "grant_id", true, 64, &grant, err)) ||
        (rc = cs_json_str(obj, "method", true, 16, &method, err)) ||
        (rc = cs_json_str(obj, "url", true, CS_URL_MAX, &url, err)) ||
        (rc = cs_json_str(obj, "reason", false, CS_REASON_MAX, &reason, err)) ||
        (rc = cs_json_str(obj, "batch_id", false, 128, &batch, err)) ||
        (rc = cs_json_typed(obj, env ? "headers" : "extra_headers", false, json_type_object,
                            &headers, err)) ||
        (rc = cs_json_typed(obj, "query_params", false, json_type_object, &query, err)) ||
        (rc = cs_json_typed(obj, "path_params", false, json_type_object, &pathp, err)) ||
        (rc = cs_json_typed(obj, "context", false, json_type_object, &context, err)))
        goto fail;
    if (rid && !printable(rid, CS_REQ_ID_MAX)) {
        rc = cs_err_set(err, CS_ERR_INVALID, "\"%s\" must be 1-%d printable characters",
                        env ? "request_id" : "idempotency_key", CS_REQ_ID_MAX);
        goto fail;
    }
    const struct {
        const char *field, *value;
        enum cs_ident kind;
    } names[] = {{"agent", agent, CS_IDENT_AGENT},
                 {"grant_id", grant, CS_IDENT_ID},
                 {"batch_id", batch, CS_IDENT_BATCH}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].value && !cs_ident_valid(names[i].value, names[i].kind)) {
            rc = cs_err_set(err, CS_ERR_INVALID, "\"%s\" must be %s", names[i].field,
                            cs_ident_rule(names[i].kind));
            goto fail;
        }
    }
    for (const char *const *m = methods; *m && !rq->method; m++)
        if (strcasecmp(*m, method) == 0)
            rq->method = cs_strdup(*m);
    if (!rq->method) {
        rc = cs_err_set(err, CS_ERR_INVALID,
                        "\"method\" must be GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS");
        goto fail;
    }
    if (context) {
        size_t clen = 0;
        cs_json_text(context, &clen);
        if (clen > CS_CONTEXT_MAX) {
            rc = cs_err_set(err, CS_ERR_TOO_LARGE, "\"context\" is larger than %d bytes",
                            CS_CONTEXT_MAX);
            goto fail;
        }
        if (has_nul(context)) {
            rc = cs_err_set(err, CS_ERR_INVALID, "\"context\" contains a NUL character");
            goto fail;
        }
    }
    if ((rc = parse_headers(headers, env ? "headers" : "extra_headers", rq, err)) ||
        (rc = parse_body(obj, max_body, rq, err)))
        goto fail;

    char *full = NULL;
    if ((rc = substitute_path(url, pathp, &full, err)))
        goto fail;
    rc = append_query(&full, query, err);
    struct cs_url u;
    if (!rc)
        rc = cs_url_parse(full, &u, err);
    cs_free(full);
    if (rc)
        goto fail;
    rq->url = cs_strdup(u.full);
    rq->host = cs_strdup(u.host);
    rq->path = cs_strdup(u.path);
    cs_url_free(&u);

    rq->request_id = cs_strdup(rid);
    rq->agent = cs_strdup(agent);
    rq->grant_id = cs_strdup(grant);
    rq->reason = cs_strdup(reason ? reason : "");
    rq->batch_id = cs_strdup(batch);
    rq->context = context ? json_object_get(context) : json_object_new_object();
    cs_request_digest(rq->method, rq->url, rq->grant_id, rq->headers, rq->body, rq->body_len,
                      rq->digest);
    return CS_OK;
fail:
    cs_request_free(rq);
    return rc;
}

/* ---- digest ---- */

static void lp(struct cs_sha256 *h, const void *p, size_t n)
{
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    cs_sha256_update(h, len, 8);
    if (n)
        cs_sha256_update(h, p, n);
}

struct hdr {
    char *lname;
    const char *value;
};

static int hdr_cmp(const void *a, const void *b)
{
    return strcmp(((const struct hdr *)a)->lname, ((const struct hdr *)b)->lname);
}

void cs_request_digest(const char *method, const char *url, const char *grant_id,
                       json_object *headers, const unsigned char *body, size_t body_len,
                       unsigned char out[CS_SHA256_LEN])
{
    static const char tag[] = "countersign-request-v1";
    struct cs_sha256 *h = cs_sha256_new();
    cs_sha256_update(h, tag, sizeof(tag) - 1);
    lp(h, method, strlen(method));
    lp(h, url, strlen(url));
    lp(h, grant_id, strlen(grant_id));
    size_t n = headers ? (size_t)json_object_object_length(headers) : 0;
    struct hdr *hs = cs_calloc(n ? n : 1, sizeof(*hs));
    size_t i = 0;
    if (headers) {
        json_object_object_foreach(headers, name, val)
        {
            hs[i].lname = cs_strdup(name);
            for (char *c = hs[i].lname; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            hs[i].value = json_object_get_string(val);
            i++;
        }
    }
    qsort(hs, n, sizeof(*hs), hdr_cmp);
    unsigned char cnt[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                            (unsigned char)(n >> 8), (unsigned char)n};
    cs_sha256_update(h, cnt, 4);
    for (i = 0; i < n; i++) {
        lp(h, hs[i].lname, strlen(hs[i].lname));
        lp(h, hs[i].value, strlen(hs[i].value));
        cs_free(hs[i].lname);
    }
    cs_free(hs);
    lp(h, body, body_len);
    cs_sha256_final(h, out);
}
