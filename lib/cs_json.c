/*
 * cs_json.c -- strict JSON input (see cs_json.h).
 */
#include "cs_json.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "cs_mem.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* Length of the well-formed UTF-8 sequence at p[n] (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xbf;
    size_t len;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

bool cs_json_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x80)
            continue;
        size_t len = utf8_seq(p + i, n - i);
        if (!len)
            return false;
        i += len - 1;
    }
    return true;
}

/* Digits at p[i..n); returns the index after them. */
static size_t skip_digits(const unsigned char *p, size_t i, size_t n)
{
    while (i < n && p[i] >= '0' && p[i] <= '9')
        i++;
    return i;
}

/*
 * json-c keeps the text of decimals but stores integers as int64 or uint64
 * and silently saturates beyond: such an integer would reach the provider
 * (or the stored context) changed, so it is refused instead.
 */
static bool integer_fits(const unsigned char *d, size_t len, bool neg)
{
    const char *max = neg ? "9223372036854775808" : "18446744073709551615";
    size_t mlen = strlen(max);
    return len < mlen || (len == mlen && memcmp(d, max, mlen) <= 0);
}

/*
 * Checks the number at p[*i] (a '-' or a digit, outside strings) against
 * RFC 8259's grammar, -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, and
 * against what a Postgres numeric holds with room to spare: an exponent
 * within +-CS_JSON_MAX_EXPONENT and at most CS_JSON_MAX_NUMBER characters.
 * Nothing that could extend a number may follow it. Returns what is wrong
 * (NULL when nothing) with *i at the offending byte, or on success at the
 * number's last byte.
 */
static const char *number_check(const unsigned char *p, size_t n, size_t *i)
{
    size_t start = *i, k = *i;
    if (p[k] == '-')
        k++;
    if (k == n || p[k] < '0' || p[k] > '9')
        return *i = k, "a number needs a digit before any '.' or exponent";
    if (p[k] == '0' && k + 1 < n && p[k + 1] >= '0' && p[k + 1] <= '9')
        return *i = k, "a number must not have a leading zero";
    size_t int_start = k;
    k = skip_digits(p, k, n);
    bool integer = !(k < n && (p[k] == '.' || p[k] == 'e' || p[k] == 'E'));
    if (integer && !integer_fits(p + int_start, k - int_start, p[start] == '-'))
        return *i = start, "integer outside -2^63 .. 2^64-1 (send it as a string or a decimal)";
    if (k < n && p[k] == '.') {
        size_t f = skip_digits(p, k + 1, n);
        if (f == k + 1)
            return *i = k, "a number needs a digit after '.'";
        k = f;
    }
    if (k < n && (p[k] == 'e' || p[k] == 'E')) {
        size_t e = k + 1;
        bool neg = e < n && p[e] == '-';
        if (e < n && (p[e] == '-' || p[e] == '+'))
            e++;
        size_t d = skip_digits(p, e, n);
        if (d == e)
            return *i = k, "a number needs a digit in its exponent";
        long mag = 0; /* the exponent's magnitude, counted no further than past the cap */
        for (size_t j = e; j < d && mag <= CS_JSON_MAX_EXPONENT; j++)
            mag = mag * 10 + (p[j] - '0');
        if (mag > CS_JSON_MAX_EXPONENT)
            return *i = start, neg ? "number exponent below -" STR(CS_JSON_MAX_EXPONENT)
                                   : "number exponent above " STR(CS_JSON_MAX_EXPONENT);
        k = d;
    }
    if (k - start > CS_JSON_MAX_NUMBER)
        return *i = start, "number longer than " STR(CS_JSON_MAX_NUMBER) " characters";
    if (k < n && ((p[k] >= '0' && p[k] <= '9') || strchr(".eE+-", p[k])))
        return *i = k, "malformed number";
    *i = k - 1;
    return NULL;
}

/*
 * json-c (0.16) accepts more than RFC 8259: overlong and surrogate UTF-8,
 * NaN and Infinity, single-quoted names, raw control characters inside
 * strings, and numbers such as "1.", "-.3", "-012" or "1e200000" (json-c
 * keeps a number's text). Postgres refuses the UTF-8, NaN and these numbers
 * in text and jsonb columns, so one such request would fail a whole ingest
 * batch: refuse them all here. Returns what is wrong (NULL when nothing)
 * and its offset in *at.
 */
static const char *lex_check(const char *s, size_t n, size_t *at)
{
    const unsigned char *p = (const unsigned char *)s;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        *at = i;
        if (p[i] >= 0x80) {
            size_t len = utf8_seq(p + i, n - i);
            if (!len)
                return "invalid UTF-8";
            i += len - 1;
        } else if (in_str) {
            if (p[i] < 0x20)
                return "control character in a string";
            if (p[i] == '\\' && i + 1 < n && p[i + 1] < 0x80)
                i++;
            else if (p[i] == '"')
                in_str = false;
        } else if (p[i] == '"') {
            in_str = true;
        } else if (p[i] == '\'' || p[i] == 'N' || p[i] == 'I') {
            return "single quote, NaN or Infinity (not JSON)";
        } else if (p[i] == '-' || (p[i] >= '0' && p[i] <= '9')) {
            const char *bad = number_check(p, n, &i);
            if (bad) {
                *at = i;
                return bad;
            }
        } else if (p[i] == '.' || p[i] == '+') {
            return "a number needs a digit before any '.' or exponent";
        }
    }
    return NULL;
}

/* ---- duplicate names ---- */

struct name {
    char *text; /* decoded */
    size_t len, off;
};

struct level {
    bool object, want_name;
    struct name *names;
    size_t n, cap;
};

static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v = v << 4 | (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80)
        return o[0] = (char)cp, 1;
    if (cp < 0x800)
        return o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
    if (cp < 0x10000)
        return o[0] = (char)(0xe0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
               o[2] = (char)(0x80 | (cp & 0x3f)), 3;
    return o[0] = (char)(0xf0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
           o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f)), 4;
}

/* The string s[0..n) (between its quotes, already checked by json-c) with
 * its escapes decoded, into o (room for n bytes: no escape grows). */
static size_t decode_name(const char *s, size_t n, char *o)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            o[k++] = s[i];
            continue;
        }
        char e = s[++i];
        if (e != 'u') {
            static const char from[] = "bfnrt", to[] = "\b\f\n\r\t";
            const char *f = strchr(from, e);
            o[k++] = f ? to[f - from] : e;
            continue;
        }
        unsigned cp = hex4(s + i + 1);
        i += 4;
        if (cp >= 0xd800 && cp <= 0xdbff && i + 6 < n && s[i + 1] == '\\' && s[i + 2] == 'u') {
            unsigned lo = hex4(s + i + 3);
            if (lo >= 0xdc00 && lo <= 0xdfff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
        }
        k += put_utf8(o + k, cp);
    }
    return k;
}

static int name_cmp(const void *a, const void *b)
{
    const struct name *x = a, *y = b;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->text, y->text, m);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Sorts the names of a closed object; returns the offset of a name given
 * twice (its second appearance), or SIZE_MAX. Frees the names. */
static size_t close_object(struct level *l)
{
    size_t dup = SIZE_MAX;
    if (l->n > 1)
        qsort(l->names, l->n, sizeof(*l->names), name_cmp);
    for (size_t i = 1; i < l->n; i++)
        if (l->names[i].len == l->names[i - 1].len &&
            memcmp(l->names[i].text, l->names[i - 1].text, l->names[i].len) == 0 &&
            (dup == SIZE_MAX || l->names[i].off < dup))
            dup = l->names[i].off;
    for (size_t i = 0; i < l->n; i++)
        cs_free(l->names[i].text);
    cs_free(l->names);
    memset(l, 0, sizeof(*l));
    return dup;
}

/*
 * json-c keeps the last of two members with the same name, and cuts a name
 * at a U+0000; a provider may keep the first, or the whole name. A document
 * that means two things is refused: no name twice in one object (compared
 * after decoding escapes, so "a" and "\u0061" are the same name), no NUL in
 * a name. s[0..n) is a document json-c accepted (so at most
 * CS_JSON_MAX_DEPTH deep and well-formed). Returns what is wrong or NULL.
 */
static const char *names_check(const char *s, size_t n, size_t *at)
{
    struct level stack[CS_JSON_MAX_DEPTH + 1];
    int top = -1;
    const char *bad = NULL;
    for (size_t i = 0; i < n && !bad; i++) {
        char c = s[i];
        if (c == '{' || c == '[') {
            cs_assert(top + 1 <= CS_JSON_MAX_DEPTH);
            top++;
            memset(&stack[top], 0, sizeof(stack[top]));
            stack[top].object = stack[top].want_name = c == '{';
        } else if (c == '}' || c == ']') {
            size_t dup = close_object(&stack[top--]);
            if (dup != SIZE_MAX)
                *at = dup, bad = "a name appears twice in one object";
        } else if (c == ',' && top >= 0 && stack[top].object) {
            stack[top].want_name = true;
        } else if (c == '"') {
            size_t start = i + 1, end = start;
            while (s[end] != '"')
                end += s[end] == '\\' ? 2 : 1;
            i = end;
            struct level *l = top >= 0 ? &stack[top] : NULL;
            if (!l || !l->want_name)
                continue;
            l->want_name = false;
            if (l->n == l->cap) {
                l->cap = l->cap ? 2 * l->cap : 8;
                l->names = cs_realloc(l->names, l->cap * sizeof(*l->names));
            }
            struct name *nm = &l->names[l->n++];
            nm->text = cs_malloc(end - start + 1);
            nm->len = decode_name(s + start, end - start, nm->text);
            nm->off = start - 1;
            if (memchr(nm->text, '\0', nm->len))
                *at = nm->off, bad = "a name contains U+0000";
        }
    }
    while (top >= 0)
        close_object(&stack[top--]);
    return bad;
}

enum cs_err cs_json_parse(const char *s, size_t n, json_object **out, char *err)
{
    *out = NULL;
    if (n > INT32_MAX)
        return cs_err_set(err, CS_ERR_TOO_LARGE, "JSON document too large");
    if (memchr(s, '\0', n))
        return cs_err_set(err, CS_ERR_MALFORMED_JSON, "JSON document contains a NUL byte");
    size_t at = 0;
    const char *bad = lex_check(s, n, &at);
    if (bad)
        return cs_err_set(err, CS_ERR_MALFORMED_JSON, "malformed JSON at offset %zu: %s", at, bad);
    json_tokener *tok = json_tokener_new_ex(CS_JSON_MAX_DEPTH);
    if (!tok)
        return cs_err_set(err, CS_ERR_INTERNAL, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *obj = json_tokener_parse_ex(tok, s, (int)n);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue && used == n) {
        /*
         * json-c does not know that a number or literal ("5", "true",
         * "null") ending the input is complete until a delimiter follows:
         * give it one. What still continues is a truly incomplete document.
         */
        obj = json_tokener_parse_ex(tok, " ", 1);
        jerr = json_tokener_get_error(tok);
    }
    enum cs_err rc = CS_OK;
    if (jerr == json_tokener_continue) {
        rc = cs_err_set(err, CS_ERR_MALFORMED_JSON, "JSON document is incomplete");
    } else if (jerr != json_tokener_success) {
        rc = cs_err_set(err, CS_ERR_MALFORMED_JSON, "malformed JSON at offset %zu: %s", used,
                        json_tokener_error_desc(jerr));
    } else {
        /* Success with obj NULL is a top-level null, which is JSON too. */
        for (; used < n; used++)
            if (!strchr(" \t\r\n", s[used])) {
                rc = cs_err_set(err, CS_ERR_MALFORMED_JSON,
                                "unexpected data after the JSON value at offset %zu", used);
                break;
            }
        if (!rc && (bad = names_check(s, n, &at)))
            rc =
                cs_err_set(err, CS_ERR_MALFORMED_JSON, "malformed JSON at offset %zu: %s", at, bad);
    }
    json_tokener_free(tok);
    if (rc) {
        json_object_put(obj);
        return rc;
    }
    *out = obj;
    return CS_OK;
}

enum cs_err cs_json_only_keys(json_object *obj, const char *const *allowed, char *err)
{
    json_object_object_foreach(obj, key, val)
    {
        (void)val;
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok)
            return cs_err_set(err, CS_ERR_INVALID, "unknown field \"%.64s\"", key);
    }
    return CS_OK;
}

static json_object *field(json_object *obj, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v))
        return NULL;
    return v; /* a JSON null is NULL here too */
}

enum cs_err cs_json_str(json_object *obj, const char *key, bool required, size_t maxlen,
                        const char **out, char *err)
{
    json_object *v = field(obj, key);
    *out = NULL;
    if (!v)
        return required ? cs_err_set(err, CS_ERR_INVALID, "\"%s\" is required", key) : CS_OK;
    if (!json_object_is_type(v, json_type_string))
        return cs_err_set(err, CS_ERR_INVALID, "\"%s\" must be a string", key);
    size_t len = (size_t)json_object_get_string_len(v);
    const char *s = json_object_get_string(v);
    if (len > maxlen)
        return cs_err_set(err, CS_ERR_INVALID, "\"%s\" is longer than %zu bytes", key, maxlen);
    if (strlen(s) != len)
        return cs_err_set(err, CS_ERR_INVALID, "\"%s\" contains a NUL character", key);
    if (required && len == 0)
        return cs_err_set(err, CS_ERR_INVALID, "\"%s\" must not be empty", key);
    *out = s;
    return CS_OK;
}

enum cs_err cs_json_int(json_object *obj, const char *key, bool required, int64_t min, int64_t max,
                        int64_t def, int64_t *out, char *err)
{
    json_object *v = field(obj, key);
    *out = def;
    if (!v)
        return required ? cs_err_set(err, CS_ERR_INVALID, "\"%s\" is required", key) : CS_OK;
    int64_t n = 0;
    errno = 0;
    if (json_object_is_type(v, json_type_int)) {
        n = json_object_get_int64(v);
    } else if (json_object_is_type(v, json_type_double)) {
        /* JSON Schema's integer: 16761.0 and 1e3 are integers, 1.5 is not. Within
         * +-2^53 a double holds every integer exactly, so what is read is what was sent. */
        double d = json_object_get_double(v);
        if (!(d == trunc(d) && fabs(d) <= 9007199254740992.0))
            return cs_err_set(err, CS_ERR_INVALID, "\"%s\" must be an integer", key);
        n = (int64_t)d;
    } else {
        return cs_err_set(err, CS_ERR_INVALID, "\"%s\" must be an integer", key);
    }
    if (errno || n < min || n > max)
        return cs_err_set(err, CS_ERR_INVALID, "\"%s\" must be between %lld and %lld", key,
                          (long long)min, (long long)max);
    *out = n;
    return CS_OK;
}

enum cs_err cs_json_typed(json_object *obj, const char *key, bool required, json_type t,
                          json_object **out, char *err)
{
    json_object *v = field(obj, key);
    *out = NULL;
    if (!v)
        return required ? cs_err_set(err, CS_ERR_INVALID, "\"%s\" is required", key) : CS_OK;
    if (!json_object_is_type(v, t))
        return cs_err_set(err, CS_ERR_INVALID, "\"%s\" must be %s %s", key,
                          t == json_type_object || t == json_type_array ? "an" : "a",
                          json_type_to_name(t));
    *out = v;
    return CS_OK;
}

enum cs_err cs_json_bool(json_object *obj, const char *key, bool def, bool *out, char *err)
{
    json_object *v = field(obj, key);
    *out = def;
    if (!v)
        return CS_OK;
    if (!json_object_is_type(v, json_type_boolean))
        return cs_err_set(err, CS_ERR_INVALID, "\"%s\" must be true or false", key);
    *out = json_object_get_boolean(v);
    return CS_OK;
}

const char *cs_json_text(json_object *obj, size_t *len)
{
    return json_object_to_json_string_length(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}
