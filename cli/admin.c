/*
 * admin.c -- operator commands for agents, API keys, approvers,
 * delegations, policies and grants (see cli.h for conventions).
 *
 * Validation here is the same as the engine's (cs_policy_rules_validate,
 * cs_url_base_valid); the database's constraints are the last word.
 * Grant secrets are read from a file or stdin, never argv, and encrypted
 * before they leave this process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cs_catalog.h"
#include "cs_crypto.h"
#include "cs_json.h"
#include "cs_mem.h"
#include "cs_policy.h"
#include "cs_url.h"

#define SECRET_MAX 65536

/* Prints obj as one line and releases it. */
static int print_json(json_object *obj)
{
    printf("%s\n", cs_json_text(obj, NULL));
    json_object_put(obj);
    return 0;
}

/* Runs q expecting one row back; NOT_FOUND (with `what`) when none. */
static enum cs_err exec_one(struct cli_ctx *c, enum cs_query q, int n, const char *const *p,
                            PGresult **res, const char *what, char *err)
{
    enum cs_err rc = cs_db_exec(c->db, q, n, p, res, err);
    if (!rc && PQntuples(*res) == 0) {
        PQclear(*res);
        *res = NULL;
        rc = cs_err_set(err, CS_ERR_NOT_FOUND, "%s", what);
    }
    return rc;
}

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

static int agent_create(struct cli_ctx *c, const char *name)
{
    char id[CS_UUID_STRLEN + 1], err[CS_ERRLEN];
    PGresult *res = NULL;
    cs_uuid_v7(id);
    const char *p[] = {id, name};
    enum cs_err rc = cs_db_exec(c->db, CSQ_AGENT_CREATE, 2, p, &res, err);
    PQclear(res);
    if (rc)
        return cli_fail(rc, err);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "agent_id", json_object_new_string(id));
    json_object_object_add(o, "name", json_object_new_string(name));
    return print_json(o);
}

static int key_create(struct cli_ctx *c, const char *agent)
{
    unsigned char raw[32], hash[CS_SHA256_LEN];
    char key[3 + 44], hex[2 * CS_SHA256_LEN + 1], prefix[12], id[CS_UUID_STRLEN + 1],
        scopes[128], err[CS_ERRLEN];
    const char *s = args_get(c->args, "scopes");
    snprintf(scopes, sizeof(scopes), "{%s}", s ? s : "submit,read");
    cs_random_bytes(raw, sizeof(raw));
    memcpy(key, "cs_", 3);
    cs_b64_encode_to(raw, sizeof(raw), true, key + 3);
    cs_sha256(key, strlen(key), hash);
    cs_hex_encode(hash, sizeof(hash), hex);
    cs_strlcpy(prefix, key, sizeof(prefix));
    cs_uuid_v7(id);
    const char *p[] = {id, agent, hex, prefix, scopes};
    PGresult *res = NULL;
    enum cs_err rc = exec_one(c, CSQ_API_KEY_CREATE, 5, p, &res, "no enabled agent by that name",
                              err);
    PQclear(res);
    cs_wipe(raw, sizeof(raw));
    if (rc) {
        cs_wipe(key, sizeof(key));
        return cli_fail(rc, err);
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "key_id", json_object_new_string(id));
    json_object_object_add(o, "agent", json_object_new_string(agent));
    json_object_object_add(o, "prefix", json_object_new_string(prefix));
    json_object_object_add(o, "api_key", json_object_new_string(key));
    cs_wipe(key, sizeof(key));
    fprintf(stderr, "countersign: store this API key now; it is not shown again\n");
    return print_json(o);
}

/* ---- approvers and delegations ---- */

static int approver_create(struct cli_ctx *c, const char *name)
{
    static const char *const known[] = {"email", "webhook", "slack", "agent", NULL};
    if (!args_only(c->args, known))
        return 2;
    char id[CS_UUID_STRLEN + 1], err[CS_ERRLEN];
    const char *urls[] = {args_get(c->args, "webhook"), args_get(c->args, "slack")};
    for (int i = 0; i < 2; i++)
        if (urls[i] && cs_url_base_valid(urls[i], err) != CS_OK)
            return cli_fail(CS_ERR_INVALID, err);
    cs_uuid_v7(id);
    const char *p[] = {id, name, args_get(c->args, "email"), urls[0], urls[1],
                       args_get(c->args, "agent")};
    PGresult *res = NULL;
    enum cs_err rc = exec_one(c, CSQ_APPROVER_CREATE, 6, p, &res, "approver not created", err);
    bool agent_ok = !rc && cs_db_bool(res, 0, 1);
    PQclear(res);
    if (rc)
        return cli_fail(rc, err);
    if (!agent_ok)
        return cli_fail(CS_ERR_UNKNOWN_AGENT, "approver created, but no agent by the --agent name");
    json_object *o = json_object_new_object();
    json_object_object_add(o, "approver_id", json_object_new_string(id));
    json_object_object_add(o, "name", json_object_new_string(name));
    return print_json(o);
}

static int delegate(struct cli_ctx *c, const char *approver, const char *delegate_name)
{
    static const char *const known[] = {"from", "until", NULL};
    if (!args_only(c->args, known))
        return 2;
    const char *until = args_get(c->args, "until"), *from = args_get(c->args, "from");
    if (!approver || !delegate_name || !until) {
        fprintf(stderr, "countersign: delegate APPROVER DELEGATE --until TIME [--from TIME]\n");
        return 2;
    }
    char id[CS_UUID_STRLEN + 1], err[CS_ERRLEN];
    cs_uuid_v7(id);
    const char *p[] = {id, approver, delegate_name, from ? from : "now", until};
    PGresult *res = NULL;
    enum cs_err rc = exec_one(c, CSQ_DELEGATION_CREATE, 5, p, &res, "no approver by those names",
                              err);
    PQclear(res);
    if (rc)
        return cli_fail(rc, err);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "delegation_id", json_object_new_string(id));
    return print_json(o);
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

static int policy_set(struct cli_ctx *c, const char *id)
{
    static const char *const known[] = {"mode", "rules", "quorum", "approvers", "escalation",
                                        "window", "timeout", "attempts", "amount-field",
                                        "remind", "escalate-after", NULL};
    if (!args_only(c->args, known))
        return 2;
    bool ok = true;
    const char *mode = args_get(c->args, "mode"), *rules_arg = args_get(c->args, "rules");
    const char *approvers = args_get(c->args, "approvers");
    long quorum = args_int(c->args, "quorum", 1, 1, 100, &ok);
    long window = args_int(c->args, "window", 3600, 1, 2592000, &ok);
    long timeout = args_int(c->args, "timeout", 30000, 100, 600000, &ok);
    long attempts = args_int(c->args, "attempts", 3, 1, 20, &ok);
    long remind = args_int(c->args, "remind", 0, 60, 2592000, &ok);
    long escalate = args_int(c->args, "escalate-after", 0, 60, 2592000, &ok);
    if (!ok)
        return 2;
    char err[CS_ERRLEN];
    if (!mode || cs_policy_mode_parse(mode) < 0)
        return cli_fail(CS_ERR_INVALID, "--mode must be always, never or rules");
    char *rules_text = rules_arg ? read_arg_or_file(rules_arg, err) : cs_strdup("[]");
    if (!rules_text)
        return cli_fail(CS_ERR_INVALID, err);
    json_object *rules = NULL;
    enum cs_err rc = cs_json_parse(rules_text, strlen(rules_text), &rules, err);
    cs_free(rules_text);
    if (!rc)
        rc = cs_policy_rules_validate(rules, err);
    if (!rc && !strcmp(mode, "rules") && json_object_array_length(rules) == 0)
        rc = cs_err_set(err, CS_ERR_INVALID, "mode rules needs at least one rule (--rules)");
    int napprovers = 0;
    char *list_copy = cs_strdup(approvers ? approvers : "");
    for (char *save = NULL, *a = strtok_r(list_copy, ",", &save); a; a = strtok_r(NULL, ",", &save))
        napprovers++;
    cs_free(list_copy);
    if (!rc && strcmp(mode, "never") && quorum > napprovers)
        rc = cs_err_set(err, CS_ERR_POLICY,
                        "quorum %ld needs at least as many --approvers (got %d)", quorum,
                        napprovers);
    char q[16], w[16], t[16], at[16], rm[16], es[16];
    snprintf(q, sizeof(q), "%ld", quorum);
    snprintf(w, sizeof(w), "%ld", window);
    snprintf(t, sizeof(t), "%ld", timeout);
    snprintf(at, sizeof(at), "%ld", attempts);
    snprintf(rm, sizeof(rm), "%ld", remind);
    snprintf(es, sizeof(es), "%ld", escalate);
    const char *p[] = {id, mode, rules ? cs_json_text(rules, NULL) : "[]", q, w, t, at,
                       args_get(c->args, "amount-field"), remind ? rm : NULL,
                       escalate ? es : NULL};
    PGresult *res = NULL;
    if (!rc)
        rc = cs_db_begin(c->db, err);
    if (!rc)
        rc = cs_db_exec(c->db, CSQ_POLICY_UPSERT, 10, p, &res, err);
    PQclear(res);
    json_object_put(rules);
    if (!rc)
        rc = cs_db_exec(c->db, CSQ_POLICY_CLEAR_APPROVERS, 1, p, NULL, err);
    const char *tiers[] = {approvers, args_get(c->args, "escalation")};
    for (int tier = 0; tier < 2 && !rc; tier++) {
        char *names = cs_strdup(tiers[tier] ? tiers[tier] : "");
        for (char *save = NULL, *a = strtok_r(names, ",", &save); a && !rc;
             a = strtok_r(NULL, ",", &save)) {
            const char *ap[] = {id, a, tier ? "true" : "false"};
            rc = exec_one(c, CSQ_POLICY_ADD_APPROVER, 3, ap, &res, "no such approver", err);
            if (rc == CS_ERR_NOT_FOUND)
                cs_err_set(err, CS_ERR_NOT_FOUND, "no enabled approver named \"%s\"", a);
            PQclear(res);
        }
        cs_free(names);
    }
    if (!rc)
        rc = cs_db_commit(c->db, err);
    if (rc) {
        cs_db_rollback(c->db);
        return cli_fail(rc, err);
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "policy_id", json_object_new_string(id));
    return print_json(o);
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
    if (n == 0 || n > SECRET_MAX) {
        cs_wipe(buf, SECRET_MAX + 1);
        cs_free(buf);
        cs_err_set(err, CS_ERR_INVALID, "the secret must be 1..%d bytes", SECRET_MAX);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static json_object *bases_json(const char *const *list, int n, char *err, enum cs_err *rc)
{
    json_object *arr = json_object_new_array();
    for (int i = 0; i < n && !*rc; i++) {
        *rc = cs_url_base_valid(list[i], err);
        json_object_array_add(arr, json_object_new_string(list[i]));
    }
    if (!*rc && n == 0)
        *rc = cs_err_set(err, CS_ERR_INVALID, "at least one allowed base URL is required");
    return arr;
}

static int grant_set(struct cli_ctx *c, const char *id)
{
    static const char *const known[] = {"policy", "allow", "agents", "inject", "header",
                                        "idempotency-keys", "secret-file", "secret-stdin", NULL};
    if (!args_only(c->args, known))
        return 2;
    char err[CS_ERRLEN];
    enum cs_err rc = cs_config_require_master_key(c->cfg, err);
    if (rc)
        return cli_fail(rc, err);
    const char *inject = args_get(c->args, "inject") ? args_get(c->args, "inject") : "bearer";
    const char *header = args_get(c->args, "header"), *policy = args_get(c->args, "policy");
    if (cs_inject_parse(inject) < 0)
        return cli_fail(CS_ERR_INVALID, "--inject must be bearer, basic or header");
    if ((cs_inject_parse(inject) == CS_INJECT_HEADER) != (header != NULL))
        return cli_fail(CS_ERR_INVALID, "--header NAME goes with --inject header, and only with it");
    if (header && cs_header_forbidden(header))
        return cli_fail(CS_ERR_INVALID, "--header names a header Countersign manages");
    if (!policy)
        return cli_fail(CS_ERR_INVALID, "--policy is required");
    const char *bases[CLI_MAX_ARGS];
    int nbases = 0;
    for (int i = 0; i < c->args->nopt; i++)
        if (!strcmp(c->args->opt_name[i], "allow"))
            bases[nbases++] = c->args->opt_value[i];
    json_object *arr = bases_json(bases, nbases, err, &rc);
    size_t slen = 0, bloblen = 0;
    unsigned char *secret = rc ? NULL : read_secret(c, &slen, err), *blob = NULL;
    if (!rc && !secret)
        rc = CS_ERR_INVALID;
    char *hex = NULL;
    if (!rc) {
        cs_grant_seal_secret(c->cfg->master_key, id, secret, slen, &blob, &bloblen);
        cs_wipe(secret, slen);
        hex = cs_malloc(2 * bloblen + 1);
        cs_hex_encode(blob, bloblen, hex);
    }
    cs_free(secret);
    cs_free(blob);
    PGresult *res = NULL;
    const char *p[] = {id, hex, inject, header, cs_json_text(arr, NULL),
                       args_has(c->args, "idempotency-keys") ? "true" : "false", policy};
    if (!rc)
        rc = cs_db_begin(c->db, err);
    if (!rc)
        rc = cs_db_exec(c->db, CSQ_GRANT_UPSERT, 7, p, &res, err);
    PQclear(res);
    cs_free(hex);
    json_object_put(arr);
    const char *agents = args_get(c->args, "agents");
    char *names = cs_strdup(agents ? agents : "");
    for (char *save = NULL, *a = strtok_r(names, ",", &save); a && !rc;
         a = strtok_r(NULL, ",", &save)) {
        const char *bp[] = {id, a};
        rc = cs_db_exec(c->db, CSQ_GRANT_BIND_AGENT, 2, bp, NULL, err);
    }
    cs_free(names);
    if (!rc)
        rc = cs_db_commit(c->db, err);
    if (rc) {
        cs_db_rollback(c->db);
        return cli_fail(rc == CS_ERR_INVALID && strstr(err, "policy") ? CS_ERR_NOT_FOUND : rc, err);
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "grant_id", json_object_new_string(id));
    return print_json(o);
}

static int grant_simple(struct cli_ctx *c, enum cs_query q, const char *id, const char *arg,
                        const char *what)
{
    char err[CS_ERRLEN];
    const char *p[] = {id, arg};
    PGresult *res = NULL;
    enum cs_err rc = exec_one(c, q, arg ? 2 : 1, p, &res, what, err);
    PQclear(res);
    if (rc)
        return cli_fail(rc, err);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "grant_id", json_object_new_string(id));
    return print_json(o);
}

static int grant_allow(struct cli_ctx *c, const char *id)
{
    char err[CS_ERRLEN];
    enum cs_err rc = CS_OK;
    json_object *arr = bases_json(c->args->pos, c->args->npos, err, &rc);
    int status = rc ? cli_fail(rc, err)
                    : grant_simple(c, CSQ_GRANT_SET_BASES, id, cs_json_text(arr, NULL), "no such grant");
    json_object_put(arr);
    return status;
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
            return list(c, CSQ_AGENT_LIST, 0, NULL);
        if (!strcmp(verb, "disable") && arg) {
            const char *p[] = {arg};
            return list(c, CSQ_AGENT_DISABLE, 1, p);
        }
    } else if (!strcmp(noun, "key")) {
        if (!strcmp(verb, "create") && arg)
            return key_create(c, arg);
        if (!strcmp(verb, "list")) {
            const char *p[] = {arg};
            return list(c, CSQ_API_KEY_LIST, 1, p);
        }
        if (!strcmp(verb, "revoke") && arg) {
            const char *p[] = {arg};
            return list(c, CSQ_API_KEY_REVOKE, 1, p);
        }
    } else if (!strcmp(noun, "approver")) {
        if (!strcmp(verb, "create") && arg)
            return approver_create(c, arg);
        if (!strcmp(verb, "list"))
            return list(c, CSQ_APPROVER_LIST, 0, NULL);
    } else if (!strcmp(noun, "delegate")) {
        return delegate(c, verb[0] ? verb : NULL, arg);
    } else if (!strcmp(noun, "policy")) {
        if (!strcmp(verb, "set") && arg)
            return policy_set(c, arg);
        if (!strcmp(verb, "list"))
            return list(c, CSQ_POLICY_LIST, 0, NULL);
    } else if (!strcmp(noun, "grant")) {
        if (!strcmp(verb, "set") && arg)
            return grant_set(c, arg);
        if (!strcmp(verb, "list"))
            return list(c, CSQ_GRANT_LIST, 0, NULL);
        if (!strcmp(verb, "bind") && arg && arg2)
            return grant_simple(c, CSQ_GRANT_BIND_AGENT, arg, arg2, "no agent by that name");
        if (!strcmp(verb, "unbind") && arg && arg2)
            return grant_simple(c, CSQ_GRANT_UNBIND_AGENT, arg, arg2, "not bound");
        if (!strcmp(verb, "disable") && arg)
            return grant_simple(c, CSQ_GRANT_DISABLE, arg, NULL, "no such grant");
        if (!strcmp(verb, "allow") && arg) {
            c->args->npos--;
            memmove(c->args->pos, c->args->pos + 1, sizeof(c->args->pos[0]) * (size_t)c->args->npos);
            return grant_allow(c, arg);
        }
    } else {
        return -1;
    }
    fprintf(stderr, "countersign: bad or incomplete \"%s %s\" command (try --help)\n", noun, verb);
    return 2;
}
