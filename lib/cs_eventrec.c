/*
 * cs_eventrec.c -- an event's JSON from the record a transition emitted
 * (see cs_eventrec.h; the layout is migration 016's).
 *
 * A row literal as record_out writes it: '(' fields ',' ... ')'; an empty
 * field is NULL; a field holding a quote, backslash, parenthesis, comma or
 * space, or the empty string, is double-quoted with '""' for '"' and a
 * backslash before any character standing for that character.
 */
#include "cs_eventrec.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cs_json.h"
#include "cs_mem.h"

/* Field positions (migration 016). */
enum {
    F_KIND,
    F_ID,
    F_STATUS,
    F_ATTEMPTS,
    F_REQUEST_ID,
    F_AGENT_ID,
    F_GRANT_ID,
    F_BATCH_ID,
    F_METHOD,
    F_URL,
    F_DIGEST,
    F_CREATED,
    F_EXPIRES,
    F_DECIDED,
    F_DECIDED_BY,
    F_REASON,
    F_ERROR_CODE,
    F_AT,
    F_EVENT_N, /* 'e' */
    F_EXECUTED = F_EVENT_N,
    F_RSTATUS,
    F_RHEADERS,
    F_BODY,
    F_TRUNCATED,
    F_ERRMSG,
    F_RESULT_N, /* 'r' */
    F_APPROVAL_URL = F_EVENT_N,
    F_APPROVERS,
    F_PENDING_N, /* 'p' */
    F_MAX = F_RESULT_N
};

struct field {
    const char *p; /* NUL-terminated (in the scratch copy) */
    size_t n;
    bool null;
};

bool cs_eventrec_is(const char *payload, size_t len)
{
    return len > 0 && payload[0] == '(';
}

/* Splits rec into f[] (unquoted copies in scratch, len + 1 bytes per field at most). */
static enum cs_err split(const char *rec, size_t len, char *scratch, struct field *f, int *nf,
                         char *err)
{
    size_t i = 1;
    char *w = scratch;
    *nf = 0;
    if (len < 2 || rec[0] != '(' || rec[len - 1] != ')')
        return cs_err_set(err, CS_ERR_INVALID, "an event record is not parenthesised");
    for (;;) {
        if (*nf == F_MAX)
            return cs_err_set(err, CS_ERR_INVALID, "an event record has over %d fields", F_MAX);
        struct field *x = &f[(*nf)++];
        x->p = w;
        x->null = false;
        if (rec[i] == '"') {
            for (i++;; i++) {
                if (i >= len - 1)
                    return cs_err_set(err, CS_ERR_INVALID, "an event record's quote is unclosed");
                if (rec[i] == '"' && rec[i + 1] == '"')
                    *w++ = rec[++i];
                else if (rec[i] == '"')
                    break;
                else if (rec[i] == '\\')
                    *w++ = rec[++i];
                else
                    *w++ = rec[i];
            }
            i++;
        } else {
            while (i < len - 1 && rec[i] != ',') {
                if (memchr("\"\\()", rec[i], 4))
                    return cs_err_set(err, CS_ERR_INVALID,
                                      "an event record has a stray '%c' in field %d", rec[i], *nf);
                *w++ = rec[i++];
            }
            x->null = w == x->p;
        }
        x->n = (size_t)(w - x->p);
        *w++ = '\0';
        if (memchr(x->p, '\0', x->n))
            return cs_err_set(err, CS_ERR_INVALID, "an event record holds a NUL in field %d", *nf);
        if (i == len - 1)
            return CS_OK;
        if (rec[i] != ',')
            return cs_err_set(err, CS_ERR_INVALID, "an event record's field %d runs on", *nf);
        i++;
    }
}

static bool to_int(const struct field *x, int64_t min, int64_t max, int64_t *out)
{
    size_t i = !x->null && x->n > 0 && x->p[0] == '-' ? 1 : 0;
    if (x->null || x->n == i || x->n - i > 18) /* 18 digits cannot overflow */
        return false;
    int64_t v = 0;
    for (; i < x->n; i++) {
        if (x->p[i] < '0' || x->p[i] > '9')
            return false;
        v = v * 10 + (x->p[i] - '0');
    }
    *out = x->p[0] == '-' ? -v : v;
    return *out >= min && *out <= max;
}

/* Unix microseconds as Postgres writes a UTC timestamptz in JSON. */
static bool iso_us(const struct field *x, char out[40])
{
    int64_t us;
    struct tm tm;
    if (!to_int(x, 0, INT64_C(253402300799999999), &us)) /* up to 9999-12-31 */
        return false;
    time_t s = (time_t)(us / 1000000);
    int frac = (int)(us % 1000000);
    if (!gmtime_r(&s, &tm))
        return false;
    int n = (int)strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac) {
        n += snprintf(out + n, (size_t)(40 - n), ".%06d", frac);
        while (out[n - 1] == '0')
            n--;
    }
    snprintf(out + n, (size_t)(40 - n), "+00:00");
    return true;
}

static void put_str(json_object *o, const char *key, const struct field *x)
{
    if (!x->null)
        json_object_object_add(o, key, json_object_new_string_len(x->p, (int)x->n));
}

static bool put_time(json_object *o, const char *key, const struct field *x)
{
    char t[40];
    if (x->null)
        return true;
    if (!iso_us(x, t))
        return false;
    json_object_object_add(o, key, json_object_new_string(t));
    return true;
}

/* "{uuid,...}" (a uuid[] literal) as a JSON array of strings. */
static json_object *uuid_array(const struct field *x)
{
    if (x->null || x->n < 2 || x->p[0] != '{' || x->p[x->n - 1] != '}')
        return NULL;
    json_object *a = json_object_new_array();
    for (size_t i = 1; i < x->n - 1;) {
        size_t e = i;
        while (e < x->n - 1 && x->p[e] != ',')
            e++;
        bool ok = e - i == 36;
        for (size_t k = i; ok && k < e; k++)
            ok = x->p[k] == '-' || (x->p[k] >= '0' && x->p[k] <= '9') ||
                 (x->p[k] >= 'a' && x->p[k] <= 'f');
        if (!ok) {
            json_object_put(a);
            return NULL;
        }
        json_object_array_add(a, json_object_new_string_len(x->p + i, (int)(e - i)));
        i = e + (e < x->n - 1);
    }
    return a;
}

/* The fields every kind shares (cs_event()). */
static enum cs_err common(json_object *o, const struct field *f, const char *type_prefix, char *err)
{
    int64_t attempts;
    if (!to_int(&f[F_ATTEMPTS], 0, INT32_MAX, &attempts))
        return cs_err_set(err, CS_ERR_INVALID, "an event record's attempts is not a count");
    static const int required[] = {F_ID,  F_STATUS, F_REQUEST_ID, F_AGENT_ID, F_GRANT_ID, F_METHOD,
                                   F_URL, F_DIGEST, F_CREATED,    F_EXPIRES,  F_AT};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        if (f[required[i]].null)
            return cs_err_set(err, CS_ERR_INVALID, "an event record lacks field %d", required[i]);
    char *event_id = cs_malloc(f[F_ID].n + f[F_STATUS].n + 24);
    snprintf(event_id, f[F_ID].n + f[F_STATUS].n + 24, "%s:%s:%" PRId64, f[F_ID].p, f[F_STATUS].p,
             attempts);
    json_object_object_add(o, "event_id", json_object_new_string(event_id));
    cs_free(event_id);
    char *type = cs_malloc(strlen(type_prefix) + f[F_STATUS].n + 1);
    snprintf(type, strlen(type_prefix) + f[F_STATUS].n + 1, "%s%s", type_prefix, f[F_STATUS].p);
    json_object_object_add(o, "type", json_object_new_string(type));
    cs_free(type);
    put_str(o, "approval_id", &f[F_ID]);
    put_str(o, "request_id", &f[F_REQUEST_ID]);
    put_str(o, "agent_id", &f[F_AGENT_ID]);
    put_str(o, "grant_id", &f[F_GRANT_ID]);
    put_str(o, "batch_id", &f[F_BATCH_ID]);
    put_str(o, "status", &f[F_STATUS]);
    put_str(o, "method", &f[F_METHOD]);
    put_str(o, "url", &f[F_URL]);
    put_str(o, "digest", &f[F_DIGEST]);
    if (!put_time(o, "created_at", &f[F_CREATED]) || !put_time(o, "expires_at", &f[F_EXPIRES]) ||
        !put_time(o, "decided_at", &f[F_DECIDED]) || !put_time(o, "at", &f[F_AT]))
        return cs_err_set(err, CS_ERR_INVALID, "an event record's time is not unix microseconds");
    put_str(o, "decided_by", &f[F_DECIDED_BY]);
    put_str(o, "decision_reason", &f[F_REASON]);
    json_object_object_add(o, "attempts", json_object_new_int64(attempts));
    put_str(o, "error_code", &f[F_ERROR_CODE]);
    return CS_OK;
}

/* What cs_result() adds. */
static enum cs_err result(json_object *o, const struct field *f, char *err)
{
    int64_t code;
    if (!put_time(o, "executed_at", &f[F_EXECUTED]))
        return cs_err_set(err, CS_ERR_INVALID, "a result record's executed_at is not a time");
    if (!f[F_RSTATUS].null) {
        if (!to_int(&f[F_RSTATUS], 0, 999, &code))
            return cs_err_set(err, CS_ERR_INVALID, "a result record's status is not a status");
        json_object_object_add(o, "status_code", json_object_new_int64(code));
    }
    if (!f[F_RHEADERS].null) {
        json_object *h = NULL;
        if (cs_json_parse(f[F_RHEADERS].p, f[F_RHEADERS].n, &h, err) != CS_OK)
            return CS_ERR_INVALID;
        json_object_object_add(o, "headers", h);
    }
    put_str(o, "body_b64", &f[F_BODY]);
    if (!f[F_TRUNCATED].null) {
        if (strcmp(f[F_TRUNCATED].p, "t") && strcmp(f[F_TRUNCATED].p, "f"))
            return cs_err_set(err, CS_ERR_INVALID, "a result record's body_truncated is not t|f");
        json_object_object_add(o, "body_truncated",
                               json_object_new_boolean(f[F_TRUNCATED].p[0] == 't'));
    }
    put_str(o, "error_message", &f[F_ERRMSG]);
    return CS_OK;
}

enum cs_err cs_eventrec_render(const char *rec, size_t len, char **out, size_t *outlen, char *err)
{
    struct field f[F_MAX];
    int nf = 0;
    *out = NULL;
    *outlen = 0;
    char *scratch = cs_malloc(len + F_MAX + 1);
    enum cs_err rc = split(rec, len, scratch, f, &nf, err);
    char kind = !rc && f[F_KIND].n == 1 ? f[F_KIND].p[0] : '?';
    int want = kind == 'e' ? F_EVENT_N : kind == 'r' ? F_RESULT_N : kind == 'p' ? F_PENDING_N : -1;
    if (!rc && nf != want)
        rc = want < 0 ? cs_err_set(err, CS_ERR_INVALID, "an event record of an unknown kind")
                      : cs_err_set(err, CS_ERR_INVALID,
                                   "an event record of kind %c has %d "
                                   "fields, not %d",
                                   kind, nf, want);
    json_object *o = json_object_new_object();
    if (!rc)
        rc = common(o, f, kind == 'r' ? "result." : "approval.", err);
    if (!rc && kind == 'r')
        rc = result(o, f, err);
    if (!rc && kind == 'p') {
        json_object *a = uuid_array(&f[F_APPROVERS]);
        if (!a)
            rc = cs_err_set(err, CS_ERR_INVALID, "a pending record's approvers are not uuids");
        put_str(o, "approval_url", &f[F_APPROVAL_URL]);
        if (a)
            json_object_object_add(o, "approvers", a);
    }
    if (!rc) {
        const char *t = cs_json_text(o, outlen);
        *out = cs_memdup(t, *outlen + 1);
    }
    json_object_put(o);
    cs_free(scratch);
    return rc;
}
