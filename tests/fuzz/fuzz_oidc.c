/*
 * fuzz_oidc.c -- libFuzzer target: OpenID Connect ID tokens and JWKS
 * (lib/cs_idtoken.c), what the api verifies after a provider's redirect.
 *
 * Two halves on every input:
 *   1. Input = JWKS text, a NUL byte, a token. cs_jwks_parse gives CS_OK
 *      with 1..64 keys or CS_ERR_INVALID with a detail; when it refuses,
 *      the fixed key set below is used instead. cs_oidc_verify_id_token
 *      answers CS_OK or CS_ERR_UNAUTHENTICATED, with a detail and a zeroed
 *      identity when refused; the detail never holds a part of the token.
 *      An accepted token is accepted only for its nonce, its client and
 *      before its expiry.
 *   2. An oracle of the rules: the first 12 bytes choose a header (RS256
 *      or ES256 with or without kid, a kid of the other type, an unknown
 *      kid, HS256, none), iss, aud, azp, exp/iat/nbf around now, nonce,
 *      email and email_verified; the rest (300 bytes at most) is the sub. The claims are signed
 *      with the fixed keys and the verifier must accept exactly when every
 *      rule of cs_idtoken.h holds, and then copy sub, email and
 *      email_verified as given.
 * The keys are fixed (test keys, PEM below) so the seeds in
 * corpus/oidc/ hold tokens that verify.
 */
#include <json-c/json.h>
#include <stdlib.h>

#include "../unit/oidc_fixture.h"
#include "cs_idtoken.h"
#include "cs_json.h"
#include "fuzz.h"

#define ISS "https://login.example.com/realms/x"
#define CLIENT "countersign"
#define NONCE "n-0S6_WzA2Mj"
#define NOW 1800000000LL
#define LEEWAY 60

static const char rsa_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQDQe2uGAyO924Y7\n"
                              "9T7I3NcX3L/Aqr5Q6O7bynhjn+HOCUmVhbmtDsQ+GfUiFm2T4ibQvx3NplL8KSIf\n"
                              "+L6W8irB2uhaho0zv2FE+pCJp8yVKddR8FB3BP55o8kO60uI53Cdn1ztpp+8OInJ\n"
                              "+L49jqiw99bmglNP3BXzevVX3mmkfnATJtLNTGLNst7ptocx4ScLc7wQOhrmTCOI\n"
                              "nu1BsQwaAhHmpO1tv+9gEgofM//7aZG6od6CaJeZyvTbXsL/jiZxZkzYYwkiPxgO\n"
                              "X5yqGem6ix8K0JnrZdizdpmhPgECYGhu5c/WoOoWG3yMeS90FsC5YXB5NZeH7ehU\n"
                              "xQukVzytAgMBAAECggEAA4i4gdXjrZrX/kszs4miYco6H3aXRvnz3bcqpvGuYmTn\n"
                              "IdA9OgaAVXObhx+Q+9lGZfJ73wSgmZuSc3Yu1HXiyY2xlzCXDBA9gnvjUT2cjl4X\n"
                              "Q0MncgicP/BmN55cB5mVNRJfARHeElLnQNO6dWZX9u+RChOeCuzoVMvkvc33GwoY\n"
                              "Q6+DzhkyIPbtVd0BnrpzC82Esw5YW11AIFJwj8QkC84zalxefZE1Cqvyk8GpA9NW\n"
                              "9w/Eay4Pe5OuIbIROXURAQ46n813tBQNMb+k+w3f+Wq7b38pjFMHy/vXcxcI8QXs\n"
                              "/QB7i50biZp7nPl0KFuxDvB6ib9hsz+GcFMgnCyyFwKBgQDqwC6OCbzLuZgqhaSS\n"
                              "b5DXYHfOf7++DHhtO3ZLqkzCgX9lnjJMmjYla5pP9FF+QpltJSvfWpOBXpKZY0Mt\n"
                              "4EC7RcrMmzyobE8j5p53Ou5yJFDlEZh/Jjb3NAgOftSbMn5y8VGdukRBPegHv2RO\n"
                              "WKoe7ypLk60DJ5SRhtv6XdofhwKBgQDjWoXIfsNfbhbE9CQZqgMxdhWiO8hy6VtJ\n"
                              "YPX879T81cMN25qxsDXpRVB1JMzmBzuS21GUbOQHEVvVp1op9uwRpN1dIPOkcqfa\n"
                              "wEnA/u4jrgekRC1uI7HD71O9JEWE+/BlmdBXUQuGSCy5Ro5twQN1NYM35Mv0kND7\n"
                              "LVvttL7HKwKBgQDfH6lgQesbrBzwlbP1p2sA+2UEdjH2Xn38PN9UTdrFqTZAjNt8\n"
                              "Kbs7WAoE4tCudHjF3+XSVpILDavDdTB+Iz8DgPOgBBDkeIXENsf5xZ6sCM6G23GZ\n"
                              "sOXfkqnxtSU5GgZMFAiiJVAIvuGSs5yQRv/zhRkrWoLAk9dHduoRDzFqcwKBgQCc\n"
                              "47XYcqmN7CFoTnWvBCRp+GvbZVfg/GnTTEbUAgi/ZR/SK04n+kpprDxmaju/LRSO\n"
                              "NiyouS/uNKtj17WfqdakIlnjzz5yp/BvQyxiM0nQc2Kwl5+mFpmwdTIbHrGeoGD3\n"
                              "K9qatsG2K445WJgm4v/o3UGsy4V3QowEGPwMICNauwKBgQC/6uJxYIMIhX+eJkKX\n"
                              "BY86vA9yvRHcXgK4MhBh0ATXu+5LfDEILKf9fptN3iXHpoiuvFBtJGpNwNkcBxFD\n"
                              "LBs4kd2E8tx9LfiD9AiMRZyVwC6UOxhD/4dytjFu4pP7WCMEOSSKkTnoa0CbCoST\n"
                              "+wDsAe5H+pTVJImMGMB78ir/IA==\n"
                              "-----END PRIVATE KEY-----\n";
static const char ec_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgK6Y2n8ynCySZktDZ\n"
                             "6v2LPvKsFilsFS29uxRI7IK5aS6hRANCAASX7fb1t5l9QjzGXt3rlGvvrPGNP3+Q\n"
                             "2O8oL9kCjlwAMkr/MKjmIDPcoui4j0K74/rHZ/j5/MCDxjc7159vDW0J\n"
                             "-----END PRIVATE KEY-----\n";

static struct fx_key rsa, ec;
static struct cs_jwks *fixed;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fx_key_pem(&rsa, "rsa-1", rsa_pem);
    fx_key_pem(&ec, "ec-1", ec_pem);
    char *j[2] = {fx_jwk(&rsa, "'use':'sig','alg':'RS256',", NULL),
                  fx_jwk(&ec, "'use':'sig',", NULL)};
    char *set = fx_jwks((const char *const *)j, 2), err[CS_ERRLEN];
    FUZZ_CHECK(cs_jwks_parse(set, strlen(set), &fixed, err) == CS_OK);
    cs_free(j[0]);
    cs_free(j[1]);
    cs_free(set);
    return 0;
}

/* True when err holds any 8-byte run of the token's header or payload part. */
static bool echoes(const char *err, const char *jwt)
{
    const char *d2 = strrchr(jwt, '.');
    size_t n = d2 ? (size_t)(d2 - jwt) : strlen(jwt);
    for (size_t i = 0; i + 8 <= n; i++) {
        char run[9];
        memcpy(run, jwt + i, 8);
        run[8] = '\0';
        if (!strchr(run, '.') && strstr(err, run))
            return true;
    }
    return false;
}

static void verify_any(const uint8_t *data, size_t size)
{
    size_t jlen, tlen;
    const uint8_t *tok = fuzz_split(data, size, 0, &jlen, &tlen);
    struct cs_jwks *k = NULL;
    char err[CS_ERRLEN] = "";
    enum cs_err rc = cs_jwks_parse((const char *)data, jlen, &k, err);
    FUZZ_CHECK(rc == CS_OK || rc == CS_ERR_INVALID);
    FUZZ_CHECK((rc == CS_OK) == (k != NULL));
    FUZZ_CHECK(rc == CS_OK || err[0]);
    FUZZ_CHECK(rc || (cs_jwks_count(k) >= 1 && cs_jwks_count(k) <= CS_OIDC_JWKS_KEYS));
    const struct cs_jwks *keys = k ? k : fixed;

    char *jwt = fuzz_cstr(tok, tlen);
    struct cs_oidc_identity id;
    bool unknown = false;
    err[0] = '\0';
    rc = cs_oidc_verify_id_token(keys, jwt, ISS, CLIENT, NONCE, NOW, LEEWAY, NULL, &id, &unknown,
                                 err);
    FUZZ_CHECK(rc == CS_OK || rc == CS_ERR_UNAUTHENTICATED);
    if (rc) {
        FUZZ_CHECK(err[0] && strncmp(err, "ID token refused: ", 18) == 0);
        FUZZ_CHECK(id.sub[0] == '\0' && id.iss[0] == '\0' && id.email[0] == '\0');
        FUZZ_CHECK(!echoes(err, jwt));
    } else {
        FUZZ_CHECK(!unknown && strcmp(id.iss, ISS) == 0);
        FUZZ_CHECK(id.sub[0] && strlen(id.sub) <= 255);
        FUZZ_CHECK(cs_oidc_verify_id_token(keys, jwt, ISS, CLIENT, "other", NOW, LEEWAY, NULL, &id,
                                           NULL, err) == CS_ERR_UNAUTHENTICATED);
        FUZZ_CHECK(cs_oidc_verify_id_token(keys, jwt, ISS, "other", NONCE, NOW, LEEWAY, NULL, &id,
                                           NULL, err) == CS_ERR_UNAUTHENTICATED);
        FUZZ_CHECK(cs_oidc_verify_id_token(keys, jwt, ISS, CLIENT, NONCE, INT64_MAX / 4, LEEWAY,
                                           NULL, &id, NULL, err) == CS_ERR_UNAUTHENTICATED);
    }
    cs_free(jwt);
    cs_jwks_free(k);
}

/* ---- the oracle ---- */

static void add_str(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, json_object_new_string(v));
}

/* A time claim from byte b: bit 7 absent; else NOW + (b & 0x7f) * 5 - 320 (-320..+315 s). */
static bool add_time(json_object *o, const char *k, uint8_t b, int64_t *t)
{
    if (b & 0x80)
        return false;
    *t = NOW + (int64_t)(b & 0x7f) * 5 - 320;
    json_object_object_add(o, k, json_object_new_int64(*t));
    return true;
}

static void oracle(const uint8_t *data, size_t size)
{
    if (size < 12)
        return;
    static const char *const headers[] = {"{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}",
                                          "{\"alg\":\"ES256\",\"kid\":\"ec-1\"}",
                                          "{\"alg\":\"RS256\"}",
                                          "{\"alg\":\"ES256\",\"typ\":\"JWT\"}",
                                          "{\"alg\":\"RS256\",\"kid\":\"ec-1\"}",
                                          "{\"alg\":\"RS256\",\"kid\":\"zz\"}",
                                          "{\"alg\":\"HS256\",\"kid\":\"rsa-1\"}",
                                          "{\"alg\":\"none\"}"};
    int h = data[0] % 8;
    bool ok = h < 4;
    json_object *c = json_object_new_object();

    switch (data[1] % 4) { /* iss */
    case 0: add_str(c, "iss", ISS); break;
    case 1: add_str(c, "iss", ISS "/"), ok = false; break;
    case 2: ok = false; break;
    default: json_object_object_add(c, "iss", json_object_new_int(1)), ok = false;
    }
    int naud = 1;
    json_object *aud = json_object_new_array();
    switch (data[2] % 6) { /* aud */
    case 0: json_object_put(aud), aud = json_object_new_string(CLIENT); break;
    case 1: json_object_array_add(aud, json_object_new_string(CLIENT)); break;
    case 2:
        json_object_array_add(aud, json_object_new_string("other"));
        json_object_array_add(aud, json_object_new_string(CLIENT));
        naud = 2;
        break;
    case 3: json_object_array_add(aud, json_object_new_string("other")), ok = false; break;
    case 4: json_object_put(aud), aud = json_object_new_string(CLIENT "x"), ok = false; break;
    default: json_object_put(aud), aud = NULL, ok = false;
    }
    if (aud)
        json_object_object_add(c, "aud", aud);
    switch (data[3] % 4) { /* azp */
    case 0: ok &= naud == 1; break;
    case 1: add_str(c, "azp", CLIENT); break;
    case 2: add_str(c, "azp", "other"), ok = false; break;
    default: json_object_object_add(c, "azp", json_object_new_int(7)), ok = false;
    }
    int64_t exp = 0, iat = 0, nbf = 0;
    ok &= add_time(c, "exp", data[4], &exp) && exp > NOW - LEEWAY;
    ok &= add_time(c, "iat", data[5], &iat) && iat <= NOW + LEEWAY;
    if (add_time(c, "nbf", data[6], &nbf))
        ok &= nbf <= NOW + LEEWAY;
    switch (data[7] % 4) { /* nonce */
    case 0: add_str(c, "nonce", NONCE); break;
    case 1: ok = false; break;
    case 2: add_str(c, "nonce", NONCE "x"), ok = false; break;
    default: add_str(c, "nonce", "n-0S6_WzA2Mk"), ok = false;
    }
    char email[400] = "";
    size_t elen = (size_t[]){0, 3, 319, 320, 399}[data[8] % 5];
    memset(email, 'e', elen);
    email[elen] = '\0';
    if (data[8] % 5)
        add_str(c, "email", email);
    bool copied = elen < 320;
    int ev = data[9] % 4; /* email_verified: absent, true, false, "true" */
    if (ev == 1 || ev == 2)
        json_object_object_add(c, "email_verified", json_object_new_boolean(ev == 1));
    else if (ev == 3)
        add_str(c, "email_verified", "true");
    /* data[10], data[11]: reserved; the rest is the sub (absent when empty). */
    const char *sub = (const char *)data + 12;
    size_t slen = size - 12 > 300 ? 300 : size - 12;
    if (slen)
        json_object_object_add(c, "sub", json_object_new_string_len(sub, (int)slen));
    ok &= slen >= 1 && slen <= 255 && !memchr(sub, 0, slen) && cs_json_utf8_valid(sub, slen);
    /* A sub that is not UTF-8 makes the payload unreadable: refused anyway. */

    const char *payload = json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN);
    char *jwt;
    if (h == 6) { /* HS256 keyed with anything: never accepted */
        char *in = fx_signing_input_json(headers[h], payload);
        jwt = cs_asprintf("%s.c2lnbmF0dXJl", in);
        cs_free(in);
    } else if (h == 7) {
        char *in = fx_signing_input_json(headers[h], payload);
        jwt = cs_asprintf("%s.", in);
        cs_free(in);
    } else {
        jwt = fx_sign_json(h == 1 || h == 3 ? &ec : &rsa, headers[h], payload);
    }
    struct cs_oidc_identity id;
    char err[CS_ERRLEN] = "";
    enum cs_err rc =
        cs_oidc_verify_id_token(fixed, jwt, ISS, CLIENT, NONCE, NOW, LEEWAY, NULL, &id, NULL, err);
    if (ok && rc)
        fprintf(stderr, "refused: %s\n", err);
    FUZZ_CHECK((rc == CS_OK) == ok);
    if (rc == CS_OK) {
        FUZZ_CHECK(strlen(id.sub) == slen && memcmp(id.sub, sub, slen) == 0);
        FUZZ_CHECK(strcmp(id.email, copied ? email : "") == 0);
        FUZZ_CHECK(id.email_verified == (ev == 1));
    }
    cs_free(jwt);
    json_object_put(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    verify_any(data, size);
    oracle(data, size);
    return 0;
}
