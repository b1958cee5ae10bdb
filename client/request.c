/*
 * request.c -- the JSON of a request, built once for both ways in: the body
 * of POST /v1/proxy (idempotency_key, extra_headers) and the Kafka request
 * envelope (request_id, agent, headers). See README "Kafka topics and
 * messages" and api/openapi.json ProxyRequest; the two field lists in
 * lib/cs_request.c (cs_request_parse) must change together with this file.
 *
 * It checks locally only what needs no server knowledge (required fields, a
 * known method, JSON that parses, one body at most); the server decides the
 * rest (forbidden headers, the grant's hosts) and says why.
 */
#include <string.h>
#include <strings.h>

#include "client.h"
#include "cs_mem.h"

static const char *const methods[] = {"GET",    "POST", "PUT",     "PATCH",
                                      "DELETE", "HEAD", "OPTIONS", NULL};

static bool add_str(json_object *o, const char *key, const char *value)
{
    if (value)
        json_object_object_add(o, key, json_object_new_string(value));
    return true;
}

/* {"name": "value", ...} from pairs; a repeated name makes a list when `lists`. */
static enum countersign_code add_pairs(json_object *o, const char *key,
                                       const struct countersign_header *p, size_t n, bool lists,
                                       char *err)
{
    if (!n)
        return COUNTERSIGN_OK;
    if (!p)
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT,
                          "\"%s\": n is %zu but the array "
                          "is NULL",
                          key, n);
    json_object *m = json_object_new_object();
    for (size_t i = 0; i < n; i++) {
        json_object *prev = NULL;
        if (!p[i].name || !*p[i].name || !p[i].value) {
            json_object_put(m);
            return client_err(err, COUNTERSIGN_INVALID_ARGUMENT,
                              "\"%s\"[%zu]: a name and a value are required", key, i);
        }
        if (!json_object_object_get_ex(m, p[i].name, &prev)) {
            json_object_object_add(m, p[i].name, json_object_new_string(p[i].value));
        } else if (!lists) {
            json_object_put(m);
            return client_err(err, COUNTERSIGN_INVALID_ARGUMENT,
                              "\"%s\": \"%.64s\" is given "
                              "twice",
                              key, p[i].name);
        } else if (json_object_is_type(prev, json_type_array)) {
            json_object_array_add(prev, json_object_new_string(p[i].value));
        } else {
            json_object *list = json_object_new_array();
            json_object_array_add(list, json_object_get(prev));
            json_object_array_add(list, json_object_new_string(p[i].value));
            json_object_object_add(m, p[i].name, list);
        }
    }
    json_object_object_add(o, key, m);
    return COUNTERSIGN_OK;
}

/* Parses caller JSON text for `key`; an object is required when `object`. */
static enum countersign_code add_json(json_object *o, const char *key, const char *text,
                                      bool object, char *err)
{
    if (!text)
        return COUNTERSIGN_OK;
    json_object *v = NULL;
    if (!client_json_value(text, strlen(text), &v))
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT, "\"%s\" is not valid JSON", key);
    if (object && !json_object_is_type(v, json_type_object)) {
        json_object_put(v);
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT, "\"%s\" must be a JSON object", key);
    }
    json_object_object_add(o, key, v); /* NULL is JSON null */
    return COUNTERSIGN_OK;
}

struct client_fields client_fields_of(const struct countersign_request *req, const char *id,
                                      const char *batch_id)
{
    return (struct client_fields){
        .id = id,
        .grant_id = req->grant_id,
        .method = req->method,
        .url = req->url,
        .json = req->json,
        .reason = req->reason,
        .context = req->context,
        .batch_id = batch_id,
        .body = req->body,
        .body_len = req->body_len,
        .headers = req->headers,
        .n_headers = req->n_headers,
        .query_params = req->query_params,
        .n_query_params = req->n_query_params,
        .path_params = req->path_params,
        .n_path_params = req->n_path_params,
    };
}

enum countersign_code client_request_json(const struct client_fields *f, int mode, char **out,
                                          char *err)
{
    bool env = mode == CLIENT_JSON_ENVELOPE;
    *out = NULL;
    const char *missing = !f->method         ? "method"
                          : !f->url          ? "url"
                          : !f->grant_id     ? "grant_id"
                          : env && !f->id    ? "request_id"
                          : env && !f->agent ? "agent"
                                             : NULL;
    if (missing)
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT, "\"%s\" is required", missing);
    const char *method = NULL;
    for (int i = 0; methods[i]; i++)
        if (!strcasecmp(f->method, methods[i]))
            method = methods[i];
    if (!method)
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT,
                          "unknown method \"%.16s\" (GET POST PUT PATCH DELETE HEAD OPTIONS)",
                          f->method);
    if (f->json && f->body)
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT, "give json or body, not both");
    if (!f->body && f->body_len)
        return client_err(err, COUNTERSIGN_INVALID_ARGUMENT, "body_len is set but body is NULL");

    json_object *o = json_object_new_object();
    enum countersign_code rc = COUNTERSIGN_OK;
    if (env) {
        add_str(o, "request_id", f->id);
        add_str(o, "agent", f->agent);
    } else {
        add_str(o, "idempotency_key", f->id);
    }
    add_str(o, "grant_id", f->grant_id);
    add_str(o, "method", method);
    add_str(o, "url", f->url);
    add_str(o, "reason", f->reason);
    add_str(o, "batch_id", f->batch_id);
    if (f->body) {
        char *b64 = client_b64_encode(f->body, f->body_len);
        json_object_object_add(o, "body_b64", json_object_new_string(b64));
        cs_free(b64);
    }
    if (!rc)
        rc = add_json(o, "json", f->json, false, err);
    if (!rc)
        rc = add_json(o, "context", f->context, true, err);
    if (!rc)
        rc = add_pairs(o, env ? "headers" : "extra_headers", f->headers, f->n_headers, false, err);
    if (!rc)
        rc = add_pairs(o, "query_params", f->query_params, f->n_query_params, true, err);
    if (!rc)
        rc = add_pairs(o, "path_params", f->path_params, f->n_path_params, false, err);
    if (!rc)
        *out = cs_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return rc;
}
