/*
 * cs_policy.c -- policy rules: validation and evaluation (see cs_policy.h).
 * Pure functions: no I/O. Loading policies from Postgres is cs_catalog.c.
 */
#include "cs_policy.h"

#include <fnmatch.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "cs_json.h"
#include "cs_mem.h"

static const char *const mode_names[] = {"always", "never", "rules"};
static const char *const ops[] = {">", ">=", "<", "<=", "==", "!=", NULL};

int cs_policy_mode_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, mode_names[i]) == 0)
            return i;
    return -1;
}

const char *cs_policy_mode_name(enum cs_policy_mode m)
{
    return mode_names[m];
}

static bool is_number(json_object *v)
{
    return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

static enum cs_err validate_rule(json_object *r, int i, char *err)
{
    static const char *const keys[] = {"method", "path",  "path_ci",     "field",
                                       "op",     "value", "description", NULL};
    char inner[CS_ERRLEN];
    if (!json_object_is_type(r, json_type_object))
        return cs_err_set(err, CS_ERR_INVALID, "rule %d must be an object", i);
    if (cs_json_only_keys(r, keys, inner))
        return cs_err_set(err, CS_ERR_INVALID, "rule %d: %s", i, inner);
    /*
     * A key holding null is refused, not read as missing: evaluation sees
     * the key present (json_object_object_get_ex) and must never meet a
     * condition that validation did not check.
     */
    json_object_object_foreach(r, key, val)
    {
        if (val)
            continue;
        if (strcmp(key, "value") == 0)
            return cs_err_set(err, CS_ERR_INVALID,
                              "rule %d: \"value\" must be a number (or a string with == and !=)",
                              i);
        return cs_err_set(err, CS_ERR_INVALID, "rule %d: \"%s\" must not be null", i, key);
    }
    json_object *m = NULL, *v = NULL;
    if (json_object_object_get_ex(r, "method", &m)) {
        bool ok = json_object_is_type(m, json_type_string);
        if (json_object_is_type(m, json_type_array)) {
            ok = json_object_array_length(m) > 0;
            for (size_t k = 0; ok && k < json_object_array_length(m); k++)
                ok = json_object_is_type(json_object_array_get_idx(m, k), json_type_string);
        }
        if (!ok)
            return cs_err_set(err, CS_ERR_INVALID,
                              "rule %d: \"method\" must be a string or an array of strings", i);
    }
    const char *path = NULL, *field = NULL, *op = NULL;
    if (cs_json_str(r, "path", false, 512, &path, inner) ||
        cs_json_str(r, "field", false, 128, &field, inner) ||
        cs_json_str(r, "op", false, 2, &op, inner))
        return cs_err_set(err, CS_ERR_INVALID, "rule %d: %s", i, inner);
    bool ci = false;
    if (cs_json_bool(r, "path_ci", false, &ci, inner))
        return cs_err_set(err, CS_ERR_INVALID, "rule %d: %s", i, inner);
    if (json_object_object_get_ex(r, "path_ci", NULL) && !path)
        return cs_err_set(err, CS_ERR_INVALID, "rule %d: \"path_ci\" needs a \"path\"", i);
    bool has_value = json_object_object_get_ex(r, "value", &v);
    if (!!field != !!op || !!field != has_value)
        return cs_err_set(err, CS_ERR_INVALID,
                          "rule %d: \"field\", \"op\" and \"value\" go together", i);
    if (op) {
        int k = 0;
        while (ops[k] && strcmp(ops[k], op))
            k++;
        if (!ops[k])
            return cs_err_set(err, CS_ERR_INVALID,
                              "rule %d: \"op\" must be >, >=, <, <=, == or !=", i);
        bool eq = op[0] == '=' || op[0] == '!';
        if (!(is_number(v) || (eq && json_object_is_type(v, json_type_string))))
            return cs_err_set(err, CS_ERR_INVALID,
                              "rule %d: \"value\" must be a number (or a string with == and !=)",
                              i);
    }
    if (!path && !field && !m)
        return cs_err_set(err, CS_ERR_INVALID,
                          "rule %d has no condition (use mode \"always\" instead)", i);
    return CS_OK;
}

enum cs_err cs_policy_rules_validate(json_object *rules, char *err)
{
    if (!json_object_is_type(rules, json_type_array))
        return cs_err_set(err, CS_ERR_INVALID, "rules must be an array");
    if (json_object_array_length(rules) > 100)
        return cs_err_set(err, CS_ERR_INVALID, "at most 100 rules");
    for (size_t i = 0; i < json_object_array_length(rules); i++) {
        enum cs_err rc = validate_rule(json_object_array_get_idx(rules, i), (int)i, err);
        if (rc)
            return rc;
    }
    return CS_OK;
}

static bool method_matches(json_object *m, const char *method)
{
    if (!m)
        return true;
    if (json_object_is_type(m, json_type_string))
        return strcasecmp(json_object_get_string(m), method) == 0;
    for (size_t k = 0; k < json_object_array_length(m); k++)
        if (strcasecmp(json_object_get_string(json_object_array_get_idx(m, k)), method) == 0)
            return true;
    return false;
}

/* Follows a dotted path ("data.amount") through nested objects. */
static json_object *lookup(json_object *doc, const char *field)
{
    char part[129];
    const char *p = field;
    json_object *cur = doc;
    while (cur && *p) {
        size_t n = strcspn(p, ".");
        if (n == 0 || n >= sizeof(part) || !json_object_is_type(cur, json_type_object))
            return NULL;
        memcpy(part, p, n);
        part[n] = '\0';
        json_object *next = NULL;
        if (!json_object_object_get_ex(cur, part, &next))
            return NULL;
        cur = next;
        p += n + (p[n] == '.');
    }
    return cur;
}

static bool compare(const char *op, json_object *actual, json_object *want, bool *ok)
{
    *ok = true;
    if (json_object_is_type(want, json_type_string)) {
        if (!json_object_is_type(actual, json_type_string))
            return *ok = false;
        bool eq = strcmp(json_object_get_string(actual), json_object_get_string(want)) == 0;
        return op[0] == '=' ? eq : !eq;
    }
    if (!is_number(actual))
        return *ok = false;
    double a = json_object_get_double(actual), w = json_object_get_double(want);
    if (isnan(a))
        return *ok = false;
    if (!strcmp(op, ">"))
        return a > w;
    if (!strcmp(op, ">="))
        return a >= w;
    if (!strcmp(op, "<"))
        return a < w;
    if (!strcmp(op, "<="))
        return a <= w;
    if (!strcmp(op, "=="))
        return a == w;
    return a != w;
}

enum cs_err cs_policy_evaluate(const struct cs_policy *p, const struct cs_request *rq,
                               bool *needs_approval, char *err)
{
    *needs_approval = true;
    enum cs_err rc = CS_OK;
    json_object *doc = NULL;
    bool doc_tried = false, doc_ok = false;

    if (p->mode == CS_POLICY_ALWAYS)
        *needs_approval = true;
    else if (p->mode == CS_POLICY_NEVER)
        *needs_approval = false;
    else {
        *needs_approval = false;
        size_t n = p->rules ? json_object_array_length(p->rules) : 0;
        for (size_t i = 0; i < n && !*needs_approval; i++) {
            json_object *r = json_object_array_get_idx(p->rules, i), *m = NULL, *want = NULL,
                        *pathv = NULL, *fieldv = NULL, *opv = NULL, *civ = NULL;
            json_object_object_get_ex(r, "method", &m);
            json_object_object_get_ex(r, "path", &pathv);
            json_object_object_get_ex(r, "path_ci", &civ);
            /* A glob over the whole normalised path ('*' crosses '/'), case-sensitive
             * unless the rule says "path_ci": true. */
            int flags = civ && json_object_get_boolean(civ) ? FNM_CASEFOLD : 0;
            if (!method_matches(m, rq->method) ||
                (pathv && fnmatch(json_object_get_string(pathv), rq->path, flags) != 0))
                continue;
            /* The objects are tested, not get_ex's answer: a key may hold null. */
            json_object_object_get_ex(r, "field", &fieldv);
            if (!fieldv) {
                *needs_approval = true;
                break;
            }
            json_object_object_get_ex(r, "op", &opv);
            json_object_object_get_ex(r, "value", &want);
            if (!json_object_is_type(fieldv, json_type_string) ||
                !json_object_is_type(opv, json_type_string) || !want) {
                rc = cs_err_set(err, CS_ERR_POLICY, "policy %s rule %zu is malformed", p->id, i);
                break;
            }
            const char *field = json_object_get_string(fieldv);
            if (!doc_tried) {
                doc_tried = true;
                char ignore[CS_ERRLEN];
                doc_ok = rq->body_len > 0 &&
                         cs_json_parse((const char *)rq->body, rq->body_len, &doc, ignore) == CS_OK;
            }
            if (!doc_ok) {
                rc = cs_err_set(err, CS_ERR_POLICY,
                                "policy %s rule %zu reads \"%s\" but the body is not JSON", p->id,
                                i, field);
                break;
            }
            json_object *actual = doc ? lookup(doc, field) : NULL; /* NULL doc: a body of null */
            bool ok = false;
            bool hit = actual && compare(json_object_get_string(opv), actual, want, &ok);
            if (!actual || !ok) {
                rc = cs_err_set(err, CS_ERR_POLICY, "policy %s rule %zu: body field \"%s\" is %s",
                                p->id, i, field, actual ? "of the wrong type" : "missing");
                break;
            }
            *needs_approval = hit;
        }
    }
    json_object_put(doc);
    if (rc) {
        *needs_approval = true;
        return rc;
    }
    if (*needs_approval && (p->quorum < 1 || p->quorum > p->napprovers))
        return cs_err_set(err, CS_ERR_POLICY,
                          "policy %s needs %d approval(s) but has %d approver(s): refused", p->id,
                          p->quorum, p->napprovers);
    return CS_OK;
}

json_object *cs_policy_snapshot(const struct cs_policy *p, bool idempotency_keys)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(p->id));
    json_object_object_add(o, "mode", json_object_new_string(mode_names[p->mode]));
    json_object_object_add(o, "quorum", json_object_new_int(p->quorum));
    json_object_object_add(o, "window_seconds", json_object_new_int(p->window_seconds));
    json_object_object_add(o, "exec_timeout_ms", json_object_new_int(p->exec_timeout_ms));
    json_object_object_add(o, "max_attempts", json_object_new_int(p->max_attempts));
    json_object_object_add(o, "idempotency_keys", json_object_new_boolean(idempotency_keys));
    if (p->amount_field)
        json_object_object_add(o, "amount_field", json_object_new_string(p->amount_field));
    if (p->reminder_interval_s)
        json_object_object_add(o, "reminder_interval_s",
                               json_object_new_int(p->reminder_interval_s));
    if (p->escalate_after_s)
        json_object_object_add(o, "escalate_after_s", json_object_new_int(p->escalate_after_s));
    if (p->require_passkey)
        json_object_object_add(o, "require_passkey", json_object_new_boolean(true));
    if (p->link_lifetime_s) {
        json_object_object_add(o, "link_mode", json_object_new_string("semi-public"));
        json_object_object_add(o, "link_lifetime_s", json_object_new_int(p->link_lifetime_s));
    }
    if (p->nescalation) {
        json_object *esc = json_object_new_array();
        for (int i = 0; i < p->nescalation; i++)
            json_object_array_add(esc, json_object_new_string(p->escalation[i]));
        json_object_object_add(o, "escalation", esc);
    }
    return o;
}

void cs_policy_free(struct cs_policy *p)
{
    if (!p)
        return;
    cs_free(p->id);
    json_object_put(p->rules);
    cs_free(p->amount_field);
    cs_free(p->approvers);
    cs_free(p->escalation);
    cs_free(p);
}
