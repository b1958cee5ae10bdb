/*
 * reply.c -- every answer the api sends: JSON, errors from the cs_err table,
 * HTML pages, plain text and redirects.
 *
 * Every response carries no-store and nosniff; HTML adds a strict
 * Content-Security-Policy (scripts only from this origin: api/passkey.js),
 * no framing and no referrer (page links carry their token in the path).
 * A JSON error is built from the cs_err row (code, HTTP status, default
 * message); a 500 says only what the table says, the detail goes to the
 * log. Each function returns what MHD_queue_response returned and records
 * the status for metrics.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "cs_json.h"
#include "cs_log.h"
#include "cs_mem.h"

static void common_headers(struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
}

static enum MHD_Result queue(struct api_req *r, struct MHD_Connection *c, unsigned status,
                             struct MHD_Response *resp)
{
    r->status = status;
    if (r->close)
        MHD_add_response_header(resp, "Connection", "close");
    if (status == 405 && r->allow[0])
        MHD_add_response_header(resp, "Allow", r->allow);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result reply_text(struct api_req *r, struct MHD_Connection *c, unsigned status,
                           const char *type, const char *text, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(resp, "Content-Type", type);
    common_headers(resp);
    return queue(r, c, status, resp);
}

enum MHD_Result reply_json(struct api_req *r, struct MHD_Connection *c, unsigned status,
                           json_object *body)
{
    size_t len = 0;
    const char *text = cs_json_text(body, &len);
    enum MHD_Result ret = reply_text(r, c, status, "application/json", text, len);
    json_object_put(body);
    return ret;
}

enum MHD_Result reply_error(struct api_req *r, struct MHD_Connection *c, enum cs_err rc,
                            const char *message, json_object *details)
{
    const struct cs_err_info *e = cs_err_info(rc);
    if (e->http_status >= 500)
        cs_log(CS_LOG_ERROR, "api", "%s %s: %s", r->route_name, e->code,
               message ? message : e->message);
    json_object *err = json_object_new_object(), *o = json_object_new_object();
    json_object_object_add(err, "code", json_object_new_string(e->code));
    /* Internal details stay in the log: a 500 says only what the table says. */
    json_object_object_add(err, "message",
                           json_object_new_string(message && *message && rc != CS_ERR_INTERNAL
                                                      ? message
                                                      : e->message));
    if (details)
        json_object_object_add(err, "details", details);
    json_object_object_add(o, "error", err);
    return reply_json(r, c, (unsigned)e->http_status, o);
}

enum MHD_Result reply_html(struct api_req *r, struct MHD_Connection *c, unsigned status,
                           struct cs_buf *html, const char *set_cookie)
{
    size_t len = 0;
    char *text = cs_buf_take(html, &len);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, text, cs_free);
    MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; script-src 'self'; connect-src 'self'; "
                            "style-src 'unsafe-inline'; form-action 'self'; "
                            "frame-ancestors 'none'; base-uri 'none'");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    if (set_cookie)
        MHD_add_response_header(resp, "Set-Cookie", set_cookie);
    common_headers(resp);
    return queue(r, c, status, resp);
}

enum MHD_Result reply_download(struct api_req *r, struct MHD_Connection *c, const char *type,
                               const char *filename, struct cs_buf *body)
{
    size_t len = 0;
    char *text = cs_buf_take(body, &len);
    char disposition[160];
    snprintf(disposition, sizeof(disposition), "attachment; filename=\"%s\"", filename);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, text, cs_free);
    MHD_add_response_header(resp, "Content-Type", type);
    MHD_add_response_header(resp, "Content-Disposition", disposition);
    common_headers(resp);
    return queue(r, c, 200, resp);
}

enum MHD_Result reply_redirect(struct api_req *r, struct MHD_Connection *c, const char *location,
                               const char *cookie1, const char *cookie2)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Location", location);
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    if (cookie1)
        MHD_add_response_header(resp, "Set-Cookie", cookie1);
    if (cookie2)
        MHD_add_response_header(resp, "Set-Cookie", cookie2);
    common_headers(resp);
    return queue(r, c, 303, resp);
}
