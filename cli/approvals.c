/*
 * approvals.c -- operator commands on approvals and the audit log
 * (see cli.h for conventions). Votes go through cs_approval_vote(), the
 * same function the approval pages call: no rule is restated here.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cs_approval.h"
#include "cs_audit.h"
#include "cs_batch.h"
#include "cs_json.h"
#include "cs_link.h"
#include "cs_mem.h"
#include "cs_session.h"

static int approval_show(struct cli_ctx *c, const char *id)
{
    char err[CS_ERRLEN];
    json_object *o = NULL;
    enum cs_status st;
    enum cs_err rc = cs_approval_status(c->db, id, NULL, &o, &st, err);
    if (rc)
        return cli_fail(rc, err);
    printf("%s\n", cs_json_text(o, NULL));
    json_object_put(o);
    return 0;
}

/*
 * Prints, one JSON line per approver slot of res, a fresh one-time sign-in
 * link for whoever holds the slot now (the approver or their delegate),
 * leading to `path` (the approval's or batch's page). The columns of res
 * at slot_col, holder_col, name_col. Links are not credentials to vote:
 * whoever spends one must still be an approver of the request.
 */
static enum cs_err print_signin_links(struct cli_ctx *c, const PGresult *res, int slot_col,
                                      int holder_col, int name_col, const char *path, char *err)
{
    for (int r = 0; r < PQntuples(res); r++) {
        char *url = NULL;
        enum cs_err rc = cs_signin_link_mint(c->db, c->cfg, cs_db_str(res, r, holder_col), path,
                                             "operator", &url, err);
        if (rc == CS_ERR_NOT_APPROVER)
            continue; /* a disabled holder gets no link */
        if (rc)
            return rc;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "approver_id",
                               json_object_new_string(cs_db_str(res, r, slot_col)));
        json_object_object_add(o, "approver", json_object_new_string(cs_db_str(res, r, name_col)));
        json_object_object_add(o, "voter_id",
                               json_object_new_string(cs_db_str(res, r, holder_col)));
        json_object_object_add(o, "url", json_object_new_string(url));
        printf("%s\n", cs_json_text(o, NULL));
        json_object_put(o);
        cs_wipe(url, strlen(url));
        cs_free(url);
    }
    return CS_OK;
}

static int approval_links(struct cli_ctx *c, const char *id)
{
    char err[CS_ERRLEN], path[CS_LINK_PATH_MAX];
    enum cs_err rc = cs_config_require_master_key(c->cfg, err);
    if (rc)
        return cli_fail(rc, err);
    if (!cs_uuid_valid(id))
        return cli_fail(CS_ERR_INVALID, "the approval id must be a UUID");
    const char *p[] = {id};
    PGresult *res = NULL;
    if ((rc = cs_db_exec(c->db, CS_DB_Q(APPROVAL_LINKS, p), &res, err)))
        return cli_fail(rc, err);
    if (PQntuples(res) > 0) {
        struct cs_link_keys keys;
        cs_link_keys_derive(c->cfg->master_key, &keys);
        cs_link_approval_path(&keys, id, cs_db_int(res, 0, CSC_APPROVAL_LINKS_EXPIRES_MS), path);
        cs_link_keys_wipe(&keys);
        rc = print_signin_links(c, res, CSC_APPROVAL_LINKS_APPROVER, CSC_APPROVAL_LINKS_HOLDER,
                                CSC_APPROVAL_LINKS_NAME, path, err);
    }
    PQclear(res);
    return rc ? cli_fail(rc, err) : 0;
}

static int approval_vote(struct cli_ctx *c, const char *id, bool approve)
{
    static const char *const known[] = {"as", "reason", NULL};
    if (!args_only(c->args, known))
        return 2;
    const char *as = args_get(c->args, "as"), *reason = args_get(c->args, "reason");
    if (!as || (!approve && !reason)) {
        fprintf(stderr, "countersign: approval %s ID --as APPROVER%s\n",
                approve ? "approve" : "deny", approve ? " [--reason TEXT]" : " --reason TEXT");
        return 2;
    }
    char err[CS_ERRLEN];
    struct cs_vote_outcome out;
    enum cs_err rc = cs_approval_operator_vote(c->db, id, as, NULL, approve, reason, &out, err);
    if (rc)
        return cli_fail(rc, err);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "approval_id", json_object_new_string(id));
    json_object_object_add(o, "status", json_object_new_string(cs_status_name(out.status)));
    json_object_object_add(o, "approvals_received", json_object_new_int(out.approvals));
    json_object_object_add(o, "approvals_required", json_object_new_int(out.quorum));
    return cli_print_json(o);
}

static int audit_verify(struct cli_ctx *c)
{
    char err[CS_ERRLEN];
    struct cs_audit_report r;
    enum cs_err rc = cs_audit_verify_cfg(c->db, c->cfg, &r, err);
    if (rc)
        return cli_fail(rc, err);
    cli_print_json(cs_audit_report_json(&r));
    return r.ok ? 0 : 1;
}

/* audit_export / audit_tail print rows as JSON lines. */
/* audit_tail and audit_export take two parameters and start with the entry's id. */
_Static_assert((int)CSP_AUDIT_TAIL == 2 && (int)CSP_AUDIT_EXPORT == 2 &&
                   (int)CSC_AUDIT_TAIL_ID == (int)CSC_AUDIT_EXPORT_ID,
               "audit_tail and audit_export differ");

static int audit_rows(struct cli_ctx *c, bool export)
{
    static const char *const known[] = {"limit", "approval", "after", NULL};
    if (!args_only(c->args, known))
        return 2;
    bool ok = true;
    long limit = args_int(c->args, "limit", 50, 1, 100000, &ok);
    long after = args_int(c->args, "after", 0, 0, INT64_MAX > LONG_MAX ? LONG_MAX : INT64_MAX, &ok);
    if (!ok)
        return 2;
    char err[CS_ERRLEN], lim[24], aft[24];
    snprintf(lim, sizeof(lim), "%ld", export ? 5000 : limit);
    const char *approval = args_get(c->args, "approval");
    if (approval && !cs_uuid_valid(approval))
        return cli_fail(CS_ERR_INVALID, "--approval must be a UUID");
    for (;;) {
        snprintf(aft, sizeof(aft), "%ld", after);
        const char *tp[] = {lim, approval}, *ep[] = {aft, lim};
        PGresult *res = NULL;
        enum cs_err rc = cs_db_exec(c->db, export ? CSQ_AUDIT_EXPORT : CSQ_AUDIT_TAIL,
                                    CSP_AUDIT_TAIL, export ? ep : tp, &res, err);
        if (rc)
            return cli_fail(rc, err);
        int n = PQntuples(res);
        for (int r = 0; r < n; r++) {
            json_object *o = json_object_new_object();
            for (int f = 0; f < PQnfields(res); f++) {
                const char *v = cs_db_str(res, r, f), *name = PQfname(res, f);
                json_object *val = NULL;
                if (v && !strcmp(name, "detail") && cs_json_parse(v, strlen(v), &val, err) != CS_OK)
                    val = NULL;
                else if (v && strcmp(name, "detail"))
                    val = json_object_new_string(v);
                json_object_object_add(o, name, val);
            }
            printf("%s\n", cs_json_text(o, NULL));
            json_object_put(o);
            after = (long)cs_db_int(res, r, CSC_AUDIT_TAIL_ID);
        }
        PQclear(res);
        if (!export || n == 0)
            return 0;
    }
}

/* `batch show|links AGENT BATCH_ID`: the batch's status, or each approver's batch link. */
static int batch_cmd(struct cli_ctx *c, const char *verb, const char *agent, const char *id)
{
    char err[CS_ERRLEN];
    const char *ap[] = {agent};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(c->db, CS_DB_Q(AGENT_BY_NAME, ap), &res, err);
    if (!rc && PQntuples(res) == 0)
        rc = cs_err_set(err, CS_ERR_UNKNOWN_AGENT, "no agent by that name");
    char agent_id[CS_UUID_STRLEN + 1] = "";
    if (!rc)
        cs_strlcpy(agent_id, cs_db_str(res, 0, CSC_AGENT_BY_NAME_ID), sizeof(agent_id));
    PQclear(res);
    json_object *st = NULL;
    if (!rc)
        rc = cs_batch_status(c->db, agent_id, id, &st, err);
    if (rc)
        return cli_fail(rc, err);
    if (!strcmp(verb, "show")) {
        printf("%s\n", cs_json_text(st, NULL));
        json_object_put(st);
        return 0;
    }
    json_object *uid = NULL;
    json_object_object_get_ex(st, "batch_uid", &uid);
    if ((rc = cs_config_require_master_key(c->cfg, err))) {
        json_object_put(st);
        return cli_fail(rc, err);
    }
    const char *lp[] = {json_object_get_string(uid)};
    rc = cs_db_exec(c->db, CS_DB_Q(BATCH_LINKS, lp), &res, err);
    if (!rc && PQntuples(res) > 0) {
        char path[CS_LINK_PATH_MAX];
        struct cs_link_keys keys;
        cs_link_keys_derive(c->cfg->master_key, &keys);
        cs_link_batch_path(&keys, json_object_get_string(uid),
                           cs_db_int(res, 0, CSC_BATCH_LINKS_EXPIRES_MS), path);
        cs_link_keys_wipe(&keys);
        rc = print_signin_links(c, res, CSC_BATCH_LINKS_SLOT, CSC_BATCH_LINKS_HOLDER,
                                CSC_BATCH_LINKS_NAME, path, err);
    }
    PQclear(res);
    json_object_put(st);
    return rc ? cli_fail(rc, err) : 0;
}

/* Returns -1 when noun/verb is not an approvals or audit command. */
int approvals_main(struct cli_ctx *c, const char *noun, const char *verb)
{
    const char *arg = c->args->npos > 0 ? c->args->pos[0] : NULL;
    if (!strcmp(noun, "approval")) {
        if (!strcmp(verb, "list")) {
            static const char *const known[] = {"status", "limit", NULL};
            bool ok = args_only(c->args, known);
            long limit = args_int(c->args, "limit", 50, 1, 10000, &ok);
            if (!ok)
                return 2;
            char lim[24], err[CS_ERRLEN];
            snprintf(lim, sizeof(lim), "%ld", limit);
            const char *p[] = {args_get(c->args, "status"), lim};
            PGresult *res = NULL;
            enum cs_err rc = cs_db_exec(c->db, CS_DB_Q(APPROVAL_LIST, p), &res, err);
            if (rc)
                return cli_fail(rc, err);
            for (int r = 0; r < PQntuples(res); r++)
                for (int f = 0; f < PQnfields(res); f++)
                    printf("%s%c", cs_db_str(res, r, f) ? cs_db_str(res, r, f) : "-",
                           f + 1 == PQnfields(res) ? '\n' : '\t');
            PQclear(res);
            return 0;
        }
        if (!strcmp(verb, "show") && arg)
            return approval_show(c, arg);
        if (!strcmp(verb, "links") && arg)
            return approval_links(c, arg);
        if ((!strcmp(verb, "approve") || !strcmp(verb, "deny")) && arg)
            return approval_vote(c, arg, !strcmp(verb, "approve"));
        if (!strcmp(verb, "cancel") && arg) {
            static const char *const known[] = {"reason", NULL};
            if (!args_only(c->args, known))
                return 2;
            char err[CS_ERRLEN];
            enum cs_err rc = cs_approval_cancel(c->db, arg, NULL, "operator:cli",
                                                args_get(c->args, "reason"), err);
            return rc ? cli_fail(rc, err) : approval_show(c, arg);
        }
    } else if (!strcmp(noun, "batch")) {
        if ((!strcmp(verb, "show") || !strcmp(verb, "links")) && c->args->npos == 2)
            return batch_cmd(c, verb, c->args->pos[0], c->args->pos[1]);
    } else if (!strcmp(noun, "audit")) {
        if (!strcmp(verb, "verify"))
            return audit_verify(c);
        if (!strcmp(verb, "tail"))
            return audit_rows(c, false);
        if (!strcmp(verb, "export"))
            return audit_rows(c, true);
    } else {
        return -1;
    }
    fprintf(stderr, "countersign: bad or incomplete \"%s %s\" command (try --help)\n", noun, verb);
    return 2;
}
