/*
 * form.c -- application/x-www-form-urlencoded bodies of the decision form.
 *
 * Strict: at most FORM_MAX_FIELDS fields, each name once, names of
 * [a-z_], values percent-decoded ('+' is a space) and refused when a
 * percent escape is malformed, when they hold a NUL (raw or %00: C would
 * cut the value short) or when they are not UTF-8 (what Postgres text and
 * the JSON of the audit log take; cs_json_utf8_valid). The caller caps the
 * body size before calling. A fuzz target drives this parser (tests/fuzz),
 * and tests/unit/test_form.c.
 */
#include <ctype.h>
#include <string.h>

#include "api.h"
#include "cs_json.h"
#include "cs_mem.h"

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/*
 * Decodes s[n] into *out, a new string the caller cs_free()s. Returns NULL,
 * or why the value is refused (and *out is NULL).
 */
static const char *decode(const char *s, size_t n, char **out)
{
    char *d = cs_malloc(n + 1);
    const char *why = NULL;
    size_t o = 0;
    for (size_t i = 0; i < n && !why; i++) {
        if (s[i] == '+') {
            d[o++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                why = "has a malformed percent escape";
            else if (hi == 0 && lo == 0)
                why = "contains a NUL character";
            else
                d[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (s[i] == '\0') {
            why = "contains a NUL character";
        } else {
            d[o++] = s[i];
        }
    }
    d[o] = '\0';
    if (!why && !cs_json_utf8_valid(d, o))
        why = "is not valid UTF-8";
    if (why) {
        cs_free(d);
        d = NULL;
    }
    *out = d;
    return why;
}

enum cs_err form_parse(const char *body, size_t len, struct form *f, char *err)
{
    memset(f, 0, sizeof(*f));
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && body[end] != '&')
            end++;
        const char *eq = memchr(body + i, '=', end - i);
        size_t nlen = eq ? (size_t)(eq - (body + i)) : end - i;
        if (end == i) { /* an empty pair ("a=1&&b=2") */
            i = end + 1;
            continue;
        }
        if (f->n == FORM_MAX_FIELDS) {
            form_free(f);
            return cs_err_set(err, CS_ERR_INVALID, "too many form fields");
        }
        for (size_t k = 0; k < nlen; k++)
            if (!(islower((unsigned char)body[i + k]) || body[i + k] == '_')) {
                form_free(f);
                return cs_err_set(err, CS_ERR_INVALID, "bad form field name");
            }
        char *name = cs_strndup(body + i, nlen), *value = NULL;
        const char *why = NULL;
        if (nlen == 0)
            why = "has no name";
        else if (form_get(f, name))
            why = "is repeated";
        else if (eq)
            why = decode(eq + 1, (size_t)(body + end - (eq + 1)), &value);
        else
            value = cs_strdup("");
        if (why) {
            cs_err_set(err, CS_ERR_INVALID, "form field \"%.64s\" %s", name, why);
            cs_free(name);
            cs_free(value);
            form_free(f);
            return CS_ERR_INVALID;
        }
        f->names[f->n] = name;
        f->values[f->n++] = value;
        i = end + 1;
    }
    return CS_OK;
}

const char *form_get(const struct form *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0)
            return f->values[i];
    return NULL;
}

void form_free(struct form *f)
{
    for (int i = 0; i < f->n; i++) {
        cs_free(f->names[i]);
        cs_free(f->values[i]);
    }
    f->n = 0;
}
