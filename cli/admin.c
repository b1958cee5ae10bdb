/*
 * admin.c -- operator commands for agents, API keys, approvers,
 * delegations, policies and grants (see cli.h for conventions).
 *
 * Argument parsing only: the actions are lib/cs_admin.c, shared with the
 * admin API. Grant secrets are read from a file or stdin, never argv.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cs_admin.h"
#include "cs_link.h"
#include "cs_crypto.h"
#include "cs_json.h"
#include "cs_mem.h"
#include "cs_session.h"

#define SECRET_MAX 65536

/* Prints every row of res tab-separated (NULL as "-"). */
static void print_rows(const PGresult *res)
{
    for (int r = 0; r < PQntuples(res); r++)
        for (int f = 0; f < PQnfields(res); f++)
            printf("%s%c", cs_db_str(res, r, f) ? cs_db_str(res, r, f) : "-",
                   f + 1 == PQnfields(res) ? '\n' : '\t');
}

static int list(struct cli_ctx *c, enum cs_query q, int n, const char *const *p)
{
    char err[CS_ERRLEN];
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(c->db, q, n, p, &res, err);
    if (rc)
        return cli_fail(rc, err);
    print_rows(res);
    PQclear(res);
    return 0;
}

/* ---- agents and keys ---- */

static int print_id(const char *key, const char *id, const char *name_key, const char *name)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, key, json_object_new_string(id));
    if (name_key)
        json_object_object_add(o, name_key, json_object_new_string(name));
    return cli_print_json(o);
}

static int agent_create(struct cli_ctx *c, const char *name)
{
    char id[CS_UUID_STRLEN + 1], err[CS_ERRLEN];
    enum cs_err rc = cs_admin_agent_create(c->db, name, id, err);
    return rc ? cli_fail(rc, err) : print_id("agent_id", id, "name", name);
}

static int key_create(struct cli_ctx *c, const char *agent)
{
    static const char *const known[] = {"scopes", NULL};
    if (!args_only(c->args, known))
        return 2;
    char key[CS_API_KEY_LEN + 1], id[CS_UUID_STRLEN + 1], prefix[16], err[CS_ERRLEN];
    enum cs_err rc =
        cs_admin_key_create(c->db, agent, args_get(c->args, "scopes"), key, id, prefix, err);
    if (rc)
        return cli_fail(rc, err);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "key_id", json_object_new_string(id));
    json_object_object_add(o, "agent", json_object_new_string(agent));
    json_object_object_add(o, "prefix", json_object_new_string(prefix));
    json_object_object_add(o, "api_key", json_object_new_string(key));
    cs_wipe(key, sizeof(key));
    fprintf(stderr, "countersign: store this API key now; it is not shown again\n");
    return cli_print_json(o);
}

/*
 * agent key create|rotate NAME: a new envelope-signing key, printed once
 * (cs_admin_signing_key_create).
 */
static int signing_key_create(struct cli_ctx *c, const char *agent, bool rotate)
{
    static const char *const known[] = {"overlap", NULL}, *const none[] = {NULL};
    if (!args_only(c->args, rotate ? known : none))
        return 2;
    char kid[CS_ENVSIG_KID_LEN + 1], secret[CS_ENVSIG_SECRET_LEN + 1], err[CS_ERRLEN];
    bool ok = true;
    long overlap = args_int(c->args, "overlap", 86400, 0, 2592000, &ok);
    if (!ok)
        return 2;
    enum cs_err rc = cs_config_require_master_key(c->cfg, err);
    if (!rc)
        rc = cs_admin_signing_key_create(c->db, c->cfg->master_key, agent,
                                         rotate ? (int)overlap : -1, kid, secret, err);
    if (rc)
        return cli_fail(rc, err);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "key_id", json_object_new_string(kid));
    json_object_object_add(o, "agent", json_object_new_string(agent));
    json_object_object_add(o, "secret", json_object_new_string(secret));
    cs_wipe(secret, sizeof(secret));
    fprintf(stderr, "countersign: store this signing secret now; it is not shown again\n");
    return cli_print_json(o);
}

/* agent key ...: the envelope-signing keys. */
static int signing_key(struct cli_ctx *c)
{
    const struct cli_args *a = c->args;
    const char *verb = a->npos > 0 ? a->pos[0] : "", *arg = a->npos > 1 ? a->pos[1] : NULL;
    if (!strcmp(verb, "create") && arg && a->npos == 2)
        return signing_key_create(c, arg, false);
    if (!strcmp(verb, "rotate") && arg && a->npos == 2)
        return signing_key_create(c, arg, true);
    if (!strcmp(verb, "list") && a->npos <= 2) {
        const char *p[] = {arg};
        return list(c, CSQ_SIGNING_KEY_LIST, CSP_SIGNING_KEY_LIST, p);
    }
    if (!strcmp(verb, "revoke") && arg && a->npos == 2) {
        const char *p[] = {arg};
        return list(c, CSQ_SIGNING_KEY_REVOKE, CSP_SIGNING_KEY_REVOKE, p);
    }
    fprintf(stderr, "countersign: agent key create|rotate NAME, list [NAME] or revoke KEY_ID\n");
    return 2;
}

/* ---- approvers and delegations ---- */

static int approver_create(struct cli_ctx *c, const char *name)
{
    static const char *const known[] = {"email", "webhook", "slack", "agent", "oidc-subject", NULL};
    if (!args_only(c->args, known))
        return 2;
    char id[CS_UUID_STRLEN + 1], err[CS_ERRLEN];
    struct cs_approver_spec s = {name,
                                 args_get(c->args, "email"),
                                 args_get(c->args, "webhook"),
                                 args_get(c->args, "slack"),
                                 args_get(c->args, "agent"),
                                 args_get(c->args, "oidc-subject")};
    enum cs_err rc = cs_admin_approver_create(c->db, &s, id, err);
    return rc ? cli_fail(rc, err) : print_id("approver_id", id, "name", name);
}

/*
 * Prints a one-time sign-in link for approver NAME (to hand over through a
 * channel of theirs): it leads to --next PATH, by default their inbox.
 */
static int signin_link(struct cli_ctx *c, const char *name)
{
    static const char *const known[] = {"next", NULL};
    if (!args_only(c->args, known))
        return 2;
    const char *next = args_get(c->args, "next") ? args_get(c->args, "next") : "/inbox";
    char err[CS_ERRLEN];
    const char *p[] = {name};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(c->db, CS_DB_Q(APPROVER_BY_NAME, p), &res, err);
    if (rc)
        return cli_fail(rc, err);
    if (PQntuples(res) == 0) {
        PQclear(res);
        return cli_fail(CS_ERR_NOT_FOUND, "no enabled approver by that name");
    }
    char *url = NULL;
    rc = cs_signin_link_mint(c->db, c->cfg, cs_db_str(res, 0, CSC_APPROVER_BY_NAME_ID), next,
                             "operator", &url, err);
    PQclear(res);
    if (rc)
        return cli_fail(rc, err);
    int status = print_id("url", url, "approver", name);
    cs_wipe(url, strlen(url));
    cs_free(url);
    return status;
}

/* Grants approver NAME the operator console role read|write, or takes it away (none). */
static int approver_set(struct cli_ctx *c, const char *name)
{
    static const char *const known[] = {"operator", NULL};
    if (!args_only(c->args, known))
        return 2;
    const char *role = args_get(c->args, "operator");
    int r = cs_operator_role_parse(role);
    if (!role || r < 0)
        return cli_fail(CS_ERR_INVALID, "--operator read|write|none is required");
    const char *p[] = {name, cs_operator_role_name((enum cs_operator_role)r), "operator:cli"};
    PGresult *res = NULL;
    char err[CS_ERRLEN];
    enum cs_err rc = cs_db_exec(c->db, CS_DB_Q(APPROVER_SET_OPERATOR, p), &res, err);
    if (!rc && PQntuples(res) != 1)
        rc = cs_err_set(err, CS_ERR_NOT_FOUND, "no approver by that name");
    PQclear(res);
    if (rc)
        return cli_fail(rc, err);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "approver", json_object_new_string(name));
    json_object_object_add(o, "operator", json_object_new_string(r ? role : "none"));
    return cli_print_json(o);
}

/* Revokes passkey ID of approver NAME (a lost device). */
static int passkey_revoke(struct cli_ctx *c, const char *name, const char *id)
{
    if (!cs_uuid_valid(id))
        return cli_fail(CS_ERR_INVALID, "the passkey id must be a UUID (approver passkeys NAME)");
    const char *p[] = {id, NULL, name, "operator:cli"};
    char err[CS_ERRLEN];
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(c->db, CS_DB_Q(PASSKEY_REVOKE, p), &res, err);
    if (!rc && PQntuples(res) != 1)
        rc = cs_err_set(err, CS_ERR_NOT_FOUND, "no live passkey %s of approver %s", id, name);
    PQclear(res);
    return rc ? cli_fail(rc, err) : print_id("passkey_id", id, "revoked_for", name);
}

/* Signs approver NAME out everywhere (e.g. a lost laptop). */
static int revoke_sessions(struct cli_ctx *c, const char *name)
{
    char err[CS_ERRLEN];
    long n = 0;
    enum cs_err rc = cs_session_revoke_approver(c->db, name, "operator:cli", &n, err);
    if (rc)
        return cli_fail(rc, err);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "approver", json_object_new_string(name));
    json_object_object_add(o, "sessions_revoked", json_object_new_int64(n));
    return cli_print_json(o);
}

static int delegate(struct cli_ctx *c, const char *approver, const char *delegate_name)
{
    static const char *const known[] = {"from", "until", NULL};
    if (!args_only(c->args, known))
        return 2;
    const char *until = args_get(c->args, "until");
    if (!approver || !delegate_name || !until) {
        fprintf(stderr, "countersign: delegate APPROVER DELEGATE --until TIME [--from TIME]\n");
        return 2;
    }
    char id[CS_UUID_STRLEN + 1], err[CS_ERRLEN];
    enum cs_err rc = cs_admin_delegate(c->db, approver, delegate_name, args_get(c->args, "from"),
                                       until, id, err);
    return rc ? cli_fail(rc, err) : print_id("delegation_id", id, NULL, NULL);
}

/* ---- policies ---- */

static char *read_arg_or_file(const char *v, char *err)
{
    if (v[0] != '@')
        return cs_strdup(v);
    FILE *f = fopen(v + 1, "r");
    if (!f) {
        cs_err_set(err, CS_ERR_INVALID, "cannot open %s", v + 1);
        return NULL;
    }
    char *buf = cs_malloc(SECRET_MAX + 1);
    size_t n = fread(buf, 1, SECRET_MAX, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Splits a comma-separated list in place into at most CLI_MAX_ARGS items. */
static int split(char *list, const char **out)
{
    int n = 0;
    for (char *save = NULL, *a = strtok_r(list, ",", &save); a && n < CLI_MAX_ARGS;
         a = strtok_r(NULL, ",", &save))
        out[n++] = a;
    return n;
}

static int policy_set(struct cli_ctx *c, const char *id)
{
    static const char *const known[] = {
        "mode",           "rules",           "quorum",    "approvers",     "escalation",
        "window",         "timeout",         "attempts",  "amount-field",  "remind",
        "escalate-after", "require-passkey", "link-mode", "link-lifetime", NULL};
    if (!args_only(c->args, known))
        return 2;
    bool ok = true;
    struct cs_policy_spec s = {.id = id, .mode = args_get(c->args, "mode")};
    s.quorum = (int)args_int(c->args, "quorum", 1, 1, 100, &ok);
    s.window_seconds = (int)args_int(c->args, "window", 3600, 1, 2592000, &ok);
    s.exec_timeout_ms = (int)args_int(c->args, "timeout", 30000, 100, 600000, &ok);
    s.max_attempts = (int)args_int(c->args, "attempts", 3, 1, 20, &ok);
    s.reminder_interval_s = (int)args_int(c->args, "remind", 0, 1, 2592000, &ok);
    s.escalate_after_s = (int)args_int(c->args, "escalate-after", 0, 1, 2592000, &ok);
    s.amount_field = args_get(c->args, "amount-field");
    s.require_passkey = args_has(c->args, "require-passkey");
    const char *link_mode = args_get(c->args, "link-mode");
    if (link_mode && strcmp(link_mode, "signin") && strcmp(link_mode, "semi-public")) {
        fprintf(stderr, "countersign: --link-mode is signin or semi-public\n");
        return 2;
    }
    if (link_mode && !strcmp(link_mode, "semi-public"))
        s.link_lifetime_s = (int)args_int(c->args, "link-lifetime", 900, 60, 86400, &ok);
    if (!ok)
        return 2;
    char err[CS_ERRLEN];
    const char *rules_arg = args_get(c->args, "rules");
    char *rules_text = rules_arg ? read_arg_or_file(rules_arg, err) : NULL;
    if (rules_arg && !rules_text)
        return cli_fail(CS_ERR_INVALID, err);
    enum cs_err rc =
        rules_text ? cs_json_parse(rules_text, strlen(rules_text), &s.rules, err) : CS_OK;
    cs_free(rules_text);
    const char *approvers[CLI_MAX_ARGS], *escalation[CLI_MAX_ARGS];
    char *a1 = cs_strdup(args_get(c->args, "approvers") ? args_get(c->args, "approvers") : "");
    char *a2 = cs_strdup(args_get(c->args, "escalation") ? args_get(c->args, "escalation") : "");
    s.approvers = approvers;
    s.napprovers = split(a1, approvers);
    s.escalation = escalation;
    s.nescalation = split(a2, escalation);
    if (!rc)
        rc = cs_admin_policy_set(c->db, &s, err);
    json_object_put(s.rules);
    cs_free(a1);
    cs_free(a2);
    return rc ? cli_fail(rc, err) : print_id("policy_id", id, NULL, NULL);
}

/* ---- grants ---- */

static unsigned char *read_secret(struct cli_ctx *c, size_t *len, char *err)
{
    const char *file = args_get(c->args, "secret-file");
    bool from_stdin = args_has(c->args, "secret-stdin");
    if (!!file == from_stdin) {
        cs_err_set(err, CS_ERR_INVALID, "give exactly one of --secret-file PATH or --secret-stdin");
        return NULL;
    }
    FILE *f = from_stdin ? stdin : fopen(file, "r");
    if (!f) {
        cs_err_set(err, CS_ERR_INVALID, "cannot open the secret file");
        return NULL;
    }
    unsigned char *buf = cs_malloc(SECRET_MAX + 1);
    size_t n = fread(buf, 1, SECRET_MAX + 1, f);
    if (!from_stdin)
        fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n < SECRET_MAX ? n : SECRET_MAX] = '\0';
    *len = n;
    return buf;
}

/* "--rate 50/s" (or 50, 0.5/s); false after saying why. */
static bool parse_rate(const char *v, double *out)
{
    *out = 0;
    if (!v)
        return true;
    char *end = NULL;
    double r = strtod(v, &end);
    if (end != v && (!strcmp(end, "") || !strcmp(end, "/s")) && r > 0 && r <= 100000) {
        *out = r;
        return true;
    }
    fprintf(stderr, "countersign: --rate is calls per second, e.g. 50/s or 0.5/s (at most "
                    "100000)\n");
    return false;
}

static int grant_set(struct cli_ctx *c, const char *id)
{
    static const char *const known[] = {"policy",
                                        "allow",
                                        "agents",
                                        "inject",
                                        "header",
                                        "idempotency-keys",
                                        "secret-file",
                                        "secret-stdin",
                                        "rate",
                                        "burst",
                                        "max-in-flight",
                                        "deadline",
                                        "in-progress-pattern",
                                        NULL};
    if (!args_only(c->args, known))
        return 2;
    char err[CS_ERRLEN];
    enum cs_err rc = cs_config_require_master_key(c->cfg, err);
    if (rc)
        return cli_fail(rc, err);
    const char *bases[CLI_MAX_ARGS], *agents[CLI_MAX_ARGS];
    struct cs_grant_spec s = {.id = id,
                              .policy_id = args_get(c->args, "policy"),
                              .inject = args_get(c->args, "inject"),
                              .inject_header = args_get(c->args, "header"),
                              .bases = bases,
                              .agents = agents,
                              .idempotency_keys = args_has(c->args, "idempotency-keys")};
    for (int i = 0; i < c->args->nopt; i++)
        if (!strcmp(c->args->opt_name[i], "allow"))
            bases[s.nbases++] = c->args->opt_value[i];
    bool ok = parse_rate(args_get(c->args, "rate"), &s.rate_per_s);
    s.burst = (int)args_int(c->args, "burst", 0, 1, 100000, &ok);
    s.max_in_flight = (int)args_int(c->args, "max-in-flight", 0, 1, 10000, &ok);
    s.exec_deadline_s = (int)args_int(c->args, "deadline", 0, 1, 604800, &ok);
    s.in_progress_pattern = args_get(c->args, "in-progress-pattern");
    if (!ok)
        return 2;
    char *names = cs_strdup(args_get(c->args, "agents") ? args_get(c->args, "agents") : "");
    s.nagents = split(names, agents);
    size_t len = 0;
    unsigned char *secret = read_secret(c, &len, err);
    if (!secret)
        rc = CS_ERR_INVALID;
    s.secret = secret;
    s.secret_len = len;
    if (!rc)
        rc = cs_admin_grant_set(c->db, c->cfg->master_key, &s, err);
    if (secret)
        cs_wipe(secret, SECRET_MAX + 1);
    cs_free(secret);
    cs_free(names);
    return rc ? cli_fail(rc, err) : print_id("grant_id", id, NULL, NULL);
}

static int grant_simple(struct cli_ctx *c, enum cs_query q, const char *id, const char *arg,
                        const char *what)
{
    char err[CS_ERRLEN];
    const char *p[] = {id, arg};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(c->db, q, arg ? 2 : 1, p, &res, err);
    if (!rc && PQntuples(res) == 0)
        rc = cs_err_set(err, CS_ERR_NOT_FOUND, "%s", what);
    PQclear(res);
    return rc ? cli_fail(rc, err) : print_id("grant_id", id, NULL, NULL);
}

static int grant_allow(struct cli_ctx *c, const char *id)
{
    char err[CS_ERRLEN];
    enum cs_err rc = cs_admin_grant_bases(c->db, id, c->args->pos, c->args->npos, err);
    return rc ? cli_fail(rc, err) : print_id("grant_id", id, NULL, NULL);
}

static int grant_pause(struct cli_ctx *c, const char *id, bool pause)
{
    char err[CS_ERRLEN];
    bool changed = false;
    enum cs_err rc = pause ? cs_grant_pause(c->db, id, "operator:cli", &changed, err)
                           : cs_grant_resume(c->db, id, "operator:cli", &changed, err);
    if (rc)
        return cli_fail(rc, err);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "grant_id", json_object_new_string(id));
    json_object_object_add(o, "paused", json_object_new_boolean(pause));
    json_object_object_add(o, "changed", json_object_new_boolean(changed));
    return cli_print_json(o);
}

/* Returns -1 when noun/verb is not an admin command. */
int admin_main(struct cli_ctx *c, const char *noun, const char *verb)
{
    const struct cli_args *a = c->args;
    const char *arg = a->npos > 0 ? a->pos[0] : NULL, *arg2 = a->npos > 1 ? a->pos[1] : NULL;
    if (!strcmp(noun, "agent")) {
        if (!strcmp(verb, "create") && arg)
            return agent_create(c, arg);
        if (!strcmp(verb, "list"))
            return list(c, CS_DB_Q0(AGENT_LIST));
        if (!strcmp(verb, "disable") && arg) {
            const char *p[] = {arg};
            return list(c, CS_DB_Q(AGENT_DISABLE, p));
        }
        if (!strcmp(verb, "key"))
            return signing_key(c);
    } else if (!strcmp(noun, "key")) {
        if (!strcmp(verb, "create") && arg)
            return key_create(c, arg);
        if (!strcmp(verb, "list")) {
            const char *p[] = {arg};
            return list(c, CS_DB_Q(API_KEY_LIST, p));
        }
        if (!strcmp(verb, "revoke") && arg) {
            const char *p[] = {arg};
            return list(c, CS_DB_Q(API_KEY_REVOKE, p));
        }
    } else if (!strcmp(noun, "approver")) {
        if (!strcmp(verb, "create") && arg)
            return approver_create(c, arg);
        if (!strcmp(verb, "list"))
            return list(c, CS_DB_Q0(APPROVER_LIST));
        if (!strcmp(verb, "signin-link") && arg)
            return signin_link(c, arg);
        if (!strcmp(verb, "set") && arg)
            return approver_set(c, arg);
        if (!strcmp(verb, "sessions") && arg) {
            const char *p[] = {arg};
            return list(c, CS_DB_Q(SESSION_LIST, p));
        }
        if (!strcmp(verb, "revoke-sessions") && arg)
            return revoke_sessions(c, arg);
        if (!strcmp(verb, "passkeys") && arg) {
            const char *p[] = {NULL, arg};
            return list(c, CS_DB_Q(PASSKEY_LIST, p));
        }
        if (!strcmp(verb, "passkey") && arg && !strcmp(arg, "revoke") && c->args->npos == 3)
            return passkey_revoke(c, c->args->pos[1], c->args->pos[2]);
    } else if (!strcmp(noun, "delegate")) {
        return delegate(c, verb[0] ? verb : NULL, arg);
    } else if (!strcmp(noun, "policy")) {
        if (!strcmp(verb, "set") && arg)
            return policy_set(c, arg);
        if (!strcmp(verb, "list"))
            return list(c, CS_DB_Q0(POLICY_LIST));
    } else if (!strcmp(noun, "grant")) {
        if (!strcmp(verb, "set") && arg)
            return grant_set(c, arg);
        if (!strcmp(verb, "list"))
            return list(c, CS_DB_Q0(GRANT_LIST));
        if (!strcmp(verb, "bind") && arg && arg2)
            return grant_simple(c, CSQ_GRANT_BIND_AGENT, arg, arg2, "no agent by that name");
        if (!strcmp(verb, "unbind") && arg && arg2)
            return grant_simple(c, CSQ_GRANT_UNBIND_AGENT, arg, arg2, "not bound");
        if (!strcmp(verb, "disable") && arg)
            return grant_simple(c, CSQ_GRANT_DISABLE, arg, NULL, "no such grant");
        if ((!strcmp(verb, "pause") || !strcmp(verb, "resume")) && arg)
            return grant_pause(c, arg, !strcmp(verb, "pause"));
        if (!strcmp(verb, "allow") && arg) {
            c->args->npos--;
            memmove(c->args->pos, c->args->pos + 1,
                    sizeof(c->args->pos[0]) * (size_t)c->args->npos);
            return grant_allow(c, arg);
        }
    } else {
        return -1;
    }
    fprintf(stderr, "countersign: bad or incomplete \"%s %s\" command (try --help)\n", noun, verb);
    return 2;
}
