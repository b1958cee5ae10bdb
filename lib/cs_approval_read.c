/*
 * cs_approval_read.c -- an approval as the HTTP API and the CLI report it
 * (see cs_approval.h): the status object, and everything /result answers.
 *
 * Runs in the api (agent and admin routes) and the CLI. Each answer is one
 * read of the approval: approval_answer carries approval_status's columns
 * and the stored response, so a /result request reads the row once,
 * whatever it finds. Nothing here writes.
 */
#include "cs_approval.h"

#include <string.h>

#include "cs_json.h"
#include "cs_time.h"

static void add_str(json_object *o, const char *k, const PGresult *res, int col)
{
    const char *v = cs_db_str(res, 0, col);
    json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static void add_time(json_object *o, const char *k, const PGresult *res, int col)
{
    char iso[CS_TIME_ISO_LEN];
    json_object_object_add(o, k,
                           cs_db_str(res, 0, col)
                               ? json_object_new_string(cs_time_iso(cs_db_int(res, 0, col), iso))
                               : NULL);
}

/* approval_answer begins with approval_status's columns: status_object() reads either. */
#define SAME_COL(c) ((int)CSC_APPROVAL_ANSWER_##c == (int)CSC_APPROVAL_STATUS_##c)
_Static_assert(SAME_COL(ID) && SAME_COL(STATUS) && SAME_COL(NAME) && SAME_COL(GRANT_ID) &&
                   SAME_COL(METHOD) && SAME_COL(URL) && SAME_COL(CREATED_MS) &&
                   SAME_COL(EXPIRES_MS) && SAME_COL(DECIDED_MS) && SAME_COL(DECIDED_BY) &&
                   SAME_COL(DECISION_REASON) && SAME_COL(EXECUTED_MS) && SAME_COL(HAS_RESULT) &&
                   SAME_COL(APPROVALS) && SAME_COL(QUORUM) && SAME_COL(ERROR_CODE) &&
                   SAME_COL(ERROR_MESSAGE) && SAME_COL(DIGEST_HEX) && SAME_COL(REASON) &&
                   SAME_COL(BATCH_ID) && SAME_COL(REQUEST_ID) && SAME_COL(ATTEMPTS),
               "approval_answer does not begin with approval_status's columns");
#undef SAME_COL

/* The status object of row 0 of an approval_status (or approval_answer) result. */
static json_object *status_object(const PGresult *res, enum cs_status *status)
{
    int st = cs_status_parse(cs_db_str(res, 0, CSC_APPROVAL_STATUS_STATUS));
    *status = (enum cs_status)st;
    json_object *o = json_object_new_object();
    add_str(o, "approval_id", res, CSC_APPROVAL_STATUS_ID);
    add_str(o, "status", res, CSC_APPROVAL_STATUS_STATUS);
    json_object_object_add(
        o, "is_terminal",
        json_object_new_boolean(st >= 0 && cs_status_terminal((enum cs_status)st)));
    add_time(o, "created_at", res, CSC_APPROVAL_STATUS_CREATED_MS);
    add_time(o, "expires_at", res, CSC_APPROVAL_STATUS_EXPIRES_MS);
    add_time(o, "decided_at", res, CSC_APPROVAL_STATUS_DECIDED_MS);
    add_str(o, "decided_by", res, CSC_APPROVAL_STATUS_DECIDED_BY);
    add_str(o, "decision_reason", res, CSC_APPROVAL_STATUS_DECISION_REASON);
    add_time(o, "executed_at", res, CSC_APPROVAL_STATUS_EXECUTED_MS);
    json_object_object_add(
        o, "has_result",
        json_object_new_boolean(cs_db_bool(res, 0, CSC_APPROVAL_STATUS_HAS_RESULT)));
    json_object_object_add(o, "approvals_received",
                           json_object_new_int64(cs_db_int(res, 0, CSC_APPROVAL_STATUS_APPROVALS)));
    json_object_object_add(o, "approvals_required",
                           json_object_new_int64(cs_db_int(res, 0, CSC_APPROVAL_STATUS_QUORUM)));
    add_str(o, "agent", res, CSC_APPROVAL_STATUS_NAME);
    add_str(o, "grant_id", res, CSC_APPROVAL_STATUS_GRANT_ID);
    add_str(o, "method", res, CSC_APPROVAL_STATUS_METHOD);
    add_str(o, "url", res, CSC_APPROVAL_STATUS_URL);
    add_str(o, "reason", res, CSC_APPROVAL_STATUS_REASON);
    add_str(o, "digest", res, CSC_APPROVAL_STATUS_DIGEST_HEX);
    add_str(o, "request_id", res, CSC_APPROVAL_STATUS_REQUEST_ID);
    add_str(o, "batch_id", res, CSC_APPROVAL_STATUS_BATCH_ID);
    add_str(o, "error_code", res, CSC_APPROVAL_STATUS_ERROR_CODE);
    add_str(o, "error_message", res, CSC_APPROVAL_STATUS_ERROR_MESSAGE);
    json_object_object_add(o, "attempts",
                           json_object_new_int64(cs_db_int(res, 0, CSC_APPROVAL_STATUS_ATTEMPTS)));
    return o;
}

/* Reads approval id (agent_id's when not NULL): approval_answer, else approval_status. */
static enum cs_err read_one(struct cs_db *db, bool answer, const char *id, const char *agent_id,
                            PGresult **res, char *err)
{
    *res = NULL;
    if (!cs_uuid_valid(id))
        return cs_err_set(err, CS_ERR_NOT_FOUND, "no such approval");
    const char *p[] = {id, agent_id};
    enum cs_err rc = answer ? cs_db_exec(db, CS_DB_Q(APPROVAL_ANSWER, p), res, err)
                            : cs_db_exec(db, CS_DB_Q(APPROVAL_STATUS, p), res, err);
    if (!rc && PQntuples(*res) == 0) {
        PQclear(*res);
        *res = NULL;
        rc = cs_err_set(err, CS_ERR_NOT_FOUND, "no such approval");
    }
    return rc;
}

enum cs_err cs_approval_status(struct cs_db *db, const char *id, const char *agent_id,
                               json_object **out, enum cs_status *status, char *err)
{
    *out = NULL;
    PGresult *res = NULL;
    enum cs_err rc = read_one(db, false, id, agent_id, &res, err);
    if (rc)
        return rc;
    *out = status_object(res, status);
    PQclear(res);
    return CS_OK;
}

/* The outcome body of a terminal approval in row 0 of an approval_answer result (see the header). */
static json_object *outcome_object(const PGresult *res, const char *id, enum cs_status st,
                                   enum cs_err *outcome, char *message, size_t message_len)
{
    json_object *o = json_object_new_object();
    char iso[CS_TIME_ISO_LEN], err[CS_ERRLEN];
    switch (st) {
    case CS_ST_EXECUTED: {
        json_object *headers = NULL;
        const char *h = cs_db_str(res, 0, CSC_APPROVAL_ANSWER_RESPONSE_HEADERS);
        if (!h || cs_json_parse(h, strlen(h), &headers, err) != CS_OK)
            headers = json_object_new_object();
        json_object_object_add(o, "type", json_object_new_string("result"));
        json_object_object_add(o, "approval_id", json_object_new_string(id));
        json_object_object_add(o, "status", json_object_new_string("executed"));
        json_object_object_add(
            o, "status_code",
            json_object_new_int((int)cs_db_int(res, 0, CSC_APPROVAL_ANSWER_RESPONSE_STATUS)));
        json_object_object_add(o, "headers", headers);
        json_object_object_add(
            o, "body_b64",
            json_object_new_string(cs_db_text(res, 0, CSC_APPROVAL_ANSWER_RESPONSE_BODY_B64)));
        json_object_object_add(
            o, "body_truncated",
            json_object_new_boolean(cs_db_bool(res, 0, CSC_APPROVAL_ANSWER_RESPONSE_TRUNCATED)));
        if (cs_db_str(res, 0, CSC_APPROVAL_ANSWER_EXECUTED_MS))
            json_object_object_add(o, "executed_at",
                                   json_object_new_string(cs_time_iso(
                                       cs_db_int(res, 0, CSC_APPROVAL_ANSWER_EXECUTED_MS), iso)));
        *outcome = CS_OK;
        break;
    }
    case CS_ST_FAILED:
        add_str(o, "error_code", res, CSC_APPROVAL_ANSWER_ERROR_CODE);
        add_str(o, "error_message", res, CSC_APPROVAL_ANSWER_ERROR_MESSAGE);
        snprintf(message, message_len, "the call failed: %s",
                 cs_db_str(res, 0, CSC_APPROVAL_ANSWER_ERROR_CODE)
                     ? cs_db_str(res, 0, CSC_APPROVAL_ANSWER_ERROR_CODE)
                     : "unknown");
        *outcome = CS_ERR_EXECUTION_FAILED;
        break;
    case CS_ST_DENIED:
    case CS_ST_EXPIRED:
    case CS_ST_CANCELLED:
        add_str(o, "reason", res, CSC_APPROVAL_ANSWER_DECISION_REASON);
        add_str(o, "decided_by", res, CSC_APPROVAL_ANSWER_DECIDED_BY);
        if (cs_db_str(res, 0, CSC_APPROVAL_ANSWER_DECIDED_MS))
            json_object_object_add(o, "decided_at",
                                   json_object_new_string(cs_time_iso(
                                       cs_db_int(res, 0, CSC_APPROVAL_ANSWER_DECIDED_MS), iso)));
        *outcome = st == CS_ST_DENIED    ? CS_ERR_DENIED
                   : st == CS_ST_EXPIRED ? CS_ERR_EXPIRED
                                         : CS_ERR_CANCELLED;
        if (st == CS_ST_DENIED)
            snprintf(message, message_len, "denied%s%s",
                     cs_db_str(res, 0, CSC_APPROVAL_ANSWER_DECISION_REASON) ? ": " : "",
                     cs_db_text(res, 0, CSC_APPROVAL_ANSWER_DECISION_REASON));
        else
            snprintf(message, message_len, "%s",
                     st == CS_ST_EXPIRED ? "the approval window elapsed without a decision"
                                         : "the request was cancelled");
        break;
    default:
        json_object_put(o);
        o = NULL;
        break;
    }
    return o;
}

enum cs_err cs_approval_answer(struct cs_db *db, const char *id, const char *agent_id,
                               enum cs_err *outcome, json_object **body, enum cs_status *status,
                               char *message, size_t message_len, char *err)
{
    *body = NULL;
    *outcome = CS_ERR_NOT_PENDING;
    message[0] = '\0';
    PGresult *res = NULL;
    enum cs_err rc = read_one(db, true, id, agent_id, &res, err);
    if (rc)
        return rc;
    json_object *st = status_object(res, status);
    *body = outcome_object(res, id, *status, outcome, message, message_len);
    if (*body)
        json_object_put(st);
    else
        *body = st;
    PQclear(res);
    return CS_OK;
}
