/*
 * test_envsig.c -- unit tests of envelope signature headers (lib/cs_envsig.c).
 *
 * A header signed here parses and verifies; the documented layout (the MAC
 * over "<t>." || value, keyed with the 64-character secret's ASCII bytes)
 * gives a fixed vector that the Python and TypeScript SDK tests check too,
 * so the three signers cannot drift apart. Any change of the value, of t,
 * of the MAC or of the key is refused; a header missing t, k or v1, with a
 * part twice, a malformed key id, upper-case or short hex, or a t that is
 * not 1-12 digits is CS_ERR_UNAUTHENTICATED; unknown names are ignored.
 */
#include <string.h>

#include "cs_envsig.h"
#include "cs_test.h"

#define SECRET "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define KID "csk_00112233aabbccdd"
#define VALUE "{\"request_id\":\"r1\",\"agent\":\"bot1\"}"
/* HMAC-SHA256(SECRET, "1700000000." VALUE), computed with Python's hmac module. */
#define VECTOR "2ea8549c31b92616b700405b319ad33e82a9b21ec01dea7f5ca8362fe651330a"

static enum cs_err parse(const char *h, struct cs_envsig *sig)
{
    char err[CS_ERRLEN];
    return cs_envsig_parse(h, strlen(h), sig, err);
}

CS_TEST(documented_vector)
{
    char h[CS_ENVSIG_HEADER_MAX];
    cs_envsig_sign(KID, SECRET, 64, 1700000000, VALUE, strlen(VALUE), h);
    CS_CHECK_EQ_STR(h, "t=1700000000,k=" KID ",v1=" VECTOR);
    struct cs_envsig sig;
    if (!CS_CHECK_RC(parse(h, &sig), CS_OK))
        return;
    CS_CHECK_EQ_INT(sig.t, 1700000000);
    CS_CHECK_EQ_STR(sig.kid, KID);
    CS_CHECK(cs_envsig_verify(&sig, SECRET, 64, VALUE, strlen(VALUE)));
}

CS_TEST(changes_are_refused)
{
    char h[CS_ENVSIG_HEADER_MAX];
    struct cs_envsig sig;
    cs_envsig_sign(KID, SECRET, 64, 1700000000, VALUE, strlen(VALUE), h);
    CS_CHECK_RC(parse(h, &sig), CS_OK);
    char v[] = VALUE;
    for (size_t i = 0; i < strlen(v); i++) {
        v[i] ^= 1;
        CS_CHECK(!cs_envsig_verify(&sig, SECRET, 64, v, strlen(v)));
        v[i] ^= 1;
    }
    CS_CHECK(!cs_envsig_verify(&sig, SECRET, 64, VALUE, strlen(VALUE) - 1));
    char other[] = SECRET;
    other[63] = '0';
    CS_CHECK(!cs_envsig_verify(&sig, other, 64, VALUE, strlen(VALUE)));
    /* Another t with the same MAC. */
    char moved[CS_ENVSIG_HEADER_MAX];
    memcpy(moved, h, sizeof(moved));
    moved[2] = '2';
    CS_CHECK_RC(parse(moved, &sig), CS_OK);
    CS_CHECK(!cs_envsig_verify(&sig, SECRET, 64, VALUE, strlen(VALUE)));
    /* Every single hex digit of the MAC. */
    char *mac = strstr(h, "v1=") + 3;
    for (int i = 0; i < 64; i++) {
        char was = mac[i];
        mac[i] = was == '0' ? '1' : '0';
        CS_CHECK_RC(parse(h, &sig), CS_OK);
        CS_CHECK(!cs_envsig_verify(&sig, SECRET, 64, VALUE, strlen(VALUE)));
        mac[i] = was;
    }
}

CS_TEST(order_and_unknown_names)
{
    struct cs_envsig sig;
    CS_CHECK_RC(parse("v1=" VECTOR ",k=" KID ",t=1700000000", &sig), CS_OK);
    CS_CHECK(cs_envsig_verify(&sig, SECRET, 64, VALUE, strlen(VALUE)));
    CS_CHECK_RC(parse("t=1700000000,k=" KID ",v2=zz,v1=" VECTOR ",x", &sig),
                CS_ERR_UNAUTHENTICATED); /* "x" has no '=' */
    CS_CHECK_RC(parse("t=1700000000,k=" KID ",v2=zz,v1=" VECTOR, &sig), CS_OK);
}

CS_TEST(malformed_headers)
{
    static const char *const bad[] = {
        "",
        "t=1700000000,k=" KID,
        "k=" KID ",v1=" VECTOR,
        "t=1700000000,v1=" VECTOR,
        "t=1700000000,t=1700000000,k=" KID ",v1=" VECTOR,
        "t=1700000000,k=" KID ",v1=" VECTOR ",v1=" VECTOR,
        "t=,k=" KID ",v1=" VECTOR,
        "t=-1,k=" KID ",v1=" VECTOR,
        "t=1234567890123,k=" KID ",v1=" VECTOR,
        "t=17000000x0,k=" KID ",v1=" VECTOR,
        "t=1700000000,k=csk_00112233AABBCCDD,v1=" VECTOR,
        "t=1700000000,k=ak_00112233aabbccdd0,v1=" VECTOR,
        "t=1700000000,k=csk_00112233aabbcc,v1=" VECTOR,
        "t=1700000000,k=" KID
        ",v1=2EA8549C31B92616B700405B319AD33E82A9B21EC01DEA7F5CA8362FE651330A",
        "t=1700000000,k=" KID ",v1=2ea8549c",
        "t=1700000000,k=" KID ",v1=" VECTOR "00",
        "T=1700000000,K=" KID ",V1=" VECTOR,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cs_envsig sig;
        if (!CS_CHECK_RC(parse(bad[i], &sig), CS_ERR_UNAUTHENTICATED))
            printf("    header: %s\n", bad[i]);
    }
    char huge[2000];
    memset(huge, 'a', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    struct cs_envsig sig;
    CS_CHECK_RC(parse(huge, &sig), CS_ERR_UNAUTHENTICATED);
}

CS_TEST(key_ids)
{
    CS_CHECK(cs_envsig_kid_valid(KID));
    CS_CHECK(!cs_envsig_kid_valid("csk_00112233aabbccd"));
    CS_CHECK(!cs_envsig_kid_valid("csk_00112233aabbccdde"));
    CS_CHECK(!cs_envsig_kid_valid("csk_00112233aabbccdg"));
    CS_CHECK(!cs_envsig_kid_valid("xsk_00112233aabbccdd"));
}

CS_TEST_MAIN(CS_RUN(documented_vector), CS_RUN(changes_are_refused),
             CS_RUN(order_and_unknown_names), CS_RUN(malformed_headers), CS_RUN(key_ids))
