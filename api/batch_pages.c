/*
 * batch_pages.c -- the approver's batch page: one link for a whole batch.
 *
 * GET /batch/{token}[?page=N] shows the summary (members, the sum of the
 * policy's amount field, calls per method and host, the batch digest, votes,
 * time left) and 50 members a page with each member's digest; GET
 * /batch/{token}/items.csv downloads every member. POST /batch/{token}
 * decides: approve all, deny all, or approve all but the listed request ids
 * (denied with the reason). The POST carries the digest the page showed and
 * the page's CSRF token; cs_batch_vote() applies every rule. A GET never
 * changes anything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cs_batch.h"
#include "cs_json.h"
#include "cs_link.h"
#include "cs_log.h"
#include "cs_mem.h"

#define PER_PAGE 50
#define CSV_MAX (64u << 20)

static const char *str(json_object *o, const char *k)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : NULL;
}

static void field(struct cs_buf *b, const char *label, const char *value)
{
    html_raw(b, "<dt>");
    html_esc(b, label);
    html_raw(b, "</dt><dd>");
    html_esc(b, value ? value : "-");
    html_raw(b, "</dd>");
}

static void summary(struct cs_buf *b, struct api_db *d, const char *uid, json_object *st)
{
    const char *p[] = {uid};
    PGresult *res = NULL;
    char err[CS_ERRLEN], line[256];
    html_raw(b, "<div class=\"card\"><dl>");
    field(b, "Status", str(st, "status"));
    field(b, "Members", str(st, "members"));
    if (cs_db_exec(d->db, CS_DB_Q(BATCH_SUMMARY, p), &res, err) == CS_OK && PQntuples(res) == 1) {
        if (str(st, "amount_field")) {
            snprintf(line, sizeof(line), "%s (sum of %s)",
                     cs_db_str(res, 0, CSC_BATCH_SUMMARY_TOTAL_AMOUNT), str(st, "amount_field"));
            field(b, "Total", line);
        }
        json_object *per = NULL;
        const char *j = cs_db_str(res, 0, CSC_BATCH_SUMMARY_TARGETS_JSON);
        if (j && cs_json_parse(j, strlen(j), &per, err) == CS_OK) {
            json_object_object_foreach(per, k, v)
            {
                snprintf(line, sizeof(line), "%s calls", json_object_get_string(v));
                field(b, k, line);
            }
            json_object_put(per);
        }
    }
    PQclear(res);
    snprintf(line, sizeof(line), "%s of %s needed", str(st, "approvals_received"),
             str(st, "approvals_required"));
    field(b, "Approvals", line);
    field(b, "Expires", str(st, "expires_at"));
    html_raw(b, "<dt>Batch digest</dt><dd class=\"url\">sha256:");
    html_esc(b, str(st, "digest") ? str(st, "digest") : "(not complete yet)");
    html_raw(b, "</dd></dl></div>");
}

static void items(struct cs_buf *b, struct api_db *d, const char *uid, long page, long members,
                  const char *token)
{
    char off[24], lim[16], err[CS_ERRLEN], line[128];
    snprintf(off, sizeof(off), "%ld", (page - 1) * PER_PAGE);
    snprintf(lim, sizeof(lim), "%d", PER_PAGE);
    const char *p[] = {uid, off, lim};
    PGresult *res = NULL;
    long pages = members > 0 ? (members + PER_PAGE - 1) / PER_PAGE : 1;
    snprintf(line, sizeof(line), "Items (page %ld of %ld)", page, pages);
    html_raw(b, "<div class=\"card\"><h2>");
    html_esc(b, line);
    html_raw(b, "</h2>");
    if (cs_db_exec(d->db, CS_DB_Q(BATCH_ITEMS, p), &res, err) == CS_OK) {
        for (int i = 0; i < PQntuples(res); i++) {
            html_raw(b, "<div class=\"item\"><b>");
            html_esc(b, cs_db_str(res, i, CSC_BATCH_ITEMS_REQUEST_ID));
            html_raw(b, "</b> <span class=\"badge\">");
            html_esc(b, cs_db_str(res, i, CSC_BATCH_ITEMS_STATUS));
            html_raw(b, "</span>");
            if (cs_db_str(res, i, CSC_BATCH_ITEMS_AMOUNT)) {
                html_raw(b, " amount ");
                html_esc(b, cs_db_str(res, i, CSC_BATCH_ITEMS_AMOUNT));
            }
            html_raw(b, "<div class=\"url\">");
            html_esc(b, cs_db_str(res, i, CSC_BATCH_ITEMS_METHOD));
            html_raw(b, " ");
            html_esc(b, cs_db_str(res, i, CSC_BATCH_ITEMS_URL));
            html_raw(b, "</div><div class=\"url\" style=\"color:#57534e\">sha256:");
            html_esc(b, cs_db_str(res, i, CSC_BATCH_ITEMS_DIGEST_HEX));
            html_raw(b, "</div></div>");
        }
    }
    PQclear(res);
    html_raw(b, "<p>");
    if (page > 1) {
        snprintf(line, sizeof(line), "<a href=\"?page=%ld\">previous</a> ", page - 1);
        html_raw(b, line);
    }
    if (page < pages) {
        snprintf(line, sizeof(line), "<a href=\"?page=%ld\">next</a> ", page + 1);
        html_raw(b, line);
    }
    html_raw(b, "&middot; <a href=\"/batch/");
    html_raw(b, token);
    html_raw(b, "/items.csv\">download every item (CSV)</a></p></div>");
}

static long page_number(struct MHD_Connection *c)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "page");
    char *end = NULL;
    long n = v ? strtol(v, &end, 10) : 1;
    return v && (*end || n < 1 || n > 100000) ? 1 : n;
}

enum MHD_Result page_batch(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct api *a = r->api;
    struct cs_link l;
    struct cs_session s;
    char err[CS_ERRLEN], slot[CS_UUID_STRLEN + 1];
    enum cs_err rc = cs_link_verify(a->keys.batch, r->params[0], cs_now_ms(), &l, err);
    if (rc)
        return html_error(r, c, rc, err);
    bool in = session_of(r, c, d, &s);
    bool can_vote = in && pages_slot(d, true, l.approval_id, &s, slot);
    json_object *st = NULL;
    rc = cs_batch_status(d->db, NULL, l.approval_id, &st, err);
    if (rc)
        return html_error(r, c, rc, err);
    char title[256], here[CS_LINK_PATH_MAX + 8];
    struct cs_buf b;
    cs_buf_init(&b, API_PAGE_MAX);
    snprintf(title, sizeof(title), "Batch %s: %s calls", str(st, "batch_id"), str(st, "members"));
    html_head(&b, title);
    if (in)
        session_bar(&b, a, &s);
    html_raw(&b, "<h1>Batch approval requested</h1><div class=\"card\"><p><b>");
    html_esc(&b, str(st, "agent"));
    html_raw(&b, "</b> asks to make <b>");
    html_esc(&b, str(st, "members"));
    html_raw(&b, "</b> calls with grant <b>");
    html_esc(&b, str(st, "grant_id"));
    html_raw(&b, "</b> as batch <b>");
    html_esc(&b, str(st, "batch_id"));
    html_raw(&b, "</b>.</p></div>");
    summary(&b, d, l.approval_id, st);
    json_object *m = NULL;
    json_object_object_get_ex(st, "members", &m);
    items(&b, d, l.approval_id, page_number(c), m ? json_object_get_int64(m) : 0, r->params[0]);
    bool decidable = str(st, "status") && !strcmp(str(st, "status"), "decidable");
    if (decidable && can_vote) {
        html_raw(&b, "<form method=\"post\" class=\"card\">");
        session_csrf_field(&b, a, &s);
        html_raw(&b, "<input type=\"hidden\" name=\"digest\" value=\"");
        html_esc(&b, str(st, "digest"));
        html_raw(&b,
                 "\"><label for=\"except\">Deny only these request ids (one per line; "
                 "leave empty to decide all alike)</label>"
                 "<textarea id=\"except\" name=\"except\"></textarea>"
                 "<label for=\"reason\">Reason (shown to the agent for denied items)</label>"
                 "<textarea id=\"reason\" name=\"reason\" maxlength=\"4096\"></textarea>"
                 "<div class=\"actions\"><button class=\"approve\" name=\"decision\" "
                 "value=\"approve\">Approve all (but those listed)</button><button "
                 "class=\"deny\" name=\"decision\" value=\"deny\">Deny all</button></div></form>");
    } else if (decidable && in) {
        html_raw(&b, "<div class=\"card\"><p>You are signed in as <b>");
        html_esc(&b, s.name);
        html_raw(&b, "</b>, who is not an approver of this batch.</p></div>");
    } else if (decidable) {
        snprintf(here, sizeof(here), "/batch/%s", r->params[0]);
        session_signin_box(&b, a, here, false);
    } else {
        html_raw(&b, "<div class=\"card\"><p>This batch is <b>");
        html_esc(&b, str(st, "status"));
        html_raw(&b, "</b>: nothing to decide here now.</p></div>");
    }
    html_foot(&b);
    json_object_put(st);
    return reply_html(r, c, 200, &b, NULL);
}

/* One CSV field: quoted when needed; a leading =+-@ is neutralised for spreadsheets. */
static void csv(struct cs_buf *b, const char *v, bool last)
{
    v = v ? v : "";
    bool quote = strpbrk(v, ",\"\r\n") != NULL || strchr("=+-@", v[0] ? v[0] : 'x');
    if (quote)
        cs_buf_append_trunc(b, "\"", 1);
    if (strchr("=+-@", v[0] ? v[0] : 'x'))
        cs_buf_append_trunc(b, "'", 1);
    for (const char *p = v; *p; p++)
        cs_buf_append_trunc(b, *p == '"' ? "\"\"" : p, *p == '"' ? 2 : 1);
    if (quote)
        cs_buf_append_trunc(b, "\"", 1);
    cs_buf_append_trunc(b, last ? "\r\n" : ",", last ? 2 : 1);
}

enum MHD_Result page_batch_csv(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct api *a = r->api;
    struct cs_link l;
    char err[CS_ERRLEN];
    enum cs_err rc = cs_link_verify(a->keys.batch, r->params[0], cs_now_ms(), &l, err);
    if (rc)
        return html_error(r, c, rc, err);
    struct cs_buf b;
    cs_buf_init(&b, CSV_MAX);
    csv(&b, "request_id", false);
    csv(&b, "status", false);
    csv(&b, "method", false);
    csv(&b, "url", false);
    csv(&b, "amount", false);
    csv(&b, "digest", false);
    csv(&b, "reason", true);
    for (long off = 0;; off += 1000) {
        char o[24];
        snprintf(o, sizeof(o), "%ld", off);
        const char *p[] = {l.approval_id, o, "1000"};
        PGresult *res = NULL;
        if ((rc = cs_db_exec(d->db, CS_DB_Q(BATCH_ITEMS, p), &res, err)))
            break;
        int n = PQntuples(res);
        for (int i = 0; i < n; i++) {
            static const int cols[] = {CSC_BATCH_ITEMS_REQUEST_ID, CSC_BATCH_ITEMS_STATUS,
                                       CSC_BATCH_ITEMS_METHOD,     CSC_BATCH_ITEMS_URL,
                                       CSC_BATCH_ITEMS_AMOUNT,     CSC_BATCH_ITEMS_DIGEST_HEX,
                                       CSC_BATCH_ITEMS_REASON};
            for (int k = 0; k < 7; k++)
                csv(&b, cs_db_str(res, i, cols[k]), k == 6);
        }
        PQclear(res);
        if (n < 1000)
            break;
    }
    if (rc) {
        cs_buf_free(&b);
        return html_error(r, c, rc, err);
    }
    size_t len = 0;
    char *text = cs_buf_take(&b, &len);
    enum MHD_Result ret = reply_text(r, c, 200, "text/csv; charset=utf-8", text, len);
    cs_free(text);
    return ret;
}

/* Splits the except field (one request id per line, spaces around trimmed) into a JSON array. */
static json_object *except_list(const char *text)
{
    json_object *arr = json_object_new_array();
    char *copy = cs_strdup(text ? text : "");
    for (char *save = NULL, *t = strtok_r(copy, "\r\n", &save); t;
         t = strtok_r(NULL, "\r\n", &save)) {
        while (*t == ' ' || *t == '\t')
            t++;
        size_t n = strlen(t);
        while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
            t[--n] = '\0';
        if (n)
            json_object_array_add(arr, json_object_new_string(t));
    }
    cs_free(copy);
    return arr;
}

enum MHD_Result page_batch_decide(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct cs_link l;
    struct cs_session s;
    struct form f = {0};
    char err[CS_ERRLEN], actor[64], approved[128], slot[CS_UUID_STRLEN + 1];
    bool approve = false, some_denied = false;
    struct cs_vote_outcome out;
    enum cs_err rc = cs_link_verify(r->api->keys.batch, r->params[0], cs_now_ms(), &l, err);
    if (rc)
        return html_error(r, c, rc == CS_ERR_EXPIRED ? CS_ERR_BAD_TOKEN : rc, err);
    rc = session_get(c, d, &s, err);
    if (rc == CS_ERR_UNAUTHENTICATED)
        rc = cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                        "sign in as an approver of this batch to decide: open the page again");
    else if (!rc)
        rc = pages_decision(r, c, s.id, &f, &approve, err);
    if (!rc && !pages_slot(d, true, l.approval_id, &s, slot))
        rc = cs_err_set(err, CS_ERR_NOT_APPROVER, "%s is not an approver of this batch", s.name);
    if (!rc) {
        json_object *except = except_list(form_get(&f, "except"));
        const char *reason = form_get(&f, "reason");
        snprintf(actor, sizeof(actor), "approver:%s", s.approver_id);
        struct cs_batch_vote v = {l.approval_id,
                                  slot,
                                  s.approver_id,
                                  approve,
                                  except,
                                  reason && *reason ? reason : NULL,
                                  form_get(&f, "digest"),
                                  actor};
        rc = cs_batch_vote(d->db, &v, &out, err);
        some_denied = json_object_array_length(except) > 0;
        json_object_put(except);
    }
    form_free(&f);
    if (rc)
        return html_error(r, c, rc, err);
    snprintf(approved, sizeof(approved), "Approved%s. Each call will now be made, once.",
             some_denied ? " (the listed items denied)" : "");
    return pages_outcome(r, c, approve, &out, approved, "Denied. None of the calls will be made.");
}
