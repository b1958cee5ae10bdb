/*
 * console.c -- the operator console: who may see it, and its page frame.
 *
 * Operators are approvers with a console role (migration 008): 'read'
 * sees every page, 'write' may also act. They sign in like any approver
 * (one-time links, OpenID Connect); the role comes from the CLI
 * (`countersign approver set NAME --operator ...`) or from the ID token's
 * CS_OIDC_OPERATOR_CLAIM. Rules, for every /console route:
 *   - nobody signed in: a GET is sent to sign in, a POST is refused (401);
 *   - a signed-in approver without the role: 403, whatever the route;
 *   - a read-only operator: 403 on every POST;
 *   - a POST needs the session's form token and a same-origin browser
 *     (csrf.c), and what it does is audited as "operator:<name>".
 * Pages are server-rendered HTML with inline styles and inline SVG, no
 * external assets; api/console.js (same origin, CSP script-src 'self')
 * refreshes the parts marked data-live every CS_CONSOLE_REFRESH_SECONDS,
 * and every page works without it. Queries: sql/queries/console.sql.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "cs_log.h"
#include "cs_mem.h"

extern const char api_console_js[];

static const struct {
    const char *key, *path, *label;
} nav[] = {
    {"overview", "/console", "Overview"},
    {"approvals", "/console/approvals", "Approvals"},
    {"batches", "/console/batches", "Batches"},
    {"grants", "/console/grants", "Grants"},
    {"policies", "/console/policies", "Policies"},
    {"approvers", "/console/approvers", "Approvers"},
    {"dead-letters", "/console/dead-letters", "Dead letters"},
    {"audit", "/console/audit", "Audit"},
};

static void start(struct api_req *r, struct MHD_Connection *c, struct api_db *d, struct console *k)
{
    memset(k, 0, sizeof(*k));
    k->r = r;
    k->c = c;
    k->d = d;
    cs_buf_init(&k->b, API_PAGE_MAX);
}

static void end(struct console *k)
{
    k->d = NULL;
    cs_buf_free(&k->b);
}

static bool refuse(struct console *k, enum cs_err rc, const char *err, enum MHD_Result *ret)
{
    end(k);
    *ret = html_error(k->r, k->c, rc, err);
    return false;
}

bool console_open(struct api_req *r, struct MHD_Connection *c, struct api_db *d, struct console *k,
                  enum MHD_Result *ret)
{
    char err[CS_ERRLEN];
    start(r, c, d, k);
    if (!session_require(r, c, k->d, &k->s, "/console", ret)) {
        end(k);
        return false;
    }
    if (k->s.role == CS_OPERATOR_NONE) {
        cs_err_set(err, CS_ERR_FORBIDDEN,
                   "%s is not an operator: the console needs the operator "
                   "role (countersign approver set NAME --operator read|write)",
                   k->s.name);
        return refuse(k, CS_ERR_FORBIDDEN, err, ret);
    }
    snprintf(k->actor, sizeof(k->actor), "operator:%s", k->s.name);
    return true;
}

bool console_open_post(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                       struct console *k, struct form *f, enum MHD_Result *ret)
{
    char err[CS_ERRLEN];
    start(r, c, d, k);
    enum cs_err rc = session_get(c, k->d, &k->s, err);
    if (rc)
        return refuse(k, rc, rc == CS_ERR_UNAUTHENTICATED ? "sign in first" : err, ret);
    if (k->s.role != CS_OPERATOR_WRITE) {
        cs_err_set(err, CS_ERR_FORBIDDEN, "%s %s", k->s.name,
                   k->s.role == CS_OPERATOR_READ ? "is a read-only operator: no console action"
                                                 : "is not an operator");
        return refuse(k, CS_ERR_FORBIDDEN, err, ret);
    }
    rc = form_parse(r->body.data ? r->body.data : "", r->body.len, f, err);
    if (!rc)
        rc = csrf_check(r->api, c, form_get(f, "csrf"), &k->s, err);
    if (rc) {
        cs_log(CS_LOG_WARN, "console", "action refused: %s: %s", cs_err_code(rc), err);
        return refuse(k, rc, err, ret);
    }
    snprintf(k->actor, sizeof(k->actor), "operator:%s", k->s.name);
    return true;
}

void console_head(struct console *k, const char *title, const char *here)
{
    struct cs_buf *b = &k->b;
    char refresh[24];
    snprintf(refresh, sizeof(refresh), "%lld", (long long)k->r->api->cfg->console_refresh_s);
    html_raw(b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                "<meta name=\"robots\" content=\"noindex\"><title>");
    html_esc(b, title);
    html_raw(
        b,
        " &middot; Countersign console</title><style>"
        "*{box-sizing:border-box}"
        "body{font:15px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;"
        "background:#f5f5f4;color:#1c1917}"
        "header{background:#1c1917;color:#fafaf9;padding:8px 16px}"
        "header a{color:#e7e5e4;text-decoration:none;margin-right:14px;"
        "display:inline-block;padding:4px 0}"
        "header a.here{color:#fff;font-weight:700;border-bottom:2px solid #fbbf24}"
        "header .who{float:right;font-size:.85em;color:#d6d3d1}"
        "header form{display:inline}"
        "header button{background:none;border:0;color:#d6d3d1;text-decoration:underline;"
        "cursor:pointer;font:inherit;padding:0}"
        "main{max-width:1400px;margin:0 auto;padding:12px 16px}"
        "h1{font-size:1.3em;margin:.3em 0 .6em}h2{font-size:1em;margin:1.1em 0 .4em;"
        "text-transform:uppercase;letter-spacing:.04em;color:#57534e}"
        ".card{background:#fff;border:1px solid #e7e5e4;border-radius:10px;padding:12px;"
        "margin:10px 0;min-width:0}"
        ".grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px}"
        ".grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(420px,100%),1fr));gap:10px}"
        ".stat{background:#fff;border:1px solid #e7e5e4;border-radius:10px;padding:10px}"
        ".stat b{display:block;font-size:1.6em}.stat span{color:#57534e;font-size:.85em}"
        ".scroll{overflow-x:auto;max-width:100%}"
        "table{border-collapse:collapse;width:100%;font-size:.9em}"
        "th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e7e5e4;"
        "vertical-align:top}th{color:#57534e;font-weight:600;white-space:nowrap}"
        "td.u{font-family:ui-monospace,monospace;word-break:break-all;min-width:12em}"
        ".mono{font-family:ui-monospace,monospace;word-break:break-all}"
        "pre{background:#fafaf9;border:1px solid #e7e5e4;border-radius:8px;padding:8px;"
        "white-space:pre-wrap;word-break:break-word;font-size:.85em;margin:4px 0}"
        ".badge{display:inline-block;padding:1px 8px;border-radius:99px;background:#e7e5e4;"
        "font-size:.85em;white-space:nowrap}"
        ".pending{background:#fef3c7}.approved,.executing{background:#dbeafe}"
        ".executed{background:#dcfce7}.failed,.denied{background:#fee2e2}"
        ".expired,.cancelled{background:#e7e5e4}"
        "form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-end}"
        "form.filters label{display:flex;flex-direction:column;font-size:.8em;color:#57534e}"
        "input,select,textarea{font:inherit;padding:5px;border:1px solid #d6d3d1;"
        "border-radius:6px;max-width:100%}"
        "button{font:inherit;font-weight:600;padding:6px 12px;border-radius:6px;border:0;"
        "background:#1d4ed8;color:#fff;cursor:pointer}"
        "button.danger{background:#b91c1c}button.ok{background:#15803d}"
        "button.plain{background:#e7e5e4;color:#1c1917}"
        ".actions{display:flex;flex-wrap:wrap;gap:8px;align-items:center}"
        ".actions form{display:flex;flex-wrap:wrap;gap:6px;align-items:center}"
        "dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 12px;margin:0}"
        "dt{color:#57534e}dd{margin:0;word-break:break-all;min-width:0}"
        "svg{width:100%;height:auto;display:block}"
        ".muted{color:#78716c}.note{background:#fef9c3;border-color:#fde68a}"
        "a{color:#1d4ed8}"
        "ol.tl{list-style:none;padding:0;margin:0}"
        "ol.tl li{border-left:3px solid #d6d3d1;padding:4px 10px;margin:0 0 6px}"
        "ol.tl li.vote{border-color:#15803d}ol.tl li.notification{border-color:#a16207}"
        "@media (max-width:600px){header .who{float:none;display:block}"
        "main{padding:8px}"
        /* On a phone each approval is a block of its cells, not a wide row. */
        "table.rows tr:first-child{display:none}"
        "table.rows tr{display:block;border-bottom:1px solid #d6d3d1;padding:6px 0}"
        "table.rows td{display:inline-block;border:0;padding:1px 6px 1px 0;min-width:0}"
        "table.rows td.u{display:block}}"
        "</style><script src=\"/static/console.js\" defer></script></head>"
        "<body data-refresh=\"");
    html_raw(b, refresh);
    html_raw(b, "\"><header><span class=\"who\">");
    html_esc(b, k->s.name);
    html_raw(b, k->s.role == CS_OPERATOR_WRITE ? " (operator)" : " (read-only operator)");
    html_raw(b, " &middot; <a href=\"/inbox\">inbox</a>"
                "<form method=\"post\" action=\"/signout\" class=\"bar\">");
    console_csrf(k);
    html_raw(b, "<button>Sign out</button></form></span><nav>");
    for (size_t i = 0; i < sizeof(nav) / sizeof(nav[0]); i++) {
        html_raw(b, "<a href=\"");
        html_raw(b, nav[i].path);
        html_raw(b, strcmp(nav[i].key, here) == 0 ? "\" class=\"here\">" : "\">");
        html_raw(b, nav[i].label);
        html_raw(b, "</a>");
    }
    html_raw(b, "</nav></header><main><h1>");
    html_esc(b, title);
    html_raw(b, "</h1>");
}

enum MHD_Result console_page(struct console *k)
{
    html_raw(&k->b, "<p class=\"muted\" style=\"font-size:.8em\">Countersign operator console "
                    "&middot; times are UTC</p></main></body></html>");
    k->d = NULL;
    return reply_html(k->r, k->c, 200, &k->b, NULL);
}

enum MHD_Result console_fail(struct console *k, enum cs_err rc, const char *err)
{
    end(k);
    return html_error(k->r, k->c, rc, err);
}

enum MHD_Result console_done(struct console *k, const char *to)
{
    end(k);
    return reply_redirect(k->r, k->c, to, NULL, NULL);
}

const char *console_arg(struct console *k, const char *name)
{
    const char *v = MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, name);
    return v && *v ? v : NULL;
}

void console_time(struct cs_buf *b, int64_t ms)
{
    char iso[CS_TIME_ISO_LEN];
    if (ms <= 0) {
        html_raw(b, "-");
        return;
    }
    cs_time_iso(ms, iso);
    iso[10] = ' '; /* 2026-12-02T07:10:11.123Z -> 2026-12-02 07:10:11 */
    iso[19] = '\0';
    html_raw(b, iso);
}

void console_ago(struct cs_buf *b, int64_t ms)
{
    char text[48];
    int64_t s = (cs_now_ms() - ms) / 1000;
    if (ms <= 0)
        snprintf(text, sizeof(text), "-");
    else if (s < 120)
        snprintf(text, sizeof(text), "%lld s ago", (long long)(s < 0 ? 0 : s));
    else if (s < 7200)
        snprintf(text, sizeof(text), "%lld min ago", (long long)(s / 60));
    else if (s < 172800)
        snprintf(text, sizeof(text), "%lld h ago", (long long)(s / 3600));
    else
        snprintf(text, sizeof(text), "%lld days ago", (long long)(s / 86400));
    html_raw(b, text);
}

void console_csrf(struct console *k)
{
    session_csrf_field(&k->b, k->r->api, &k->s);
}

void console_esc_or_dash(struct cs_buf *b, const char *s)
{
    html_esc(b, s && *s ? s : "-");
}

void console_cell(struct cs_buf *b, const PGresult *res, int row, int col)
{
    console_esc_or_dash(b, cs_db_str(res, row, col));
}

enum MHD_Result console_script(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    (void)d;
    return reply_text(r, c, 200, "text/javascript; charset=utf-8", api_console_js,
                      strlen(api_console_js));
}
