/*
 * session.c -- who is signed in on the approver pages, and the page parts
 * that depend on it: the sign-out bar, the form token, the sign-in box.
 *
 * The session itself lives in Postgres (lib/cs_session.c); the browser
 * holds only its random token in the HttpOnly cs_session cookie.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "cs_mem.h"

enum cs_err session_get(struct MHD_Connection *c, struct api_db *d, struct cs_session *s, char *err)
{
    const char *token = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, CS_SESSION_COOKIE);
    if (!token) {
        memset(s, 0, sizeof(*s));
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED, "not signed in");
    }
    return cs_session_lookup(d->db, token, s, err);
}

bool session_of(struct api_req *r, struct MHD_Connection *c, struct api_db *d, struct cs_session *s)
{
    char err[CS_ERRLEN];
    (void)r;
    return session_get(c, d, s, err) == CS_OK;
}

bool session_require(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                     struct cs_session *s, const char *next, enum MHD_Result *ret)
{
    char err[CS_ERRLEN], to[64];
    enum cs_err rc = session_get(c, d, s, err);
    if (rc == CS_OK)
        return true;
    snprintf(to, sizeof(to), "/signin?next=%s", next);
    *ret = rc == CS_ERR_UNAUTHENTICATED ? reply_redirect(r, c, to, NULL, NULL)
                                        : html_error(r, c, rc, err);
    return false;
}

void session_client_address(struct MHD_Connection *c, char out[64])
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, 64);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, 64);
}

void session_csrf_field(struct cs_buf *b, struct api *a, const struct cs_session *s)
{
    char csrf[CSRF_LEN + 1];
    csrf_token(a, s, csrf);
    html_raw(b, "<input type=\"hidden\" name=\"csrf\" value=\"");
    html_raw(b, csrf);
    html_raw(b, "\">");
}

void session_bar(struct cs_buf *b, struct api *a, const struct cs_session *s)
{
    html_raw(b, "<form method=\"post\" action=\"/signout\" class=\"bar\">Signed in as <b>");
    html_esc(b, s->name);
    html_raw(b, "</b> &middot; <a href=\"/inbox\">your approvals</a> &middot; "
                "<a href=\"/passkeys\">passkeys</a> &middot; ");
    if (s->role != CS_OPERATOR_NONE)
        html_raw(b, "<a href=\"/console\">console</a> &middot; ");
    session_csrf_field(b, a, s);
    html_raw(b, "<button class=\"link\">Sign out</button></form>");
}

void session_signin_box(struct cs_buf *b, struct api *a, const char *path, bool resend)
{
    html_raw(b, "<div class=\"card\"><h2>Sign in to decide</h2><p>Approvers of this request "
                "sign in to approve or deny it.</p>");
    if (a->oidc) {
        html_raw(b, "<p><a class=\"button\" href=\"/signin/oidc?next=");
        html_esc(b, path);
        html_raw(b, "\">Sign in with single sign-on</a></p>");
    }
    if (resend) {
        html_raw(b, "<form method=\"post\" action=\"");
        html_esc(b, path);
        html_raw(b, "/signin-links\"><p>No single sign-on? Each approver who has not voted gets a "
                    "fresh one-time sign-in link through their own channels.</p>"
                    "<button class=\"link\">Send the approvers a sign-in link</button></form>");
    }
    html_raw(b, "</div>");
}
