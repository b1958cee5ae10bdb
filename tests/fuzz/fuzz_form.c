/*
 * fuzz_form.c -- libFuzzer target: the approval decision form
 * (application/x-www-form-urlencoded, api/form.c) that page_decide reads
 * from an approver's browser -- or from anyone who posts to the page.
 *
 * Input: the raw request body. form_parse either refuses it (and leaves
 * nothing allocated) or returns at most FORM_MAX_FIELDS fields whose
 * names are non-empty [a-z_]+ and distinct, and form_get finds each one's
 * value, and each value is RFC 3629 UTF-8 (a value with a raw or encoded
 * NUL is refused: C would cut it short, so a value never holds fewer bytes
 * than were decoded). The parsed form must survive a round trip:
 * re-encoded with every value byte percent-escaped, it parses to the same
 * fields. Also fed the
 * same bytes without a NUL terminator, so reading past `len` is caught.
 */
#include "api.h"
#include "cs_buf.h"
#include "cs_json.h"
#include "fuzz.h"

static void check_form(const struct form *f)
{
    FUZZ_CHECK(f->n >= 0 && f->n <= FORM_MAX_FIELDS);
    for (int i = 0; i < f->n; i++) {
        FUZZ_CHECK(f->names[i][0] != '\0');
        for (const char *c = f->names[i]; *c; c++)
            FUZZ_CHECK((*c >= 'a' && *c <= 'z') || *c == '_');
        FUZZ_CHECK(form_get(f, f->names[i]) == f->values[i]);
        FUZZ_CHECK(cs_json_utf8_valid(f->values[i], strlen(f->values[i])));
        for (int j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(f->names[i], f->names[j]) != 0);
    }
}

/* The form as a browser would send it, every value byte escaped. */
static char *encode(const struct form *f, size_t *len)
{
    static const char hex[] = "0123456789ABCDEF";
    struct cs_buf b;
    cs_buf_init(&b, 1 << 20);
    for (int i = 0; i < f->n; i++) {
        FUZZ_CHECK(cs_buf_printf(&b, "%s%s=", i ? "&" : "", f->names[i]) == CS_OK);
        for (const unsigned char *c = (const unsigned char *)f->values[i]; *c; c++) {
            char e[3] = {'%', hex[*c >> 4], hex[*c & 15]};
            FUZZ_CHECK(cs_buf_append(&b, e, 3) == CS_OK);
        }
    }
    return cs_buf_take(&b, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: no terminator for the parser to lean on. */
    char *body = cs_malloc(size ? size : 1);
    memcpy(body, data, size);
    struct form f;
    char err[CS_ERRLEN] = "";
    enum cs_err rc = form_parse(body, size, &f, err);
    if (rc != CS_OK) {
        FUZZ_CHECK(rc == CS_ERR_INVALID && err[0] && f.n == 0);
        form_free(&f);
        cs_free(body);
        return 0;
    }
    check_form(&f);

    size_t len = 0;
    char *again = encode(&f, &len);
    struct form g;
    rc = form_parse(again, len, &g, err);
    FUZZ_CHECK(rc == CS_OK);
    FUZZ_CHECK(g.n == f.n);
    for (int i = 0; i < f.n; i++) {
        FUZZ_CHECK(strcmp(g.names[i], f.names[i]) == 0);
        FUZZ_CHECK(strcmp(g.values[i], f.values[i]) == 0);
    }
    form_free(&g);
    cs_free(again);
    form_free(&f);
    cs_free(body);
    return 0;
}
