/*
 * html.c -- the approval pages' HTML: escaping, the page frame with its
 * inline styles (no external assets; readable on a 390 px phone), and the
 * message pages for outcomes and refusals. Everything shown goes through
 * html_esc().
 */
#include <stdio.h>
#include <string.h>

#include "api.h"

void html_esc(struct cs_buf *b, const char *s)
{
    for (; s && *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (rep)
            cs_buf_append_trunc(b, rep, strlen(rep));
        else
            cs_buf_append_trunc(b, s, 1);
    }
}

void html_raw(struct cs_buf *b, const char *s)
{
    cs_buf_append_trunc(b, s, strlen(s));
}

void html_head(struct cs_buf *b, const char *title)
{
    html_raw(b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                "<meta name=\"robots\" content=\"noindex\"><title>");
    html_esc(b, title);
    html_raw(b,
             "</title><style>"
             "body{font:16px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;"
             "background:#f5f5f4;color:#1c1917}"
             "main{max-width:720px;margin:0 auto;padding:16px}"
             "h1{font-size:1.35em;margin:.2em 0 .6em}h2{font-size:1em;margin:1.2em 0 .3em;"
             "text-transform:uppercase;letter-spacing:.04em;color:#57534e}"
             ".card{background:#fff;border:1px solid #e7e5e4;border-radius:10px;padding:14px;"
             "margin:10px 0}"
             ".url{font-family:ui-monospace,monospace;word-break:break-all}"
             "pre{background:#fafaf9;border:1px solid #e7e5e4;border-radius:8px;padding:10px;"
             "overflow-x:auto;white-space:pre-wrap;word-break:break-word;font-size:.85em}"
             "blockquote{margin:0;padding:8px 12px;border-left:4px solid #a8a29e;background:#fff}"
             "dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;margin:0}"
             "dt{color:#57534e}dd{margin:0;word-break:break-all}"
             ".badge{display:inline-block;padding:2px 8px;border-radius:99px;background:#e7e5e4}"
             ".ok{background:#dcfce7}.no{background:#fee2e2}"
             "textarea{width:100%;box-sizing:border-box;min-height:4em;font:inherit}"
             ".actions{display:flex;gap:10px;margin-top:10px}"
             "button{flex:1;font:inherit;font-weight:600;padding:12px;border-radius:8px;border:0}"
             ".approve{background:#15803d;color:#fff}.deny{background:#b91c1c;color:#fff}"
             "ul{padding-left:1.2em}a{color:#1d4ed8}"
             ".item{border-top:1px solid #e7e5e4;padding:8px 0}label{display:block;margin-top:8px}"
             ".bar{font-size:.9em;color:#57534e;margin:0 0 8px}"
             "button.link{flex:none;background:none;color:#1d4ed8;padding:0;font-weight:400;"
             "text-decoration:underline;cursor:pointer}"
             "a.button{display:inline-block;background:#1d4ed8;color:#fff;padding:10px 16px;"
             "border-radius:8px;text-decoration:none;font-weight:600}"
             "</style></head><body><main>");
}

void html_foot(struct cs_buf *b)
{
    html_raw(b, "<p style=\"color:#78716c;font-size:.8em\">Countersign &middot; only a signed-in "
                "approver can decide here.</p></main></body></html>");
}

/* A page with a heading and a sentence, for refusals and outcomes. */
enum MHD_Result html_message(struct api_req *r, struct MHD_Connection *c, unsigned status,
                             const char *title, const char *text)
{
    struct cs_buf b;
    cs_buf_init(&b, API_PAGE_MAX);
    html_head(&b, title);
    html_raw(&b, "<h1>");
    html_esc(&b, title);
    html_raw(&b, "</h1><div class=\"card\"><p>");
    html_esc(&b, text);
    html_raw(&b, "</p></div>");
    html_foot(&b);
    return reply_html(r, c, status, &b, NULL);
}

enum MHD_Result html_error(struct api_req *r, struct MHD_Connection *c, enum cs_err rc,
                           const char *detail)
{
    const struct cs_err_info *e = cs_err_info(rc);
    static const struct {
        enum cs_err rc;
        const char *title;
    } titles[] = {{CS_ERR_BAD_TOKEN, "This link is not valid"},
                  {CS_ERR_EXPIRED, "This approval has expired"},
                  {CS_ERR_NOT_PENDING, "Already decided"},
                  {CS_ERR_ALREADY_VOTED, "You have already voted"},
                  {CS_ERR_SELF_APPROVAL, "You cannot vote on your own request"},
                  {CS_ERR_NOT_APPROVER, "You are not an approver of this request"},
                  {CS_ERR_CSRF, "Please reload the page"},
                  {CS_ERR_UNAUTHENTICATED, "Please sign in"}};
    const char *title = "Something went wrong";
    for (size_t i = 0; i < sizeof(titles) / sizeof(titles[0]); i++)
        if (titles[i].rc == rc)
            title = titles[i].title;
    return html_message(r, c, (unsigned)e->http_status, title,
                        rc == CS_ERR_INTERNAL || e->http_status >= 500 ? e->message
                        : detail && *detail                            ? detail
                                                                       : e->message);
}

/* "in 42 min" / "in 3 h" / "in 2 days" / "passed" */
void html_time_left(char *out, size_t n, int64_t ms)
{
    int64_t s = ms / 1000;
    if (s <= 0)
        snprintf(out, n, "passed");
    else if (s < 120)
        snprintf(out, n, "in %lld s", (long long)s);
    else if (s < 7200)
        snprintf(out, n, "in %lld min", (long long)(s / 60));
    else if (s < 172800)
        snprintf(out, n, "in %lld h", (long long)(s / 3600));
    else
        snprintf(out, n, "in %lld days", (long long)(s / 86400));
}
