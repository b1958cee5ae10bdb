/*
 * console_catalog.c -- read-only views of what steers the queue: batches
 * (progress per status, the summary, the decision), grants (call rate,
 * error rate and latency; never the secret), policies, approvers and
 * delegations; and pausing or resuming a grant:
 *   POST /console/grants/{id}/pause | /resume   (read-write; cs_grant_pause, audited)
 * While a grant is paused the executor starts none of its calls: those in
 * flight finish, approved ones wait and start after the resume.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "cs_admin.h"
#include "cs_log.h"
#include "cs_mem.h"

#define BATCH_PAGE 50

/* A page of a read-only list: runs q, starts the page and its table with `head` (th cells). */
static bool list_start(struct console *k, enum cs_query q, int n, const char *const *p,
                       const char *title, const char *here, const char *head, PGresult **res,
                       enum MHD_Result *ret)
{
    char err[CS_ERRLEN];
    enum cs_err rc = cs_db_exec(k->d->db, q, n, p, res, err);
    if (rc) {
        *ret = console_fail(k, rc, err);
        return false;
    }
    console_head(k, title, here);
    html_raw(&k->b, "<section id=\"list\" data-live><div class=\"card scroll\"><table><tr>");
    html_raw(&k->b, head);
    html_raw(&k->b, "</tr>");
    return true;
}

static enum MHD_Result list_end(struct console *k, PGresult *res, const char *none)
{
    if (PQntuples(res) == 0) {
        html_raw(&k->b, "<tr><td colspan=\"12\" class=\"muted\">");
        html_raw(&k->b, none);
        html_raw(&k->b, "</td></tr>");
    }
    html_raw(&k->b, "</table></div></section>");
    PQclear(res);
    return console_page(k);
}

static void td(struct cs_buf *b, const PGresult *res, int row, int col)
{
    html_raw(b, "<td>");
    console_cell(b, res, row, col);
    html_raw(b, "</td>");
}

static void td_yes(struct cs_buf *b, const PGresult *res, int row, int col)
{
    html_raw(b, cs_db_bool(res, row, col) ? "<td>yes</td>" : "<td>no</td>");
}

/* ---- GET /console/batches ---- */

static void batch_summary(struct console *k, const char *uid)
{
    const char *p[] = {uid};
    PGresult *res = NULL;
    char err[CS_ERRLEN];
    if (cs_db_exec(k->d->db, CS_DB_Q(CONSOLE_BATCH_SUMMARY, p), &res, err) == CS_OK &&
        PQntuples(res) == 1) {
        html_raw(&k->b, "<details><summary>summary</summary><pre>");
        html_esc(&k->b, cs_db_str(res, 0, CSC_CONSOLE_BATCH_SUMMARY_DETAIL));
        html_raw(&k->b, "</pre></details>");
    }
    PQclear(res);
}

enum MHD_Result console_batches(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct console k;
    enum MHD_Result ret;
    PGresult *res = NULL;
    char limit[16];
    if (!console_open(r, c, d, &k, &ret))
        return ret;
    snprintf(limit, sizeof(limit), "%d", BATCH_PAGE);
    const char *p[] = {NULL, limit};
    if (!list_start(&k, CS_DB_Q(CONSOLE_BATCHES, p), "Batches", "batches",
                    "<th>created</th><th>agent</th><th>batch</th><th>status</th><th>grant</th>"
                    "<th>members</th><th>progress</th><th>decision</th><th>finished</th>",
                    &res, &ret))
        return ret;
    struct cs_buf *b = &k.b;
    for (int i = 0; i < PQntuples(res); i++) {
        html_raw(b, "<tr><td>");
        console_time(b, cs_db_int(res, i, CSC_CONSOLE_BATCHES_CREATED_MS));
        html_raw(b, "</td>");
        td(b, res, i, CSC_CONSOLE_BATCHES_NAME);
        html_raw(b, "<td><a href=\"/console/approvals?batch=");
        html_esc(b, cs_db_str(res, i, CSC_CONSOLE_BATCHES_ID));
        html_raw(b, "&amp;agent=");
        html_esc(b, cs_db_str(res, i, CSC_CONSOLE_BATCHES_NAME));
        html_raw(b, "\">");
        html_esc(b, cs_db_str(res, i, CSC_CONSOLE_BATCHES_ID));
        html_raw(b, "</a></td>");
        td(b, res, i, CSC_CONSOLE_BATCHES_STATUS);
        td(b, res, i, CSC_CONSOLE_BATCHES_GRANT_ID);
        html_raw(b, "<td>");
        console_cell(b, res, i, CSC_CONSOLE_BATCHES_MEMBERS);
        html_raw(b, " of ");
        console_cell(b, res, i, CSC_CONSOLE_BATCHES_EXPECTED);
        html_raw(b, "</td>");
        td(b, res, i, CSC_CONSOLE_BATCHES_STATUS_COUNTS);
        html_raw(b, "<td>");
        console_cell(b, res, i, CSC_CONSOLE_BATCHES_DECISION);
        if (cs_db_str(res, i, CSC_CONSOLE_BATCHES_DECIDED_BY)) {
            html_raw(b, " by ");
            console_cell(b, res, i, CSC_CONSOLE_BATCHES_DECIDED_BY);
        }
        html_raw(b, "</td><td>");
        console_time(b, cs_db_str(res, i, CSC_CONSOLE_BATCHES_FINISHED_MS)
                            ? cs_db_int(res, i, CSC_CONSOLE_BATCHES_FINISHED_MS)
                            : 0);
        batch_summary(&k, cs_db_str(res, i, CSC_CONSOLE_BATCHES_UID));
        html_raw(b, "</td></tr>");
    }
    return list_end(&k, res, "No batch yet.");
}

/* ---- GET /console/grants ---- */

/* Active / paused (since, by whom) / disabled, and the pause or resume button. */
static void grant_state(struct console *k, const PGresult *res, int i)
{
    struct cs_buf *b = &k->b;
    bool paused = cs_db_str(res, i, CSC_CONSOLE_GRANTS_PAUSED_MS) != NULL;
    if (cs_db_bool(res, i, CSC_CONSOLE_GRANTS_DISABLED)) {
        html_raw(b, "disabled");
        return;
    }
    if (paused) {
        html_raw(b, "<span class=\"badge failed\">paused</span> ");
        console_ago(b, cs_db_int(res, i, CSC_CONSOLE_GRANTS_PAUSED_MS));
        html_raw(b, " by ");
        console_cell(b, res, i, CSC_CONSOLE_GRANTS_PAUSED_BY);
    } else {
        html_raw(b, "<span class=\"badge executed\">active</span>");
    }
    if (k->s.role != CS_OPERATOR_WRITE)
        return;
    html_raw(b, "<form method=\"post\" action=\"/console/grants/");
    html_esc(b, cs_db_str(res, i, CSC_CONSOLE_GRANTS_ID));
    html_raw(b, paused ? "/resume\">" : "/pause\">");
    console_csrf(k);
    html_raw(b, paused ? "<button class=\"ok\">Resume</button></form>"
                       : "<button class=\"danger\">Pause</button></form>");
}

enum MHD_Result console_grants(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct console k;
    enum MHD_Result ret;
    PGresult *res = NULL;
    if (!console_open(r, c, d, &k, &ret))
        return ret;
    if (!list_start(
            &k, CS_DB_Q0(CONSOLE_GRANTS), "Grants", "grants",
            "<th>grant</th><th>state</th><th>policy</th><th>agents</th><th>allowed bases</th>"
            "<th>inject</th><th>calls (24 h)</th><th>error rate</th>"
            "<th>decision &rarr; call p50 / p99</th><th>waiting to run</th>",
            &res, &ret))
        return ret;
    struct cs_buf *b = &k.b;
    for (int i = 0; i < PQntuples(res); i++) {
        char t[96];
        const char *id = cs_db_str(res, i, CSC_CONSOLE_GRANTS_ID);
        html_raw(b, "<tr id=\"grant-");
        html_esc(b, id);
        html_raw(b, "\"><td><a href=\"/console/approvals?grant=");
        html_esc(b, id);
        html_raw(b, "\">");
        html_esc(b, id);
        html_raw(b, "</a></td><td>");
        grant_state(&k, res, i);
        html_raw(b, "</td>");
        td(b, res, i, CSC_CONSOLE_GRANTS_POLICY_ID);
        td(b, res, i, CSC_CONSOLE_GRANTS_AGENTS);
        html_raw(b, "<td class=\"u\">");
        console_cell(b, res, i, CSC_CONSOLE_GRANTS_ALLOWED_BASES);
        html_raw(b, "</td>");
        td(b, res, i, CSC_CONSOLE_GRANTS_INJECT);
        td(b, res, i, CSC_CONSOLE_GRANTS_CALLS);
        int64_t calls = cs_db_int(res, i, CSC_CONSOLE_GRANTS_CALLS),
                failed = cs_db_int(res, i, CSC_CONSOLE_GRANTS_FAILED);
        snprintf(t, sizeof(t), "<td>%.1f%% (%lld)</td>",
                 calls ? 100.0 * (double)failed / (double)calls : 0.0, (long long)failed);
        html_raw(b, t);
        snprintf(t, sizeof(t), "<td>%lld / %lld ms</td>",
                 (long long)cs_db_int(res, i, CSC_CONSOLE_GRANTS_P50),
                 (long long)cs_db_int(res, i, CSC_CONSOLE_GRANTS_P99));
        html_raw(b, t);
        td(b, res, i, CSC_CONSOLE_GRANTS_WAITING);
        html_raw(b, "</tr>");
    }
    return list_end(&k, res, "No grant yet.");
}

/* ---- GET /console/policies ---- */

enum MHD_Result console_policies(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct console k;
    enum MHD_Result ret;
    PGresult *res = NULL;
    if (!console_open(r, c, d, &k, &ret))
        return ret;
    if (!list_start(&k, CS_DB_Q0(CONSOLE_POLICIES), "Policies", "policies",
                    "<th>policy</th><th>mode</th><th>rules</th><th>quorum</th><th>approvers</th>"
                    "<th>window s</th><th>timeout ms</th><th>attempts</th><th>passkey</th>"
                    "<th>links</th><th>remind / escalate s</th>",
                    &res, &ret))
        return ret;
    struct cs_buf *b = &k.b;
    for (int i = 0; i < PQntuples(res); i++) {
        html_raw(b, "<tr><td><a href=\"/console/approvals?policy=");
        html_esc(b, cs_db_str(res, i, CSC_CONSOLE_POLICIES_ID));
        html_raw(b, "\">");
        html_esc(b, cs_db_str(res, i, CSC_CONSOLE_POLICIES_ID));
        html_raw(b, "</a></td>");
        td(b, res, i, CSC_CONSOLE_POLICIES_MODE);
        html_raw(b, "<td class=\"u\">");
        console_cell(b, res, i, CSC_CONSOLE_POLICIES_RULES);
        html_raw(b, "</td>");
        td(b, res, i, CSC_CONSOLE_POLICIES_QUORUM);
        td(b, res, i, CSC_CONSOLE_POLICIES_APPROVERS);
        td(b, res, i, CSC_CONSOLE_POLICIES_WINDOW_SECONDS);
        td(b, res, i, CSC_CONSOLE_POLICIES_EXEC_TIMEOUT_MS);
        td(b, res, i, CSC_CONSOLE_POLICIES_MAX_ATTEMPTS);
        td_yes(b, res, i, CSC_CONSOLE_POLICIES_REQUIRE_PASSKEY);
        td(b, res, i, CSC_CONSOLE_POLICIES_LINK_MODE);
        html_raw(b, "<td>");
        console_cell(b, res, i, CSC_CONSOLE_POLICIES_REMINDER_INTERVAL_S);
        html_raw(b, " / ");
        console_cell(b, res, i, CSC_CONSOLE_POLICIES_ESCALATE_AFTER_S);
        html_raw(b, "</td></tr>");
    }
    return list_end(&k, res, "No policy yet.");
}

/* ---- GET /console/approvers ---- */

static void delegations(struct console *k)
{
    struct cs_buf *b = &k->b;
    PGresult *res = NULL;
    char err[CS_ERRLEN];
    html_raw(b, "<h2>Delegations</h2><div class=\"card scroll\">");
    if (cs_db_exec(k->d->db, CS_DB_Q0(CONSOLE_DELEGATIONS), &res, err) != CS_OK) {
        html_esc(b, err);
        html_raw(b, "</div>");
        return;
    }
    html_raw(b, "<table><tr><th>approver</th><th>delegate</th><th>from</th><th>until</th>"
                "<th>state</th></tr>");
    for (int i = 0; i < PQntuples(res); i++) {
        html_raw(b, "<tr>");
        td(b, res, i, CSC_CONSOLE_DELEGATIONS_APPROVER_NAME);
        td(b, res, i, CSC_CONSOLE_DELEGATIONS_DELEGATE_NAME);
        html_raw(b, "<td>");
        console_time(b, cs_db_int(res, i, CSC_CONSOLE_DELEGATIONS_STARTS_MS));
        html_raw(b, "</td><td>");
        console_time(b, cs_db_int(res, i, CSC_CONSOLE_DELEGATIONS_ENDS_MS));
        html_raw(b, "</td><td>");
        html_raw(b, cs_db_bool(res, i, CSC_CONSOLE_DELEGATIONS_REVOKED)                ? "revoked"
                    : cs_db_int(res, i, CSC_CONSOLE_DELEGATIONS_ENDS_MS) < cs_now_ms() ? "over"
                    : cs_db_int(res, i, CSC_CONSOLE_DELEGATIONS_STARTS_MS) > cs_now_ms()
                        ? "upcoming"
                        : "active");
        html_raw(b, "</td></tr>");
    }
    if (PQntuples(res) == 0)
        html_raw(b, "<tr><td colspan=\"5\" class=\"muted\">No delegation.</td></tr>");
    html_raw(b, "</table></div>");
    PQclear(res);
}

enum MHD_Result console_approvers(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct console k;
    enum MHD_Result ret;
    PGresult *res = NULL;
    if (!console_open(r, c, d, &k, &ret))
        return ret;
    if (!list_start(&k, CS_DB_Q0(CONSOLE_APPROVERS), "Approvers", "approvers",
                    "<th>approver</th><th>operator role</th><th>state</th><th>channels</th>"
                    "<th>single sign-on</th><th>operates agent</th><th>live sessions</th>"
                    "<th>passkeys</th>",
                    &res, &ret))
        return ret;
    struct cs_buf *b = &k.b;
    for (int i = 0; i < PQntuples(res); i++) {
        html_raw(b, "<tr><td><a href=\"/console/approvals?approver=");
        html_esc(b, cs_db_str(res, i, CSC_CONSOLE_APPROVERS_APPROVER_NAME));
        html_raw(b, "\">");
        html_esc(b, cs_db_str(res, i, CSC_CONSOLE_APPROVERS_APPROVER_NAME));
        html_raw(b, "</a></td>");
        td(b, res, i, CSC_CONSOLE_APPROVERS_OPERATOR_ROLE);
        html_raw(b, cs_db_bool(res, i, CSC_CONSOLE_APPROVERS_DISABLED) ? "<td>disabled</td>"
                                                                       : "<td>enabled</td>");
        td(b, res, i, CSC_CONSOLE_APPROVERS_CHANNELS);
        td_yes(b, res, i, CSC_CONSOLE_APPROVERS_HAS_OIDC);
        td(b, res, i, CSC_CONSOLE_APPROVERS_GROUP_NAME);
        td(b, res, i, CSC_CONSOLE_APPROVERS_SESSIONS);
        td(b, res, i, CSC_CONSOLE_APPROVERS_PASSKEYS);
        html_raw(b, "</tr>");
    }
    if (PQntuples(res) == 0)
        html_raw(b, "<tr><td colspan=\"8\" class=\"muted\">No approver yet.</td></tr>");
    html_raw(b, "</table></div></section>");
    PQclear(res);
    delegations(&k);
    return console_page(&k);
}

/* ---- POST /console/grants/{id}/pause | /resume ---- */

static enum MHD_Result grant_switch(struct api_req *r, struct MHD_Connection *c, struct api_db *d,
                                    bool pause)
{
    struct console k;
    struct form f = {0};
    enum MHD_Result ret;
    char err[CS_ERRLEN];
    bool changed = false;
    if (!console_open_post(r, c, d, &k, &f, &ret)) {
        form_free(&f);
        return ret;
    }
    form_free(&f);
    enum cs_err rc = pause ? cs_grant_pause(k.d->db, r->params[0], k.actor, &changed, err)
                           : cs_grant_resume(k.d->db, r->params[0], k.actor, &changed, err);
    if (rc)
        return console_fail(&k, rc, err);
    if (changed)
        cs_log(CS_LOG_INFO, "console", "grant %s %s by %s", r->params[0],
               pause ? "paused" : "resumed", k.actor);
    return console_done(&k, "/console/grants");
}

enum MHD_Result console_grant_pause(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    return grant_switch(r, c, d, true);
}

enum MHD_Result console_grant_resume(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    return grant_switch(r, c, d, false);
}
