/*
 * cs_session.h -- how a person proves who they are: one-time sign-in
 * links and the sessions they (or an OpenID login) open.
 *
 * A vote is cast by a signed-in approver, never by whoever holds a link
 * (SPEC, security invariant 2). A sign-in link is single-use, lives
 * CS_SIGNIN_LINK_SECONDS, is addressed to one approver and is sent only
 * through that approver's own channels (or handed out by an operator).
 * Spending it -- a POST, never a GET, so mail scanners burn nothing --
 * opens a session: a fresh random token in an HttpOnly cookie, revocable,
 * with idle (CS_SESSION_IDLE_SECONDS) and absolute (CS_SESSION_MAX_SECONDS)
 * lifetimes. Only SHA-256 hashes of links and session tokens are stored
 * (sql/queries/session.sql), so a database reader cannot sign in.
 *
 * Thread: every function uses the caller's connection only.
 */
#ifndef CS_SESSION_H
#define CS_SESSION_H

#include <stdbool.h>

#include "cs_config.h"
#include "cs_crypto.h"
#include "cs_db.h"
#include "cs_err.h"

#define CS_SESSION_TOKEN_LEN 43 /* base64url of 32 random bytes */
#define CS_SESSION_COOKIE "cs_session"
#define CS_NEXT_PATH_MAX 512

/* An operator's console role (sql/migrations/008_console.sql): none, read-only, read-write. */
enum cs_operator_role { CS_OPERATOR_NONE, CS_OPERATOR_READ, CS_OPERATOR_WRITE };

struct cs_session {
    enum cs_operator_role role; /* the stronger of the approver's and the session's */
    char id[CS_UUID_STRLEN + 1];
    char approver_id[CS_UUID_STRLEN + 1];
    char name[129]; /* the approver's name */
    char method[8]; /* "oidc" or "link" */
};

/* True when p is a local path to send a browser to after sign-in ("/x...", not "//host"). */
bool cs_session_next_valid(const char *p);

/*
 * Mints a sign-in link for enabled approver `approver_id` that leads to
 * next_path once spent; `purpose` (request, reminder, operator, ...) is
 * audited when it is used. *url is "<CS_PUBLIC_URL>/signin/<token>",
 * cs_malloc'd; the token itself is stored only as its hash.
 * CS_ERR_NOT_APPROVER for an unknown or disabled approver.
 */
enum cs_err cs_signin_link_mint(struct cs_db *db, const struct cs_config *cfg,
                                const char *approver_id, const char *next_path, const char *purpose,
                                char **url, char *err) CS_MUSTCHECK;

/* Whose link `token` is while it can still be used (a GET shows this); CS_ERR_BAD_TOKEN otherwise. */
enum cs_err cs_signin_link_peek(struct cs_db *db, const char *token, char name[129],
                                char *err) CS_MUSTCHECK;

/*
 * Spends sign-in link `token` once: fills approver_id and next_path.
 * CS_ERR_BAD_TOKEN when it is unknown, used, expired or its approver
 * disabled (one message for all, so a prober learns nothing).
 */
enum cs_err cs_signin_link_use(struct cs_db *db, const char *token,
                               char approver_id[CS_UUID_STRLEN + 1],
                               char next_path[CS_NEXT_PATH_MAX + 1], char *err) CS_MUSTCHECK;

/*
 * Opens a session for approver_id, signed in by `method` ("oidc" or
 * "link"); the new random token goes into token (for the cookie). Always
 * a fresh token, whatever cookie the browser had: no session fixation.
 * `role` is the operator role the identity provider granted for this
 * session (CS_OPERATOR_NONE for a link).
 */
enum cs_err cs_session_create(struct cs_db *db, const struct cs_config *cfg,
                              const char *approver_id, const char *method,
                              enum cs_operator_role role, const char *user_agent,
                              const char *address, char token[CS_SESSION_TOKEN_LEN + 1],
                              char *err) CS_MUSTCHECK;

/* The live session of cookie value `token` into *s; CS_ERR_UNAUTHENTICATED when none. */
enum cs_err cs_session_lookup(struct cs_db *db, const char *token, struct cs_session *s,
                              char *err) CS_MUSTCHECK;

/* Ends the session of `token` (signing out); no session is not an error. */
enum cs_err cs_session_revoke(struct cs_db *db, const char *token, char *err) CS_MUSTCHECK;

/* Ends every session of approver `name`; *count how many. `actor` is audited. */
enum cs_err cs_session_revoke_approver(struct cs_db *db, const char *name, const char *actor,
                                       long *count, char *err) CS_MUSTCHECK;

/*
 * The Set-Cookie value for a session token (NULL: one that clears it):
 * HttpOnly, SameSite=Lax, Path=/, Secure when CS_PUBLIC_URL is https,
 * Max-Age the absolute lifetime.
 */
void cs_session_cookie(const struct cs_config *cfg, const char *token, char *out, size_t n);

/* "read", "write" or NULL (none); and back (NULL, "" and "none" are none; -1 when unknown). */
const char *cs_operator_role_name(enum cs_operator_role role);
int cs_operator_role_parse(const char *s);

#endif
