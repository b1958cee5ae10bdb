/*
 * form.c -- application/x-www-form-urlencoded bodies of the decision form.
 *
 * Strict: at most FORM_MAX_FIELDS fields, each name once, names of
 * [a-z_], values percent-decoded ('+' is a space) and refused when a
 * percent escape is malformed or decodes to a NUL. The caller caps the body
 * size before calling. A fuzz target drives this parser (tests/fuzz).
 */
#include <ctype.h>
#include <string.h>

#include "api.h"
#include "cs_mem.h"

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes s[n] into a new string; NULL when malformed. */
static char *decode(const char *s, size_t n)
{
    char *out = cs_malloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                cs_free(out);
                return NULL;
            }
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
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
        char *name = cs_strndup(body + i, nlen);
        char *value = eq ? decode(eq + 1, (size_t)(body + end - (eq + 1))) : cs_strdup("");
        if (!value || nlen == 0 || form_get(f, name)) {
            cs_free(name);
            cs_free(value);
            form_free(f);
            return cs_err_set(err, CS_ERR_INVALID, "malformed or repeated form field");
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
