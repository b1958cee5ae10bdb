/*
 * fuzz_json.c -- libFuzzer target: strict JSON input (lib/cs_json.c).
 *
 * Input: any bytes, as an HTTP body or a Kafka message value would carry
 * them. cs_json_parse must refuse what json-c would accept beyond RFC 8259
 * (invalid UTF-8, NaN, single quotes, raw control characters, trailing
 * data, nesting deeper than CS_JSON_MAX_DEPTH) without leaking. On every
 * object of an accepted document -- nested ones too -- each field is read
 * with every typed getter (cs_json_str, _int, _typed, _bool) and the
 * object is checked with cs_json_only_keys, and the answers are compared
 * with what json-c says about the field. The compact text of the
 * document (cs_json_text, what a "json" request body becomes) must be
 * accepted again and serialise to the same text: policy rules re-parse
 * stored bodies, and a body the parser refuses would fail every rule.
 *
 * An independent reader of RFC 8259 (below) is the oracle: what
 * cs_json_parse accepts must be RFC 8259 JSON in RFC 3629 UTF-8 whose
 * numbers fit a Postgres numeric (contexts and rules go to jsonb columns,
 * and one document Postgres refuses fails a whole insert), and what it
 * refuses must be outside that, nested too deep, or hold a NUL. A name
 * given twice in one object (compared as code points, escapes decoded) or
 * holding U+0000 must be refused: json-c would keep the last or cut it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "cs_json.h"
#include "fuzz.h"

/* ---- the oracle: RFC 8259 JSON, RFC 3629 UTF-8, numbers Postgres can hold ---- */

struct rd {
    const unsigned char *p, *end;
    int depth, max_depth;
    bool extreme; /* a number past 1e+-1000 or 1000 characters: may be refused */
    bool twofold; /* a name twice in one object, or a U+0000 in a name: must be refused */
};

static int peek(const struct rd *r)
{
    return r->p < r->end ? *r->p : -1;
}

static void skip_ws(struct rd *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static bool digits(struct rd *r, size_t *n)
{
    const unsigned char *s = r->p;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
        r->p++;
    *n = (size_t)(r->p - s);
    return *n > 0;
}

/*
 * -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, and within what Postgres's
 * numeric holds (131072 digits before the point, 16383 after), with a
 * margin so that only numbers far outside count.
 */
static bool number(struct rd *r)
{
    size_t ni = 0, nf = 0, ne = 0;
    const unsigned char *start = r->p;
    if (peek(r) == '-')
        r->p++;
    const unsigned char *mant = r->p;
    if (peek(r) == '0')
        r->p++, ni = 1;
    else if (!digits(r, &ni))
        return false;
    const unsigned char *int_end = r->p;
    if (peek(r) == '.') {
        r->p++;
        if (!digits(r, &nf))
            return false;
    }
    const unsigned char *mant_end = r->p;
    long long e = 0;
    if (peek(r) == 'e' || peek(r) == 'E') {
        r->p++;
        bool neg = peek(r) == '-';
        if (peek(r) == '-' || peek(r) == '+')
            r->p++;
        const unsigned char *es = r->p;
        if (!digits(r, &ne))
            return false;
        for (const unsigned char *c = es; c < r->p && e < 100000000; c++)
            e = e * 10 + (*c - '0');
        if (neg)
            e = -e;
    }
    if (e > 1000 || e < -1000 || r->p - start > 1000) /* the sign counts */
        r->extreme = true;
    /* An integer json-c cannot hold exactly (past -2^63 .. 2^64-1) may be refused. */
    size_t ilen = (size_t)(int_end - mant);
    if (mant_end == int_end && r->p == int_end && ilen >= 19) {
        const char *max = *start == '-' ? "9223372036854775808" : "18446744073709551615";
        size_t mlen = strlen(max);
        if (ilen > mlen || (ilen == mlen && memcmp(mant, max, mlen) > 0))
            r->extreme = true;
    }
    bool zero = true;
    for (const unsigned char *c = mant; c < mant_end; c++)
        zero = zero && (*c == '0' || *c == '.');
    if (!zero) {
        const unsigned char *c = mant;
        while (c < int_end && *c == '0')
            c++;
        long long weight = (long long)(int_end - c) - 1 + e; /* power of ten of the first digit */
        long long scale = (long long)nf - e;                 /* decimal places written */
        if (weight > 140000 || scale > 17000)
            return false;
    }
    return true;
}

/* Length of the RFC 3629 sequence at p (no overlong forms, surrogates, > U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    size_t n = (size_t)(end - p), len;
    unsigned cp;
    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0)
        len = 2, cp = p[0] & 0x1f;
    else if ((p[0] & 0xf0) == 0xe0)
        len = 3, cp = p[0] & 0x0f;
    else if ((p[0] & 0xf8) == 0xf0)
        len = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static bool string(struct rd *r)
{
    r->p++; /* the opening quote */
    while (r->p < r->end) {
        unsigned char c = *r->p;
        if (c == '"') {
            r->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            r->p++;
            int k = peek(r);
            if (k < 0)
                return false;
            if (k == 'u') {
                r->p++;
                for (int i = 0; i < 4; i++, r->p++)
                    if (r->p >= r->end || !isxdigit(*r->p))
                        return false;
            } else if (k && strchr("\"\\/bfnrt", k)) {
                r->p++;
            } else {
                return false;
            }
            continue;
        }
        size_t len = utf8_len(r->p, r->end);
        if (!len)
            return false;
        r->p += len;
    }
    return false;
}

static bool value(struct rd *r);

/* The code points of the string whose opening quote is at p (well formed:
 * string() said so), a surrogate pair as one; their number, at most max. */
static size_t code_points(const unsigned char *p, uint32_t *out, size_t max)
{
    size_t n = 0;
    for (p++; *p != '"' && n < max;) {
        uint32_t cp;
        if (*p == '\\' && p[1] == 'u') {
            cp = (uint32_t)strtoul(
                (const char[]){(char)p[2], (char)p[3], (char)p[4], (char)p[5], 0}, NULL, 16);
            p += 6;
            if (cp >= 0xd800 && cp < 0xdc00 && p[0] == '\\' && p[1] == 'u') {
                uint32_t lo = (uint32_t)strtoul(
                    (const char[]){(char)p[2], (char)p[3], (char)p[4], (char)p[5], 0}, NULL, 16);
                if (lo >= 0xdc00 && lo < 0xe000)
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00), p += 6;
            }
        } else if (*p == '\\') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            cp = (unsigned char)to[strchr(from, p[1]) - from];
            p += 2;
        } else if (*p < 0x80) {
            cp = *p++;
        } else {
            int len = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : 2;
            cp = *p & (0x7f >> len);
            for (int i = 1; i < len; i++)
                cp = cp << 6 | (p[i] & 0x3f);
            p += len;
        }
        out[n++] = cp;
    }
    return n;
}

/* Names seen in one object: compared as code points, escapes decoded. */
struct names {
    const unsigned char *at[64];
    size_t n;
};

static void name_seen(struct rd *r, struct names *ns, const unsigned char *q)
{
    size_t room = (size_t)(r->end - q); /* never fewer bytes than code points */
    uint32_t *a = cs_malloc(room * sizeof(*a)), *b = cs_malloc(room * sizeof(*b));
    size_t na = code_points(q, a, room);
    for (size_t i = 0; i < na; i++)
        r->twofold = r->twofold || a[i] == 0;
    for (size_t k = 0; k < ns->n; k++) {
        size_t nb = code_points(ns->at[k], b, room);
        if (na == nb && memcmp(a, b, na * sizeof(a[0])) == 0)
            r->twofold = true;
    }
    cs_free(a);
    cs_free(b);
    if (ns->n < 64)
        ns->at[ns->n++] = q;
}

static bool members(struct rd *r, int close, bool object)
{
    struct names ns = {.n = 0};
    r->depth++;
    r->p++;
    skip_ws(r);
    if (peek(r) == close) {
        r->p++;
        r->depth--;
        return true;
    }
    for (;;) {
        skip_ws(r);
        if (object) {
            const unsigned char *q = r->p;
            if (peek(r) != '"' || !string(r))
                return false;
            name_seen(r, &ns, q);
            skip_ws(r);
            if (peek(r) != ':')
                return false;
            r->p++;
        }
        if (!value(r))
            return false;
        skip_ws(r);
        if (peek(r) == ',') {
            r->p++;
            continue;
        }
        if (peek(r) != close)
            return false;
        r->p++;
        r->depth--;
        return true;
    }
}

static bool literal(struct rd *r, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
        return false;
    r->p += n;
    return true;
}

static bool value(struct rd *r)
{
    skip_ws(r);
    if (r->depth > 200)
        return false; /* deep enough to be refused; spare the stack */
    /* Every value counts as a level, a scalar too (json-c's rule): 5 is 1
     * deep, [5] 2, [] 1, and 32 arrays around a number are 33 deep. */
    if (r->depth + 1 > r->max_depth)
        r->max_depth = r->depth + 1;
    switch (peek(r)) {
    case '{': return members(r, '}', true);
    case '[': return members(r, ']', false);
    case '"': return string(r);
    case 't': return literal(r, "true");
    case 'f': return literal(r, "false");
    case 'n': return literal(r, "null");
    default: return number(r);
    }
}

/*
 * True when data[size] is one JSON document as described above; *depth:
 * its nesting; *extreme: it holds a number that a parser may refuse as
 * out of range (beyond 1e+-1000) though Postgres would take it.
 */
static bool rfc_json(const uint8_t *data, size_t size, int *depth, bool *extreme, bool *twofold)
{
    struct rd r = {data, data + size, 0, 0, false, false};
    bool ok = value(&r);
    skip_ws(&r);
    *depth = r.max_depth;
    *extreme = r.extreme;
    *twofold = r.twofold;
    return ok && r.p == r.end;
}

static const char *const allowed[] = {"request_id", "grant_id", "method", "url", "json",
                                      "amount",     "a",        "",       NULL};

static bool in_allowed(const char *key)
{
    for (const char *const *a = allowed; *a; a++)
        if (strcmp(*a, key) == 0)
            return true;
    return false;
}

static void check_field(json_object *obj, const char *key, json_object *val)
{
    static const json_type types[] = {json_type_null,  json_type_boolean, json_type_double,
                                      json_type_int,   json_type_object,  json_type_array,
                                      json_type_string};
    char err[CS_ERRLEN];
    bool present = val != NULL; /* a JSON null reads as missing */

    for (int required = 0; required < 2; required++) {
        const char *s = NULL;
        enum cs_err rc = cs_json_str(obj, key, required, 8, &s, err);
        bool str = present && json_object_is_type(val, json_type_string);
        if (rc == CS_OK) {
            FUZZ_CHECK(present ? str : !required);
            FUZZ_CHECK(present ? s == json_object_get_string(val) : s == NULL);
            if (s)
                FUZZ_CHECK(strlen(s) <= 8 && (!required || *s));
        } else {
            FUZZ_CHECK(rc == CS_ERR_INVALID && s == NULL);
        }
        rc = cs_json_str(obj, key, required, SIZE_MAX, &s, err);
        if (str && rc == CS_OK)
            FUZZ_CHECK(strlen(s) == (size_t)json_object_get_string_len(val));

        int64_t n = 0;
        rc = cs_json_int(obj, key, required, -5, 1000, 7, &n, err);
        if (rc == CS_OK) {
            bool dbl = present && json_object_is_type(val, json_type_double);
            FUZZ_CHECK(present ? json_object_is_type(val, json_type_int) || dbl
                               : !required && n == 7);
            FUZZ_CHECK(n >= -5 && n <= 1000);
            if (present && !dbl) {
                /* The number read is the number written. */
                errno = 0;
                long long text = strtoll(json_object_get_string(val), NULL, 10);
                FUZZ_CHECK(errno == 0 && text == n);
            } else if (dbl) {
                /* An integral number written with a fraction or an exponent. */
                FUZZ_CHECK(strtod(json_object_get_string(val), NULL) == (double)n);
            }
        } else {
            FUZZ_CHECK(rc == CS_ERR_INVALID);
        }
        rc = cs_json_int(obj, key, required, INT64_MIN, INT64_MAX, 0, &n, err);
        FUZZ_CHECK(rc == CS_OK || rc == CS_ERR_INVALID);

        for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
            json_object *out = NULL;
            rc = cs_json_typed(obj, key, required, types[t], &out, err);
            bool want = present ? json_object_is_type(val, types[t]) : !required;
            FUZZ_CHECK((rc == CS_OK) == want);
            FUZZ_CHECK(out == (rc == CS_OK ? val : NULL));
        }
    }
    bool b = false;
    enum cs_err rc = cs_json_bool(obj, key, true, &b, err);
    if (!present)
        FUZZ_CHECK(rc == CS_OK && b);
    else if (json_object_is_type(val, json_type_boolean))
        FUZZ_CHECK(rc == CS_OK && b == json_object_get_boolean(val));
    else
        FUZZ_CHECK(rc == CS_ERR_INVALID);
}

static void walk(json_object *v, int depth)
{
    FUZZ_CHECK(depth <= CS_JSON_MAX_DEPTH);
    if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            walk(json_object_array_get_idx(v, i), depth + 1);
        return;
    }
    if (!json_object_is_type(v, json_type_object))
        return;
    char err[CS_ERRLEN];
    bool all_known = true;
    json_object_object_foreach(v, key, val)
    {
        all_known = all_known && in_allowed(key);
        check_field(v, key, val);
        walk(val, depth + 1);
    }
    FUZZ_CHECK((cs_json_only_keys(v, allowed, err) == CS_OK) == all_known);
    /* Missing fields read as missing. */
    check_field(v, "no such field \x01", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_object *obj = NULL;
    char err[CS_ERRLEN] = "";
    enum cs_err rc = cs_json_parse((const char *)data, size, &obj, err);
    int depth = 0;
    bool extreme = false, twofold = false;
    bool rfc = rfc_json(data, size, &depth, &extreme, &twofold) && !memchr(data, '\0', size);
    if (rc != CS_OK) {
        FUZZ_CHECK(obj == NULL && err[0]);
        FUZZ_CHECK(rc == CS_ERR_MALFORMED_JSON || rc == CS_ERR_TOO_LARGE);
        /* Refused: not JSON, too deep, or a number beyond 1e+-1000, 1000 characters or json-c's integers. */
        bool may_refuse = !rfc || depth > CS_JSON_MAX_DEPTH || extreme || twofold;
        if (!may_refuse)
            fprintf(stderr, "valid JSON refused: %s\n", err);
        FUZZ_CHECK(may_refuse);
        return 0;
    }
    if (!rfc)
        fprintf(stderr, "accepted, but not RFC 8259 JSON that Postgres takes\n");
    FUZZ_CHECK(rfc);
    /* A document that means two things (a name twice, a NUL in a name) is refused. */
    if (twofold)
        fprintf(stderr, "accepted a name twice in one object, or a U+0000 in a name\n");
    FUZZ_CHECK(!twofold);
    /* A top-level null is the one accepted document without an object. */
    FUZZ_CHECK(obj != NULL || json_object_is_type(obj, json_type_null));
    walk(obj, 1);

    size_t len = 0;
    char *text = cs_strdup(cs_json_text(obj, &len));
    json_object *again = NULL;
    rc = cs_json_parse(text, len, &again, err);
    if (rc != CS_OK)
        fprintf(stderr, "serialised document refused: %s\n", err);
    FUZZ_CHECK(rc == CS_OK);
    size_t len2 = 0;
    const char *text2 = cs_json_text(again, &len2);
    FUZZ_CHECK(len2 == len && memcmp(text, text2, len) == 0);
    cs_free(text);
    json_object_put(again);
    json_object_put(obj);
    return 0;
}
