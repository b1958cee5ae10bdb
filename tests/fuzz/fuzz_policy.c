/*
 * fuzz_policy.c -- libFuzzer target: policy rules (lib/cs_policy.c),
 * validated as `countersign policy set` and the catalog validate them,
 * then evaluated against a request as cs_approval_check does.
 *
 * Input: one byte of policy settings (bits 0-1 quorum, 2-3 approvers,
 * 4-5 mode: 0 and 1 rules, 2 always, 3 never), the rules array as JSON,
 * a NUL byte, and a POST /v1/proxy body (fuzz_request.h checks it).
 *
 * Rules that cs_policy_rules_validate refuses are never evaluated; a valid
 * rule holds no key whose value is null (evaluation would read such a key
 * as present). For valid ones, cs_policy_evaluate must fail closed:
 *   - it answers CS_OK or CS_ERR_POLICY, and on CS_ERR_POLICY it says
 *     "needs approval";
 *   - "always" needs approval, "never" does not;
 *   - when a call needs approval, the quorum is between 1 and the number
 *     of approvers, or the call is refused;
 *   - adding a rule can only add approvals: the same rules followed by a
 *     catch-all {"path": "*"} never let a call through without approval.
 */
#include "cs_policy.h"
#include "fuzz_request.h"

static struct cs_policy *policy_new(uint8_t settings, json_object *rules)
{
    struct cs_policy *p = cs_calloc(1, sizeof(*p));
    int mode = (settings >> 4) & 3;
    p->id = cs_strdup("fuzz-policy");
    p->mode = mode < 2 ? CS_POLICY_RULES : mode == 2 ? CS_POLICY_ALWAYS : CS_POLICY_NEVER;
    p->rules = json_object_get(rules);
    p->quorum = settings & 3;
    p->napprovers = (settings >> 2) & 3;
    p->window_seconds = 3600;
    p->exec_timeout_ms = 30000;
    p->max_attempts = 1;
    p->approvers = cs_calloc((size_t)(p->napprovers ? p->napprovers : 1), sizeof(*p->approvers));
    for (int i = 0; i < p->napprovers; i++) {
        snprintf(p->approvers[i].approver_id, sizeof(p->approvers[i].approver_id),
                 "01890a5d-ac96-7000-8000-%012d", i);
        memcpy(p->approvers[i].voter_id, p->approvers[i].approver_id, CS_UUID_STRLEN + 1);
    }
    return p;
}

/* Evaluates and checks the properties every answer must have; returns needs_approval. */
static bool evaluate(const struct cs_policy *p, const struct cs_request *rq, enum cs_err *rc)
{
    bool needs = false;
    char err[CS_ERRLEN] = "";
    *rc = cs_policy_evaluate(p, rq, &needs, err);
    FUZZ_CHECK(*rc == CS_OK || *rc == CS_ERR_POLICY);
    if (*rc) {
        FUZZ_CHECK(needs && err[0]);
        return needs;
    }
    if (p->mode == CS_POLICY_ALWAYS)
        FUZZ_CHECK(needs);
    if (p->mode == CS_POLICY_NEVER)
        FUZZ_CHECK(!needs);
    if (needs)
        FUZZ_CHECK(p->quorum >= 1 && p->quorum <= p->napprovers);
    return needs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t settings = data[0];
    size_t rules_len = 0, req_len = 0;
    const uint8_t *req = fuzz_split(data + 1, size - 1, '\0', &rules_len, &req_len);

    json_object *rules = NULL;
    char err[CS_ERRLEN];
    if (cs_json_parse((const char *)data + 1, rules_len, &rules, err) != CS_OK)
        return 0;
    enum cs_err rc = cs_policy_rules_validate(rules, err);
    FUZZ_CHECK(rc == CS_OK || (rc == CS_ERR_INVALID && err[0]));
    if (rc == CS_OK)
        for (size_t i = 0; i < json_object_array_length(rules); i++) {
            json_object_object_foreach(json_object_array_get_idx(rules, i), key, val)
            {
                (void)key;
                FUZZ_CHECK(val != NULL);
            }
        }
    struct cs_request rq;
    if (rc != CS_OK || fuzz_request_parse(req, req_len, CS_REQ_SUBMIT, &rq) != CS_OK) {
        json_object_put(rules);
        return 0;
    }

    struct cs_policy *p = policy_new(settings, rules);
    enum cs_err erc;
    bool needs = evaluate(p, &rq, &erc);

    /* Rules plus a catch-all: never less approval than before. */
    json_object *more = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(rules); i++)
        json_object_array_add(more, json_object_get(json_object_array_get_idx(rules, i)));
    json_object *all = json_object_new_object();
    json_object_object_add(all, "path", json_object_new_string("*"));
    json_object_array_add(more, all);
    if (json_object_array_length(more) <= 100) {
        FUZZ_CHECK(cs_policy_rules_validate(more, err) == CS_OK);
        struct cs_policy *q = policy_new(settings, more);
        enum cs_err qrc;
        bool qneeds = evaluate(q, &rq, &qrc);
        FUZZ_CHECK(qneeds || p->mode == CS_POLICY_NEVER);
        if (p->mode == CS_POLICY_RULES && erc == CS_OK && needs)
            FUZZ_CHECK(qrc == CS_OK);
        cs_policy_free(q);
    }
    json_object_put(more);

    cs_policy_free(p);
    cs_request_free(&rq);
    json_object_put(rules);
    return 0;
}
