/*
 * console_approvals.c -- the approvals list (filters, search, cursor
 * pagination, export) and one approval's timeline with its actions.
 *
 *   GET  /console/approvals            ?status&agent&grant&policy&approver&batch&from&to
 *                                      &cursor&limit, ?q= (id, request id or idempotency
 *                                      key), &format=csv|jsonl (export, audited)
 *   GET  /console/approvals/{id}       the request as the approver saw it, its digest,
 *                                      every event, vote, notification, execution attempt,
 *                                      the outcome, the audit entries with their seals
 *   POST /console/approvals/{id}/cancel     pending -> cancelled (cs_approval_cancel)
 *   POST /console/approvals/{id}/decide     an operator vote, as the CLI's --as
 *   POST /console/approvals/{id}/resubmit   a failed call as a new approval
 * Pages are keyset pages on the approval id (console.sql console_list), so
 * page 1000 costs what page 1 does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cs_approval.h"
#include "cs_json.h"
#include "cs_log.h"
#include "cs_mem.h"

#define PAGE_DEFAULT 50
#define PAGE_MAX 500
#define EXPORT_CHUNK 1000
#define EXPORT_MAX_ROWS 100000
#define EXPORT_MAX_BYTES ((size_t)64 << 20)

static const char *const filter_names[] = {"status",   "agent", "grant", "policy",
                                           "approver", "batch", "from",  "to"};
#define NFILTERS 8

struct filters {
    const char *v[NFILTERS]; /* console_list $1..$8, NULL for any */
    char from[40], to[40];   /* times as Postgres reads them */
    const char *cursor;      /* an approval id, or NULL */
    const char *q;           /* a search, or NULL */
    char *found;             /* its answer: the ids, as a Postgres array (cs_malloc'd) */
    int limit;
};

/* A datetime-local value ("2026-12-02T07:00[:00]") as UTC, or an RFC 3339 time. */
static bool time_arg(const char *in, char out[40])
{
    size_t n = strlen(in);
    if (n < 10 || n > 35 || strspn(in, "0123456789-T:. Z+") != n)
        return false;
    snprintf(out, 40, "%s%s", in, strpbrk(in + 10, "Z+") || strchr(in + 10, '-') ? "" : "Z");
    return true;
}

static enum cs_err read_filters(struct console *k, struct filters *f, char *err)
{
    memset(f, 0, sizeof(*f));
    for (int i = 0; i < NFILTERS; i++)
        f->v[i] = console_arg(k, filter_names[i]);
    if (f->v[0] && cs_status_parse(f->v[0]) < 0)
        return cs_err_set(err, CS_ERR_INVALID,
                          "status: one of pending, approved, executing, "
                          "executed, failed, denied, expired, cancelled");
    if (f->v[6] && !time_arg(f->v[6], f->from))
        return cs_err_set(err, CS_ERR_INVALID, "from: a date and time, e.g. 2026-12-02T07:00");
    if (f->v[7] && !time_arg(f->v[7], f->to))
        return cs_err_set(err, CS_ERR_INVALID, "to: a date and time, e.g. 2026-12-02T08:00");
    if (f->v[6])
        f->v[6] = f->from;
    if (f->v[7])
        f->v[7] = f->to;
    f->cursor = console_arg(k, "cursor");
    if (f->cursor && !cs_uuid_valid(f->cursor))
        return cs_err_set(err, CS_ERR_INVALID, "cursor: an approval id");
    f->q = console_arg(k, "q");
    if (f->q) {
        const char *p[] = {f->q};
        PGresult *res = NULL;
        enum cs_err rc = cs_db_exec(k->d->db, CS_DB_Q(CONSOLE_SEARCH, p), &res, err);
        if (rc)
            return rc;
        f->found = cs_strdup(cs_db_str(res, 0, CSC_CONSOLE_SEARCH_IDS));
        PQclear(res);
    }
    const char *limit = console_arg(k, "limit");
    f->limit = limit ? atoi(limit) : PAGE_DEFAULT;
    if (f->limit < 1 || f->limit > PAGE_MAX)
        return cs_err_set(err, CS_ERR_INVALID, "limit: 1..%d", PAGE_MAX);
    return CS_OK;
}

/* One page of the list into *res. */
static enum cs_err list_page(struct api_db *d, const struct filters *f, const char *cursor,
                             int limit, PGresult **res, char *err)
{
    char n[16];
    snprintf(n, sizeof(n), "%d", limit);
    const char *p[11];
    for (int i = 0; i < NFILTERS; i++)
        p[i] = f->v[i];
    p[8] = cursor;
    p[9] = n;
    p[10] = f->found;
    enum cs_err rc = cs_db_begin(d->db, err);
    if (!rc)
        rc = cs_db_exec(d->db, CS_DB_Q0(CONSOLE_CUSTOM_PLANS), NULL, err);
    if (!rc)
        rc = cs_db_exec(d->db, CS_DB_Q(CONSOLE_LIST, p), res, err);
    if (!rc)
        rc = cs_db_commit(d->db, err);
    else
        cs_db_rollback(d->db);
    return rc;
}

/* "?name=value&..." of the filters (and search), for links to other pages of the same list. */
static void query_string(struct cs_buf *b, struct console *k, const char *extra_name,
                         const char *extra_value)
{
    char sep = '?';
    for (int i = 0; i <= NFILTERS + 1; i++) {
        const char *name = i < NFILTERS ? filter_names[i] : i == NFILTERS ? "q" : "limit";
        const char *v = console_arg(k, name);
        if (!v)
            continue;
        cs_buf_append_trunc(b, &sep, 1);
        html_raw(b, name);
        html_raw(b, "=");
        for (const unsigned char *s = (const unsigned char *)v; *s; s++) {
            char enc[4];
            if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                strchr("-_.~:", *s))
                snprintf(enc, sizeof(enc), "%c", *s);
            else
                snprintf(enc, sizeof(enc), "%%%02X", *s);
            html_raw(b, enc);
        }
        sep = '&';
    }
    if (extra_name) {
        cs_buf_append_trunc(b, &sep, 1);
        html_raw(b, extra_name);
        html_raw(b, "=");
        html_esc(b, extra_value);
    }
}

static void badge(struct cs_buf *b, const char *status)
{
    html_raw(b, "<span class=\"badge ");
    html_esc(b, status);
    html_raw(b, "\">");
    html_esc(b, status);
    html_raw(b, "</span>");
}

static void input(struct cs_buf *b, struct console *k, const char *name, const char *label,
                  const char *type)
{
    const char *v = console_arg(k, name);
    html_raw(b, "<label>");
    html_raw(b, label);
    html_raw(b, "<input name=\"");
    html_raw(b, name);
    html_raw(b, "\" type=\"");
    html_raw(b, type);
    html_raw(b, "\" value=\"");
    html_esc(b, v ? v : "");
    html_raw(b, "\" size=\"12\"></label>");
}

static void filter_form(struct console *k)
{
    struct cs_buf *b = &k->b;
    const char *st = console_arg(k, "status");
    html_raw(b, "<form class=\"filters card\" method=\"get\" action=\"/console/approvals\">"
                "<label>Status<select name=\"status\"><option value=\"\">any</option>");
    for (int s = 0; s < CS_ST__COUNT; s++) {
        const char *name = cs_status_name((enum cs_status)s);
        html_raw(b, "<option");
        if (st && strcmp(st, name) == 0)
            html_raw(b, " selected");
        html_raw(b, ">");
        html_raw(b, name);
        html_raw(b, "</option>");
    }
    html_raw(b, "</select></label>");
    input(b, k, "agent", "Agent", "text");
    input(b, k, "grant", "Grant", "text");
    input(b, k, "policy", "Policy", "text");
    input(b, k, "approver", "Approver", "text");
    input(b, k, "batch", "Batch", "text");
    input(b, k, "from", "From (UTC)", "datetime-local");
    input(b, k, "to", "To (UTC)", "datetime-local");
    html_raw(b, "<button>Filter</button><a href=\"/console/approvals\">clear</a></form>"
                "<form class=\"filters card\" method=\"get\" action=\"/console/approvals\">");
    input(b, k, "q", "Approval id, request id or idempotency key", "search");
    html_raw(b, "<button>Search</button></form>");
}

static void rows_table(struct cs_buf *b, const PGresult *res, int n)
{
    html_raw(
        b,
        "<div class=\"scroll\"><table class=\"rows\"><tr><th>created</th><th>status</th><th>agent</th>"
        "<th>grant</th><th>policy</th><th>request</th><th>call</th><th>decided by / error"
        "</th><th>batch</th></tr>");
    for (int i = 0; i < n; i++) {
        html_raw(b, "<tr><td><a href=\"/console/approvals/");
        html_esc(b, cs_db_str(res, i, CSC_CONSOLE_LIST_ID));
        html_raw(b, "\" title=\"");
        html_esc(b, cs_db_str(res, i, CSC_CONSOLE_LIST_ID));
        html_raw(b, "\">");
        console_time(b, cs_db_int(res, i, CSC_CONSOLE_LIST_CREATED_MS));
        html_raw(b, "</a></td><td>");
        badge(b, cs_db_str(res, i, CSC_CONSOLE_LIST_STATUS));
        html_raw(b, "</td><td>");
        console_cell(b, res, i, CSC_CONSOLE_LIST_NAME);
        html_raw(b, "</td><td>");
        console_cell(b, res, i, CSC_CONSOLE_LIST_GRANT_ID);
        html_raw(b, "</td><td>");
        console_cell(b, res, i, CSC_CONSOLE_LIST_POLICY_ID);
        html_raw(b, "</td><td class=\"mono\">");
        console_cell(b, res, i, CSC_CONSOLE_LIST_REQUEST_ID);
        html_raw(b, "</td><td class=\"u\"><b>");
        console_cell(b, res, i, CSC_CONSOLE_LIST_METHOD);
        html_raw(b, "</b> ");
        console_cell(b, res, i, CSC_CONSOLE_LIST_URL);
        html_raw(b, "</td><td>");
        console_cell(b, res, i,
                     cs_db_str(res, i, CSC_CONSOLE_LIST_ERROR_CODE) ? CSC_CONSOLE_LIST_ERROR_CODE
                                                                    : CSC_CONSOLE_LIST_DECIDED_BY);
        html_raw(b, "</td><td>");
        console_cell(b, res, i, CSC_CONSOLE_LIST_BATCH_ID);
        html_raw(b, "</td></tr>");
    }
    html_raw(b, "</table></div>");
}

/* ---- export ---- */

static void csv_field(struct cs_buf *b, const char *v)
{
    if (!v)
        return;
    /* A leading = + - @ would be a formula to a spreadsheet: quote it with a '. */
    bool formula = strchr("=+-@\t\r", v[0]) && v[0];
    html_raw(b, "\"");
    if (formula)
        html_raw(b, "'");
    for (const char *s = v; *s; s++) {
        if (*s == '"')
            html_raw(b, "\"\"");
        else
            cs_buf_append_trunc(b, s, 1);
    }
    html_raw(b, "\"");
}

static const char *const export_cols[CSC_CONSOLE_LIST__COUNT] = {
    "approval_id", "status",     "agent",      "grant_id",    "policy_id",       "request_id",
    "method",      "url",        "created_at", "decided_by",  "error_code",      "batch_id",
    "attempts",    "expires_at", "decided_at", "executed_at", "response_status", "digest"};

static bool time_col(int col)
{
    return col == CSC_CONSOLE_LIST_CREATED_MS || col == CSC_CONSOLE_LIST_EXPIRES_MS ||
           col == CSC_CONSOLE_LIST_DECIDED_MS || col == CSC_CONSOLE_LIST_EXECUTED_MS;
}

static void export_rows(struct cs_buf *b, const PGresult *res, bool csv)
{
    char iso[CS_TIME_ISO_LEN];
    for (int i = 0; i < PQntuples(res); i++) {
        json_object *o = csv ? NULL : json_object_new_object();
        for (int col = 0; col < CSC_CONSOLE_LIST__COUNT; col++) {
            const char *v = cs_db_str(res, i, col);
            if (v && time_col(col))
                v = cs_time_iso(cs_db_int(res, i, col), iso);
            if (csv) {
                if (col)
                    html_raw(b, ",");
                csv_field(b, v);
            } else if (col == CSC_CONSOLE_LIST_ATTEMPTS ||
                       col == CSC_CONSOLE_LIST_RESPONSE_STATUS) {
                json_object_object_add(o, export_cols[col],
                                       v ? json_object_new_int64(cs_db_int(res, i, col)) : NULL);
            } else {
                json_object_object_add(o, export_cols[col], v ? json_object_new_string(v) : NULL);
            }
        }
        if (!csv) {
            html_raw(b, cs_json_text(o, NULL));
            json_object_put(o);
        }
        html_raw(b, "\n");
    }
}

static enum MHD_Result export(struct console *k, const struct filters *f, bool csv) {
    char err[CS_ERRLEN], cursor[CS_UUID_STRLEN + 1] = ""; struct cs_buf out;
    cs_buf_init(&out, EXPORT_MAX_BYTES);
    if (csv){for (int col = 0; col < CSC_CONSOLE_LIST__COUNT;
                  col++){html_raw(&out, col ? "," : ""); html_raw(&out, export_cols[col]);}
html_raw(&out, "\n");
}
long rows = 0;
bool more = true;
enum cs_err rc = CS_OK;
while (more && rows < EXPORT_MAX_ROWS && !rc) {
    PGresult *res = NULL;
    rc = list_page(k->d, f, cursor[0] ? cursor : f->cursor, EXPORT_CHUNK, &res, err);
    if (rc)
        break;
    export_rows(&out, res, csv);
    rows += PQntuples(res);
    more = PQntuples(res) == EXPORT_CHUNK;
    if (PQntuples(res) > 0)
        cs_strlcpy(cursor, cs_db_str(res, PQntuples(res) - 1, CSC_CONSOLE_LIST_ID), sizeof(cursor));
    PQclear(res);
}
json_object *d = json_object_new_object();
json_object_object_add(d, "format", json_object_new_string(csv ? "csv" : "jsonl"));
json_object_object_add(d, "rows", json_object_new_int64(rows));
for (int i = 0; i < NFILTERS; i++)
    if (f->v[i])
        json_object_object_add(d, filter_names[i], json_object_new_string(f->v[i]));
if (f->q)
    json_object_object_add(d, "q", json_object_new_string(f->q));
const char *ap[] = {k->actor, "console.exported", NULL, cs_json_text(d, NULL)};
if (!rc)
    rc = cs_db_exec(k->d->db, CS_DB_Q(AUDIT_INSERT, ap), NULL, err);
json_object_put(d);
if (rc) {
    cs_buf_free(&out);
    return console_fail(k, rc, err);
}
cs_log(CS_LOG_INFO, "console", "%s exported %ld approvals as %s", k->actor, rows,
       csv ? "CSV" : "JSON lines");
struct api_req *r = k->r;
struct MHD_Connection *c = k->c;
k->d = NULL;
cs_buf_free(&k->b);
return reply_download(r, c, csv ? "text/csv; charset=utf-8" : "application/x-ndjson",
                      csv ? "approvals.csv" : "approvals.jsonl", &out);
}

/* ---- GET /console/approvals ---- */

enum MHD_Result console_approvals(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct console k;
    enum MHD_Result ret;
    struct filters f;
    char err[CS_ERRLEN];
    if (!console_open(r, c, d, &k, &ret))
        return ret;
    enum cs_err rc = read_filters(&k, &f, err);
    const char *format = console_arg(&k, "format");
    if (!rc && format && strcmp(format, "csv") && strcmp(format, "jsonl"))
        rc = cs_err_set(err, CS_ERR_INVALID, "format: csv or jsonl");
    if (!rc && format) {
        ret = export(&k, &f, strcmp(format, "csv") == 0);
        cs_free(f.found);
        return ret;
    }
    PGresult *res = NULL;
    if (!rc)
        rc = list_page(k.d, &f, f.cursor, f.limit + 1, &res, err);
    cs_free(f.found);
    if (rc)
        return console_fail(&k, rc, err);
    console_head(&k, "Approvals", "approvals");
    filter_form(&k);
    int n = PQntuples(res) > f.limit ? f.limit : PQntuples(res);
    bool more = PQntuples(res) > f.limit;
    struct cs_buf *b = &k.b;
    html_raw(
        b, "<div class=\"actions\"><span>Export this filter: </span><a href=\"/console/approvals");
    query_string(b, &k, "format", "csv");
    html_raw(b, "\">CSV</a><a href=\"/console/approvals");
    query_string(b, &k, "format", "jsonl");
    html_raw(b, "\">JSON lines</a></div>");
    /* Only the first page refreshes itself: a later page is a fixed window. */
    html_raw(b, f.cursor ? "<section id=\"list\">" : "<section id=\"list\" data-live>");
    if (n == 0)
        html_raw(b, "<div class=\"card\"><p>No approval matches.</p></div>");
    else
        rows_table(b, res, n);
    html_raw(b, "</section><p class=\"actions\">");
    if (f.cursor) {
        html_raw(b, "<a href=\"/console/approvals");
        query_string(b, &k, NULL, NULL);
        html_raw(b, "\">&laquo; newest</a>");
    }
    if (more) {
        html_raw(b, "<a rel=\"next\" href=\"/console/approvals");
        query_string(b, &k, "cursor", cs_db_str(res, n - 1, CSC_CONSOLE_LIST_ID));
        html_raw(b, "\">older &raquo;</a>");
    }
    html_raw(b, "</p>");
    PQclear(res);
    return console_page(&k);
}

/* ---- GET /console/approvals/{id} ---- */

static void field(struct cs_buf *b, const char *label, const PGresult *res, int col)
{
    html_raw(b, "<dt>");
    html_raw(b, label);
    html_raw(b, "</dt><dd>");
    console_cell(b, res, 0, col);
    html_raw(b, "</dd>");
}

static void time_field(struct cs_buf *b, const char *label, const PGresult *res, int col)
{
    html_raw(b, "<dt>");
    html_raw(b, label);
    html_raw(b, "</dt><dd>");
    console_time(b, cs_db_str(res, 0, col) ? cs_db_int(res, 0, col) : 0);
    html_raw(b, "</dd>");
}

/* The forms an operator may use on this approval now (read-write only). */
static void actions(struct console *k, const PGresult *res)
{
    struct cs_buf *b = &k->b;
    const char *id = cs_db_str(res, 0, CSC_CONSOLE_APPROVAL_ID),
               *status = cs_db_str(res, 0, CSC_CONSOLE_APPROVAL_STATUS);
    bool pending = strcmp(status, "pending") == 0, failed = strcmp(status, "failed") == 0;
    if (!pending && !failed)
        return;
    html_raw(b, "<div class=\"card\"><h2>Actions</h2>");
    if (k->s.role != CS_OPERATOR_WRITE) {
        html_raw(b, "<p class=\"muted\">You are a read-only operator.</p></div>");
        return;
    }
    if (pending) {
        html_raw(b, "<div class=\"actions\"><form method=\"post\" action=\"/console/approvals/");
        html_esc(b, id);
        html_raw(b, "/decide\">");
        console_csrf(k);
        html_raw(b, "<label>as <select name=\"as\">");
        const char *names = cs_db_str(res, 0, CSC_CONSOLE_APPROVAL_APPROVER_NAMES);
        for (const char *p = names; p && *p;) {
            size_t n = strcspn(p, "\n");
            char *name = cs_strndup(p, n);
            html_raw(b, "<option>");
            html_esc(b, name);
            html_raw(b, "</option>");
            cs_free(name);
            p += n + (p[n] == '\n');
        }
        html_raw(
            b, "</select></label><input name=\"reason\" placeholder=\"reason\" maxlength=\"4096\">"
               "<button class=\"ok\" name=\"decision\" value=\"approve\">Approve</button>"
               "<button class=\"danger\" name=\"decision\" value=\"deny\">Deny</button></form>"
               "<form method=\"post\" action=\"/console/approvals/");
        html_esc(b, id);
        html_raw(b, "/cancel\">");
        console_csrf(k);
        html_raw(b,
                 "<input name=\"reason\" placeholder=\"why cancel\" maxlength=\"4096\">"
                 "<button class=\"plain\" id=\"cancel\">Cancel this approval</button></form></div>"
                 "<p class=\"muted\">An operator vote counts as the approver's (every rule of a "
                 "vote applies: the window, self-approval, passkey policies) and is audited with "
                 "your name.</p>");
    } else {
        html_raw(b, "<form method=\"post\" action=\"/console/approvals/");
        html_esc(b, id);
        html_raw(b, "/resubmit\">");
        console_csrf(k);
        html_raw(b,
                 "<p>A failed call is never re-run. Re-submitting makes a <b>new approval</b>: "
                 "a new request id and digest, through the grant's checks and its policy "
                 "again.</p><button id=\"resubmit\">Re-submit as a new approval</button></form>");
    }
    html_raw(b, "</div>");
}

static void timeline(struct console *k, const char *id)
{
    struct cs_buf *b = &k->b;
    const char *p[] = {id};
    PGresult *res = NULL;
    char err[CS_ERRLEN];
    html_raw(b, "<div class=\"card\"><h2>Timeline</h2><section id=\"timeline\" data-live>");
    if (cs_db_exec(k->d->db, CS_DB_Q(CONSOLE_TIMELINE, p), &res, err) != CS_OK) {
        html_raw(b, "<p>The timeline cannot be read now: ");
        html_esc(b, err);
        html_raw(b, "</p></section></div>");
        return;
    }
    html_raw(b, "<ol class=\"tl\">");
    for (int i = 0; i < PQntuples(res); i++) {
        html_raw(b, "<li class=\"");
        html_esc(b, cs_db_str(res, i, CSC_CONSOLE_TIMELINE_KIND));
        html_raw(b, "\"><b>");
        console_time(b, cs_db_int(res, i, CSC_CONSOLE_TIMELINE_AT_MS));
        html_raw(b, "</b> &middot; ");
        html_esc(b, cs_db_str(res, i, CSC_CONSOLE_TIMELINE_KIND));
        html_raw(b, " &middot; <b>");
        console_cell(b, res, i, CSC_CONSOLE_TIMELINE_WHAT);
        html_raw(b, "</b> by ");
        console_cell(b, res, i, CSC_CONSOLE_TIMELINE_WHO);
        const char *detail = cs_db_str(res, i, CSC_CONSOLE_TIMELINE_DETAIL);
        if (detail && strcmp(detail, "{}") != 0) {
            html_raw(b, "<pre>");
            html_esc(b, detail);
            html_raw(b, "</pre>");
        }
        if (strcmp(cs_db_str(res, i, CSC_CONSOLE_TIMELINE_KIND), "audit") == 0) {
            html_raw(b, "<span class=\"muted\">");
            if (cs_db_str(res, i, CSC_CONSOLE_TIMELINE_SEAL_SEQ)) {
                html_raw(b, "sealed in #");
                html_esc(b, cs_db_str(res, i, CSC_CONSOLE_TIMELINE_SEAL_SEQ));
                html_raw(b, " <span class=\"mono\">");
                html_esc(b, cs_db_str(res, i, CSC_CONSOLE_TIMELINE_SEAL_HASH));
                html_raw(b, "</span>");
            } else {
                html_raw(b, "not sealed yet");
            }
            html_raw(b, "</span>");
        }
        html_raw(b, "</li>");
    }
    if (PQntuples(res) == 0)
        html_raw(b, "<li>Nothing recorded.</li>");
    html_raw(b, "</ol></section></div>");
    PQclear(res);
}

enum MHD_Result console_approval(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct console k;
    enum MHD_Result ret;
    char err[CS_ERRLEN];
    if (!console_open(r, c, d, &k, &ret))
        return ret;
    const char *id = r->params[0];
    if (!cs_uuid_valid(id))
        return console_fail(&k, CS_ERR_NOT_FOUND, "no such approval");
    const char *p[] = {id};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(k.d->db, CS_DB_Q(CONSOLE_APPROVAL, p), &res, err);
    if (!rc && PQntuples(res) != 1) {
        PQclear(res);
        return console_fail(&k, CS_ERR_NOT_FOUND, "no such approval");
    }
    if (rc)
        return console_fail(&k, rc, err);
    struct cs_buf *b = &k.b;
    console_head(&k, "Approval", "approvals");
    html_raw(b, "<section id=\"state\" data-live><div class=\"card\"><p class=\"mono\">");
    html_esc(b, id);
    html_raw(b, " ");
    badge(b, cs_db_str(res, 0, CSC_CONSOLE_APPROVAL_STATUS));
    html_raw(b, "</p><dl>");
    field(b, "Agent", res, CSC_CONSOLE_APPROVAL_NAME);
    field(b, "Grant", res, CSC_CONSOLE_APPROVAL_GRANT_ID);
    field(b, "Policy", res, CSC_CONSOLE_APPROVAL_POLICY_ID);
    field(b, "Request id", res, CSC_CONSOLE_APPROVAL_REQUEST_ID);
    if (cs_db_str(res, 0, CSC_CONSOLE_APPROVAL_BATCH_ID)) {
        html_raw(b, "<dt>Batch</dt><dd><a href=\"/console/approvals?batch=");
        html_esc(b, cs_db_str(res, 0, CSC_CONSOLE_APPROVAL_BATCH_ID));
        html_raw(b, "\">");
        html_esc(b, cs_db_str(res, 0, CSC_CONSOLE_APPROVAL_BATCH_ID));
        html_raw(b, "</a></dd>");
    }
    field(b, "Approvers", res, CSC_CONSOLE_APPROVAL_APPROVER_NAMES);
    field(b, "Quorum", res, CSC_CONSOLE_APPROVAL_QUORUM);
    time_field(b, "Created", res, CSC_CONSOLE_APPROVAL_OLDEST_CREATED_MS);
    time_field(b, "Expires", res, CSC_CONSOLE_APPROVAL_EXPIRES_MS);
    time_field(b, "Decided", res, CSC_CONSOLE_APPROVAL_DECIDED_MS);
    field(b, "Decided by", res, CSC_CONSOLE_APPROVAL_DECIDED_BY);
    field(b, "Decision reason", res, CSC_CONSOLE_APPROVAL_DECISION_REASON);
    field(b, "Attempts", res, CSC_CONSOLE_APPROVAL_ATTEMPTS);
    field(b, "Lease owner", res, CSC_CONSOLE_APPROVAL_LEASE_OWNER);
    time_field(b, "Lease until", res, CSC_CONSOLE_APPROVAL_LEASE_EXPIRES_MS);
    time_field(b, "Executed", res, CSC_CONSOLE_APPROVAL_EXECUTED_MS);
    html_raw(b, "</dl></div>");
    actions(&k, res);
    html_raw(b, "<div class=\"card\"><h2>Outcome</h2>");
    if (cs_db_str(res, 0, CSC_CONSOLE_APPROVAL_ERROR_CODE)) {
        html_raw(b, "<p><b>");
        console_cell(b, res, 0, CSC_CONSOLE_APPROVAL_ERROR_CODE);
        html_raw(b, "</b>: ");
        console_cell(b, res, 0, CSC_CONSOLE_APPROVAL_ERROR_MESSAGE);
        html_raw(b, "</p>");
    }
    if (cs_db_str(res, 0, CSC_CONSOLE_APPROVAL_RESPONSE_STATUS)) {
        html_raw(b, "<p>The provider answered <b>");
        console_cell(b, res, 0, CSC_CONSOLE_APPROVAL_RESPONSE_STATUS);
        html_raw(b, cs_db_bool(res, 0, CSC_CONSOLE_APPROVAL_RESPONSE_TRUNCATED)
                        ? "</b> (body truncated)</p>"
                        : "</b></p>");
        html_raw(b, "<h2>Response headers</h2>");
        pages_show_json(b, cs_db_str(res, 0, CSC_CONSOLE_APPROVAL_RESPONSE_HEADERS));
        html_raw(b, "<h2>Response body</h2>");
        pages_show_body(b, cs_db_str(res, 0, CSC_CONSOLE_APPROVAL_RESPONSE_BODY_B64));
    } else if (!cs_db_str(res, 0, CSC_CONSOLE_APPROVAL_ERROR_CODE)) {
        html_raw(b, "<p class=\"muted\">No call made (yet).</p>");
    }
    html_raw(b, "</div></section><div class=\"card\"><h2>The request, as the approvers saw it</h2>"
                "<p class=\"mono\"><b>");
    console_cell(b, res, 0, CSC_CONSOLE_APPROVAL_METHOD);
    html_raw(b, "</b> ");
    console_cell(b, res, 0, CSC_CONSOLE_APPROVAL_URL);
    html_raw(b, "</p><dl><dt>Digest</dt><dd class=\"mono\">sha256:");
    console_cell(b, res, 0, CSC_CONSOLE_APPROVAL_DIGEST_HEX);
    html_raw(b, "</dd><dt>Reason</dt><dd>");
    console_cell(b, res, 0, CSC_CONSOLE_APPROVAL_REASON);
    html_raw(b, "</dd></dl><h2>Body</h2>");
    pages_show_body(b, cs_db_str(res, 0, CSC_CONSOLE_APPROVAL_BODY_B64));
    html_raw(b, "<h2>Headers</h2>");
    pages_show_json(b, cs_db_str(res, 0, CSC_CONSOLE_APPROVAL_HEADERS));
    html_raw(b, "<h2>Context</h2>");
    pages_show_json(b, cs_db_str(res, 0, CSC_CONSOLE_APPROVAL_CONTEXT));
    html_raw(b, "<h2>Policy at submission</h2>");
    pages_show_json(b, cs_db_str(res, 0, CSC_CONSOLE_APPROVAL_POLICY));
    html_raw(b, "</div>");
    PQclear(res);
    timeline(&k, id);
    return console_page(&k);
}

/* ---- POST actions ---- */

/* Opens a POST on /console/approvals/{id}/...: a read-write operator, the form, a UUID. */
static bool action_open(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                        struct console *k, struct form *f, enum MHD_Result *ret)
{
    if (!console_open_post(r, c, d, k, f, ret))
        return false;
    if (cs_uuid_valid(r->params[0]))
        return true;
    *ret = console_fail(k, CS_ERR_NOT_FOUND, "no such approval");
    return false;
}

static enum MHD_Result action_end(struct console *k, struct form *f, enum cs_err rc,
                                  const char *err, const char *to_id)
{
    char to[64];
    form_free(f);
    if (rc)
        return console_fail(k, rc, err);
    snprintf(to, sizeof(to), "/console/approvals/%s", to_id);
    return console_done(k, to);
}

static const char *reason_of(const struct form *f)
{
    const char *reason = form_get(f, "reason");
    return reason && *reason ? reason : NULL;
}

enum MHD_Result console_cancel(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct console k;
    struct form f = {0};
    enum MHD_Result ret;
    char err[CS_ERRLEN];
    if (!action_open(r, c, d, &k, &f, &ret)) {
        form_free(&f);
        return ret;
    }
    enum cs_err rc = cs_approval_cancel(k.d->db, r->params[0], NULL, k.actor, reason_of(&f), err);
    if (!rc)
        cs_log_ap(CS_LOG_INFO, "console", r->params[0], "cancelled by %s", k.actor);
    return action_end(&k, &f, rc, err, r->params[0]);
}

enum MHD_Result console_decide(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct console k;
    struct form f = {0};
    enum MHD_Result ret;
    char err[CS_ERRLEN];
    if (!action_open(r, c, d, &k, &f, &ret)) {
        form_free(&f);
        return ret;
    }
    const char *decision = form_get(&f, "decision"), *as = form_get(&f, "as");
    enum cs_err rc = CS_OK;
    if (!decision || (strcmp(decision, "approve") && strcmp(decision, "deny")))
        rc = cs_err_set(err, CS_ERR_INVALID, "choose approve or deny");
    else if (!as || !*as)
        rc = cs_err_set(err, CS_ERR_INVALID, "choose the approver you vote as");
    else if (!strcmp(decision, "deny") && !reason_of(&f))
        rc = cs_err_set(err, CS_ERR_INVALID, "a denial needs a reason (as with the CLI)");
    struct cs_vote_outcome out;
    char actor[300];
    snprintf(actor, sizeof(actor), "%s", k.actor);
    if (!rc)
        rc = cs_approval_operator_vote(k.d->db, r->params[0], as, actor,
                                       strcmp(decision, "approve") == 0, reason_of(&f), &out, err);
    if (!rc)
        cs_log_ap(CS_LOG_INFO, "console", r->params[0], "%s voted %s as %s", k.actor, decision, as);
    return action_end(&k, &f, rc, err, r->params[0]);
}

enum MHD_Result console_resubmit(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct console k;
    struct form f = {0};
    enum MHD_Result ret;
    char err[CS_ERRLEN], new_id[CS_UUID_STRLEN + 1];
    if (!action_open(r, c, d, &k, &f, &ret)) {
        form_free(&f);
        return ret;
    }
    enum cs_err rc = cs_approval_resubmit(k.d->db, k.d->cat, &r->api->keys, r->api->cfg->public_url,
                                          r->params[0], k.actor, new_id, err);
    if (!rc)
        cs_log_ap(CS_LOG_INFO, "console", r->params[0], "re-submitted by %s as %s", k.actor,
                  new_id);
    return action_end(&k, &f, rc, err, rc ? r->params[0] : new_id);
}
