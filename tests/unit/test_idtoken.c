/*
 * test_idtoken.c -- unit tests of JWKS parsing and ID-token verification
 * (lib/cs_idtoken.c).
 *
 * Keys are generated here (RSA-2048, RSA-1024, EC P-256), published as a
 * JWKS built from their public numbers, and tokens are signed here as a
 * provider signs them (oidc_fixture.h). A valid RS256 and ES256 token is
 * accepted with the identity filled; each rule of cs_idtoken.h is then
 * broken once and must be refused with CS_ERR_UNAUTHENTICATED, a detail
 * naming the check and nothing of the token: wrong iss or aud, several
 * audiences without azp, expiry and iat/nbf beyond the leeway, alg none,
 * the HS256 key-confusion attack, a key of the wrong type, an unknown kid,
 * nonce, tampering, malformed base64, oversize. Keys a verifier must not
 * use (1024-bit RSA, use=enc, mismatched alg) are skipped by the parser.
 */
#include <openssl/pem.h>
#include <string.h>

#include "cs_buf.h"
#include "cs_idtoken.h"
#include "cs_mem.h"
#include "cs_test.h"
#include "oidc_fixture.h"

#define ISS "https://login.example.com/realms/x"
#define CLIENT "countersign"
#define NONCE "n-0S6_WzA2Mj"
#define NOW 1800000000LL
#define LEEWAY 60

static struct fx_key rsa, ec;   /* in the set */
static struct fx_key ec2, weak; /* not: another P-256 key, an RSA-1024 key */
static struct cs_jwks *keys;    /* {rsa, ec} */

static void setup(void)
{
    if (keys)
        return;
    fx_key_new(&rsa, "rsa-1", 2048);
    fx_key_new(&ec, "ec-1", 0);
    fx_key_new(&ec2, "ec-2", 0);
    fx_key_new(&weak, "weak", 1024);
    char *j[2] = {fx_jwk(&rsa, "'use':'sig','alg':'RS256',", NULL),
                  fx_jwk(&ec, "'use':'sig',", NULL)};
    char *set = fx_jwks((const char *const *)j, 2);
    char err[CS_ERRLEN] = "";
    cs_assert(cs_jwks_parse(set, strlen(set), &keys, err) == CS_OK);
    cs_free(j[0]);
    cs_free(j[1]);
    cs_free(set);
}

/*
 * Standard claims followed by `extra` ('-quoted members, each ending in a
 * comma): a member of extra replaces the standard one of its name (a claim
 * set with a name twice is refused, as RFC 7519 allows).
 */
static char *claims(const char *extra)
{
    char iat[64], exp[64];
    snprintf(iat, sizeof(iat), "'iat':%lld", (long long)(NOW - 10));
    snprintf(exp, sizeof(exp), "'exp':%lld", (long long)(NOW + 300));
    const char *std[] = {"'iss':'" ISS "'",
                         "'aud':'" CLIENT "'",
                         "'sub':'alice-42'",
                         "'email':'alice@example.test'",
                         "'email_verified':true",
                         "'name':'Alice'",
                         "'nonce':'" NONCE "'",
                         iat,
                         exp};
    struct cs_buf b;
    cs_buf_init(&b, 1 << 16);
    cs_assert(cs_buf_puts(&b, "{") == CS_OK);
    for (size_t i = 0; i < sizeof(std) / sizeof(std[0]); i++) {
        size_t name = (size_t)(strchr(std[i], ':') - std[i]) + 1; /* 'name': */
        char *key = cs_strndup(std[i], name);
        bool replaced = strstr(extra, key) != NULL;
        cs_free(key);
        if (replaced)
            continue;
        cs_assert(cs_buf_puts(&b, std[i]) == CS_OK);
        cs_assert(cs_buf_puts(&b, ",") == CS_OK);
    }
    cs_assert(cs_buf_puts(&b, extra) == CS_OK);
    b.data[b.len - 1] = '}'; /* the last comma */
    return cs_buf_take(&b, NULL);
}

/* Verifies jwt with the standard expectations; *id and err for the caller to inspect. */
static enum cs_err check(const char *jwt, struct cs_oidc_identity *id, char *err)
{
    return cs_oidc_verify_id_token(keys, jwt, ISS, CLIENT, NONCE, NOW, LEEWAY, NULL, id, NULL, err);
}

/* Signs claims(extra) with k and expects rc; err must contain `why` when refused. */
static void expect(const struct fx_key *k, const char *extra, enum cs_err want, const char *why)
{
    char *h = fx_header(k), *c = claims(extra), *t = fx_sign(k, h, c);
    struct cs_oidc_identity id;
    char err[CS_ERRLEN] = "";
    CS_CHECK_RC(check(t, &id, err), want);
    if (want != CS_OK) {
        CS_CHECK_HAS(err, why);
        CS_CHECK(strstr(err, NONCE) == NULL && strstr(err, "alice") == NULL);
        CS_CHECK_EQ_STR(id.sub, "");
    }
    cs_free(h);
    cs_free(c);
    cs_free(t);
}

CS_TEST(valid_rs256_and_es256)
{
    setup();
    CS_CHECK_EQ_INT(cs_jwks_count(keys), 2);
    const struct fx_key *ks[2] = {&rsa, &ec};
    for (int i = 0; i < 2; i++) {
        char *h = fx_header(ks[i]), *c = claims(""), *t = fx_sign(ks[i], h, c);
        struct cs_oidc_identity id;
        char err[CS_ERRLEN] = "";
        bool unknown = true;
        CS_CHECK_RC(cs_oidc_verify_id_token(keys, t, ISS, CLIENT, NONCE, NOW, LEEWAY, NULL, &id,
                                            &unknown, err),
                    CS_OK);
        CS_CHECK(!unknown);
        CS_CHECK_EQ_STR(id.iss, ISS);
        CS_CHECK_EQ_STR(id.sub, "alice-42");
        CS_CHECK_EQ_STR(id.email, "alice@example.test");
        CS_CHECK(id.email_verified);
        CS_CHECK_EQ_STR(id.name, "Alice");
        cs_free(h);
        cs_free(c);
        cs_free(t);
    }
}

CS_TEST(audience)
{
    setup();
    expect(&rsa, "'aud':'someone-else',", CS_ERR_UNAUTHENTICATED, "aud does not name");
    expect(&rsa, "'aud':['" CLIENT "','other'],", CS_ERR_UNAUTHENTICATED, "azp is missing");
    expect(&rsa, "'aud':['" CLIENT "','other'],'azp':'" CLIENT "',", CS_OK, "");
    expect(&rsa, "'aud':['" CLIENT "'],", CS_OK, "");
    expect(&rsa, "'aud':['other'],", CS_ERR_UNAUTHENTICATED, "aud does not name");
    expect(&rsa, "'aud':[],", CS_ERR_UNAUTHENTICATED, "aud");
    expect(&rsa, "'aud':5,", CS_ERR_UNAUTHENTICATED, "aud");
    expect(&rsa, "'aud':null,", CS_ERR_UNAUTHENTICATED, "aud is missing");
    expect(&rsa, "'azp':'other',", CS_ERR_UNAUTHENTICATED, "azp is not this client");
    /* A NUL would cut "countersign\u0000x" to "countersign" as a C string. */
    expect(&rsa, "'aud':'" CLIENT "\\u0000x',", CS_ERR_UNAUTHENTICATED, "aud does not name");
    expect(&rsa, "'aud':['" CLIENT "\\u0000x'],", CS_ERR_UNAUTHENTICATED, "NUL");
    expect(&rsa, "'aud':['" CLIENT "','x'],'azp':'" CLIENT "\\u0000',", CS_ERR_UNAUTHENTICATED,
           "azp");
}

CS_TEST(issuer_and_subject)
{
    setup();
    expect(&rsa, "'iss':'https://evil.example.com/realms/x',", CS_ERR_UNAUTHENTICATED, "iss");
    expect(&rsa, "'iss':'" ISS "/',", CS_ERR_UNAUTHENTICATED, "iss is not the configured");
    expect(&rsa, "'sub':'',", CS_ERR_UNAUTHENTICATED, "sub");
    expect(&rsa, "'sub':42,", CS_ERR_UNAUTHENTICATED, "sub");
    expect(&rsa, "'sub':'alice-42\\u0000admin',", CS_ERR_UNAUTHENTICATED, "sub");
    expect(&rsa, "'iss':'" ISS "\\u0000',", CS_ERR_UNAUTHENTICATED, "iss");
    expect(&rsa, "'nonce':'" NONCE "\\u0000',", CS_ERR_UNAUTHENTICATED, "nonce");
    char big[300], extra[400];
    memset(big, 'a', 256);
    big[256] = '\0';
    snprintf(extra, sizeof(extra), "'sub':'%s',", big);
    expect(&rsa, extra, CS_ERR_UNAUTHENTICATED, "sub");
    big[255] = '\0';
    snprintf(extra, sizeof(extra), "'sub':'%s',", big);
    expect(&rsa, extra, CS_OK, "");
}

CS_TEST(times_and_leeway)
{
    setup();
    char extra[200];
    snprintf(extra, sizeof(extra), "'exp':%lld,", NOW - LEEWAY - 1);
    expect(&rsa, extra, CS_ERR_UNAUTHENTICATED, "expired");
    snprintf(extra, sizeof(extra), "'exp':%lld,", NOW - LEEWAY + 1);
    expect(&ec, extra, CS_OK, ""); /* expired, but within the leeway */
    snprintf(extra, sizeof(extra), "'iat':%lld,", NOW + LEEWAY + 5);
    expect(&rsa, extra, CS_ERR_UNAUTHENTICATED, "iat is in the future");
    snprintf(extra, sizeof(extra), "'nbf':%lld,", NOW + LEEWAY + 5);
    expect(&rsa, extra, CS_ERR_UNAUTHENTICATED, "nbf");
    snprintf(extra, sizeof(extra), "'nbf':%lld,", NOW + 30);
    expect(&rsa, extra, CS_OK, "");
    expect(&rsa, "'iat':null,", CS_ERR_UNAUTHENTICATED, "iat is not a number");
    expect(&rsa, "'exp':'soon',", CS_ERR_UNAUTHENTICATED, "exp is not a number");
    /* A token without iat or exp at all. */
    char *t = fx_sign(&rsa, "{'alg':'RS256','kid':'rsa-1'}",
                      "{'iss':'" ISS "','aud':'" CLIENT "','sub':'a','nonce':'" NONCE "',"
                      "'exp':1900000000}");
    struct cs_oidc_identity id;
    char err[CS_ERRLEN] = "";
    CS_CHECK_RC(check(t, &id, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "iat is missing");
    cs_free(t);
}

CS_TEST(nonce)
{
    setup();
    expect(&rsa, "'nonce':'n-0S6_WzA2Mk',", CS_ERR_UNAUTHENTICATED, "nonce does not match");
    expect(&rsa, "'nonce':'n-0S6_WzA2M',", CS_ERR_UNAUTHENTICATED, "nonce does not match");
    expect(&rsa, "'nonce':null,", CS_ERR_UNAUTHENTICATED, "nonce is missing");
    expect(&rsa, "'nonce':7,", CS_ERR_UNAUTHENTICATED, "nonce");
}

/* Expects the token t (owned, freed here) to be refused with `why` in err. */
static void refused(char *t, const char *why)
{
    struct cs_oidc_identity id;
    char err[CS_ERRLEN] = "";
    CS_CHECK_RC(check(t, &id, err), CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, why);
    cs_free(t);
}

CS_TEST(alg_none_and_hmac_confusion)
{
    setup();
    char *c = claims(""), *in = fx_signing_input("{'alg':'none'}", c);
    refused(cs_asprintf("%s.", in), "unsigned");
    refused(cs_asprintf("%s.c2ln", in), "alg");
    refused(cs_strdup(in), "three parts");
    cs_free(in);
    in = fx_signing_input("{'kid':'rsa-1'}", c); /* no alg at all */
    refused(cs_asprintf("%s.c2ln", in), "alg is missing");
    cs_free(in);

    /* HS256 keyed with the RSA public key as a provider publishes it (PEM, DER, n). */
    BIO *bio = BIO_new(BIO_s_mem());
    cs_assert(bio && PEM_write_bio_PUBKEY(bio, rsa.pkey) == 1);
    char *pem = NULL;
    long pemlen = BIO_get_mem_data(bio, &pem);
    unsigned char *der = NULL;
    int derlen = i2d_PUBKEY(rsa.pkey, &der);
    const char *hdrs[2] = {"{'alg':'HS256','kid':'rsa-1'}", "{'alg':'HS256'}"};
    for (int i = 0; i < 2; i++) {
        in = fx_signing_input(hdrs[i], c);
        const void *secrets[2] = {pem, der};
        size_t lens[2] = {(size_t)pemlen, (size_t)derlen};
        for (int s = 0; s < 2; s++) {
            unsigned char mac[CS_SHA256_LEN];
            cs_hmac_sha256(secrets[s], lens[s], in, strlen(in), mac);
            char *m64 = cs_b64_encode(mac, sizeof(mac), true);
            refused(cs_asprintf("%s.%s", in, m64), "alg is missing or not RS256/ES256");
            cs_free(m64);
        }
        cs_free(in);
    }
    OPENSSL_free(der);
    BIO_free(bio);
    const char *others[] = {"{'alg':'RS384','kid':'rsa-1'}", "{'alg':'PS256','kid':'rsa-1'}",
                            "{'alg':'rs256','kid':'rsa-1'}", "{'alg':'ES512','kid':'ec-1'}",
                            "{'alg':['RS256'],'kid':'rsa-1'}"};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        refused(fx_sign(&rsa, others[i], c), "alg");
    refused(fx_sign(&rsa, "{'alg':'RS256','kid':'rsa-1','crit':['exp']}", c), "crit");
    refused(fx_sign(&rsa, "{'alg':'RS256','kid':'rsa-1','typ':'at+jwt'}", c), "typ");
    struct cs_oidc_identity id;
    char err[CS_ERRLEN];
    char *t = fx_sign(&rsa, "{'alg':'RS256','kid':'rsa-1','typ':'JWT'}", c);
    CS_CHECK_RC(check(t, &id, err), CS_OK);
    cs_free(t);
    cs_free(c);
}

CS_TEST(key_selection)
{
    setup();
    char *c = claims("");
    bool unknown = false;
    struct cs_oidc_identity id;
    char err[CS_ERRLEN] = "";

    /* An RS256 token checked against an EC-only set. */
    char *j = fx_jwk(&ec, "", NULL), *set = fx_jwks((const char *const *)&j, 1);
    struct cs_jwks *ec_only = NULL;
    CS_CHECK_RC(cs_jwks_parse(set, strlen(set), &ec_only, err), CS_OK);
    char *t = fx_sign(&rsa, "{'alg':'RS256','kid':'rsa-1'}", c);
    CS_CHECK_RC(cs_oidc_verify_id_token(ec_only, t, ISS, CLIENT, NONCE, NOW, LEEWAY, NULL, &id,
                                        &unknown, err),
                CS_ERR_UNAUTHENTICATED);
    CS_CHECK(unknown);
    cs_free(t);
    t = fx_sign(&rsa, "{'alg':'RS256'}", c); /* no kid, no RSA key */
    CS_CHECK_RC(cs_oidc_verify_id_token(ec_only, t, ISS, CLIENT, NONCE, NOW, LEEWAY, NULL, &id,
                                        &unknown, err),
                CS_ERR_UNAUTHENTICATED);
    CS_CHECK(unknown);
    cs_free(t);
    /* The EC key's kid on an RS256 token signed by an RSA key: a known kid of another type. */
    t = fx_sign(&rsa, "{'alg':'RS256','kid':'ec-1'}", c);
    CS_CHECK_RC(cs_oidc_verify_id_token(ec_only, t, ISS, CLIENT, NONCE, NOW, LEEWAY, NULL, &id,
                                        &unknown, err),
                CS_ERR_UNAUTHENTICATED);
    CS_CHECK(!unknown);
    CS_CHECK_HAS(err, "another type");
    cs_free(t);
    /* Without kid, the only key of the type is used. */
    t = fx_sign(&ec, "{'alg':'ES256'}", c);
    CS_CHECK_RC(cs_oidc_verify_id_token(ec_only, t, ISS, CLIENT, NONCE, NOW, LEEWAY, NULL, &id,
                                        &unknown, err),
                CS_OK);
    cs_free(t);
    cs_jwks_free(ec_only);
    cs_free(set);
    cs_free(j);

    /* Unknown kid; a key not in the set; the right kid but another key's signature. */
    t = fx_sign(&ec2, "{'alg':'ES256','kid':'ec-2'}", c);
    CS_CHECK_RC(
        cs_oidc_verify_id_token(keys, t, ISS, CLIENT, NONCE, NOW, LEEWAY, NULL, &id, &unknown, err),
        CS_ERR_UNAUTHENTICATED);
    CS_CHECK(unknown);
    CS_CHECK_HAS(err, "no key");
    cs_free(t);
    refused(fx_sign(&rsa, "{'alg':'RS256','kid':'rsa-9'}", c), "no key");
    refused(fx_sign(&ec2, "{'alg':'ES256','kid':'ec-1'}", c), "signature does not verify");
    refused(fx_sign(&ec2, "{'alg':'ES256'}", c), "signature does not verify");
    refused(fx_sign(&weak, "{'alg':'RS256','kid':'rsa-1'}", c), "signature does not verify");
    refused(fx_sign(&weak, "{'alg':'RS256'}", c), "signature does not verify");
    /* alg ES256 on a kid whose JWK says RS256. */
    refused(fx_sign(&ec, "{'alg':'ES256','kid':'rsa-1'}", c), "another type");

    /* No kid and two RSA keys: ambiguous. */
    char *j2[3] = {fx_jwk(&rsa, "", NULL), fx_jwk(&rsa, "", "rsa-1b"), fx_jwk(&ec, "", "")};
    set = fx_jwks((const char *const *)j2, 3);
    struct cs_jwks *two = NULL;
    CS_CHECK_RC(cs_jwks_parse(set, strlen(set), &two, err), CS_OK);
    t = fx_sign(&rsa, "{'alg':'RS256'}", c);
    CS_CHECK_RC(
        cs_oidc_verify_id_token(two, t, ISS, CLIENT, NONCE, NOW, LEEWAY, NULL, &id, &unknown, err),
        CS_ERR_UNAUTHENTICATED);
    CS_CHECK_HAS(err, "several keys");
    cs_free(t);
    t = fx_sign(&ec, "{'alg':'ES256'}", c); /* the EC key has no kid: fine */
    CS_CHECK_RC(
        cs_oidc_verify_id_token(two, t, ISS, CLIENT, NONCE, NOW, LEEWAY, NULL, &id, &unknown, err),
        CS_OK);
    cs_free(t);
    cs_jwks_free(two);
    cs_free(set);
    for (int i = 0; i < 3; i++)
        cs_free(j2[i]);
    cs_free(c);
}

CS_TEST(tampering_and_malformed)
{
    setup();
    char *c = claims(""), *h = fx_header(&rsa), *t = fx_sign(&rsa, h, c);
    char *d1 = strchr(t, '.'), *d2 = strrchr(t, '.');

    char *x = cs_strdup(t); /* one payload character changed */
    x[d1 - t + 5] = x[d1 - t + 5] == 'A' ? 'B' : 'A';
    refused(x, "signature does not verify");
    x = cs_strdup(t); /* one signature character changed */
    x[d2 - t + 10] = x[d2 - t + 10] == 'A' ? 'B' : 'A';
    refused(x, "signature does not verify");
    x = cs_strndup(t, (size_t)(d2 - t) + 20); /* signature cut short */
    refused(x, "signature");
    x = cs_asprintf("%sAAAA", t); /* signature made longer */
    refused(x, "signature");
    /* Another claims part under the same signature. */
    char *c2 = claims("'email':'mallory@example.test',"), *t2 = fx_sign(&rsa, h, c2);
    char *e1 = strchr(t2, '.'), *e2 = strrchr(t2, '.');
    refused(cs_asprintf("%.*s%.*s%s", (int)(d1 - t), t, (int)(e2 - e1), e1, d2),
            "signature does not verify");

    refused(cs_asprintf("*%s", t), "header is not base64url");
    refused(cs_asprintf("%.*s=%s", (int)(d1 - t), t, d1), "header is not base64url");
    refused(cs_asprintf("%.*s!%s", (int)(d2 - t), t, d2), "signature does not verify");
    refused(cs_asprintf("%s=", t), "signature is not base64url");
    refused(cs_asprintf("%s.xyz", t), "three parts");
    refused(cs_strdup(""), "three parts");
    refused(cs_strdup(".."), "unsigned");
    refused(cs_strdup("a.b.c"), "header");
    /* Payload that is valid base64url but not a JSON object, correctly signed. */
    refused(fx_sign(&rsa, h, "['not','an','object']"), "payload is not base64url JSON");
    refused(fx_sign(&rsa, "'just a string'", c), "header is not base64url JSON");
    /* ES256 with its signature in DER rather than R||S. */
    char *te = fx_sign(&ec, "{'alg':'ES256','kid':'ec-1'}", c);
    refused(cs_asprintf("%.*sMEUCIQ%s", (int)(strrchr(te, '.') - te + 1), te, strrchr(te, '.') + 1),
            "signature does not verify");
    cs_free(te);

    /* Oversize: a valid token padded past 16 KiB in an ignored claim. */
    char *pad = cs_malloc(CS_OIDC_TOKEN_MAX);
    memset(pad, 'p', CS_OIDC_TOKEN_MAX - 1);
    pad[CS_OIDC_TOKEN_MAX - 1] = '\0';
    char *extra = cs_asprintf("'pad':'%s',", pad);
    char *cbig = claims(extra), *tbig = fx_sign(&rsa, h, cbig);
    refused(tbig, "longer than 16384 bytes");
    refused(NULL, "no token");
    cs_free(pad);
    cs_free(extra);
    cs_free(cbig);
    cs_free(c2);
    cs_free(t2);
    cs_free(t);
    cs_free(h);
    cs_free(c);
}

CS_TEST(optional_claims)
{
    setup();
    char *h = fx_header(&rsa);
    char big[400];
    memset(big, 'e', 330);
    big[330] = '\0';
    char *extra = cs_asprintf("'email':'%s','email_verified':'true','name':'A\\u0000B',", big);
    char *c = claims(extra), *t = fx_sign(&rsa, h, c);
    struct cs_oidc_identity id;
    char err[CS_ERRLEN] = "";
    CS_CHECK_RC(check(t, &id, err), CS_OK);
    CS_CHECK_EQ_STR(id.sub, "alice-42");
    CS_CHECK_EQ_STR(id.email, ""); /* too long: not copied */
    CS_CHECK(!id.email_verified);  /* a string, not a boolean */
    CS_CHECK_EQ_STR(id.name, "");
    CS_CHECK_RC(
        cs_oidc_verify_id_token(keys, t, ISS, CLIENT, NULL, NOW, LEEWAY, NULL, &id, NULL, err),
        CS_ERR_INVALID);
    cs_free(extra);
    cs_free(c);
    cs_free(t);
    cs_free(h);
}

/* The role claim's values (string or array of strings) go to id.roles, one per line. */
CS_TEST(role_claim)
{
    setup();
    static const struct {
        const char *extra, *want;
    } cases[] = {
        {"'groups':['staff','countersign-ops'],", "staff\ncountersign-ops\n"},
        {"'groups':'countersign-ro',", "countersign-ro\n"},
        {"'groups':['ok',7,null,'',{'a':1},['x'],'line\\nbreak','also'],", "ok\nalso\n"},
        {"'groups':true,", ""},
        {"'other':['countersign-ops'],", ""},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *h = fx_header(&rsa), *c = claims(cases[i].extra), *t = fx_sign(&rsa, h, c);
        struct cs_oidc_identity id;
        char err[CS_ERRLEN] = "";
        CS_CHECK_RC(cs_oidc_verify_id_token(keys, t, ISS, CLIENT, NONCE, NOW, LEEWAY, "groups", &id,
                                            NULL, err),
                    CS_OK);
        CS_CHECK_EQ_STR(id.roles, cases[i].want);
        CS_CHECK_RC(check(t, &id, err), CS_OK); /* no claim asked for: none read */
        CS_CHECK_EQ_STR(id.roles, "");
        cs_free(h);
        cs_free(c);
        cs_free(t);
    }
    /* More values than fit: those that fit, never a cut one. */
    char extra[4096] = "'groups':[";
    for (int i = 0; i < 200; i++)
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "'group-%03d',", i);
    snprintf(extra + strlen(extra) - 1, 3, "],");
    char *h = fx_header(&rsa), *c = claims(extra), *t = fx_sign(&rsa, h, c);
    struct cs_oidc_identity id;
    char err[CS_ERRLEN] = "";
    CS_CHECK_RC(
        cs_oidc_verify_id_token(keys, t, ISS, CLIENT, NONCE, NOW, LEEWAY, "groups", &id, NULL, err),
        CS_OK);
    size_t n = strlen(id.roles);
    CS_CHECK(n > 900 && n < sizeof(id.roles) && id.roles[n - 1] == '\n');
    CS_CHECK(strncmp(id.roles, "group-000\ngroup-001\n", 20) == 0);
    cs_free(h);
    cs_free(c);
    cs_free(t);
}

CS_TEST(jwks_parsing)
{
    setup();
    char err[CS_ERRLEN] = "";
    struct cs_jwks *k = NULL;
    char *j[6] = {
        fx_jwk(&weak, "", NULL),                         /* 1024 bits: skipped */
        fx_jwk(&rsa, "'use':'enc',", "rsa-2"),           /* encryption key: skipped */
        fx_jwk(&rsa, "'alg':'ES256',", "rsa-x"),         /* alg of another type */
        fx_jwk(&rsa, "'key_ops':['encrypt'],", "rsa-y"), /* not for verify */
        fx_jwk(&ec, "'alg':'ES256','key_ops':['verify'],", NULL),
        cs_strdup(
            "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}"),
    };
    char *set = fx_jwks((const char *const *)j, 6);
    CS_CHECK_RC(cs_jwks_parse(set, strlen(set), &k, err), CS_OK);
    CS_CHECK_EQ_INT(cs_jwks_count(k), 1);
    /* Tokens for the skipped keys are refused as for an unknown key. */
    char *c = claims("");
    const struct fx_key *signer[2] = {&weak, &rsa};
    const char *hdr[2] = {"{'alg':'RS256','kid':'weak'}", "{'alg':'RS256','kid':'rsa-2'}"};
    for (int i = 0; i < 2; i++) {
        char *t = fx_sign(signer[i], hdr[i], c);
        struct cs_oidc_identity id;
        bool unknown = false;
        CS_CHECK_RC(cs_oidc_verify_id_token(k, t, ISS, CLIENT, NONCE, NOW, LEEWAY, NULL, &id,
                                            &unknown, err),
                    CS_ERR_UNAUTHENTICATED);
        CS_CHECK(unknown);
        cs_free(t);
    }
    cs_jwks_free(k);
    cs_free(set);
    /* A set of only unusable keys, and malformed sets. */
    set = fx_jwks((const char *const *)j, 2);
    k = (struct cs_jwks *)1;
    CS_CHECK_RC(cs_jwks_parse(set, strlen(set), &k, err), CS_ERR_INVALID);
    CS_CHECK(k == NULL);
    CS_CHECK_HAS(err, "no usable");
    cs_free(set);
    const char *bad[] = {
        "",
        "[]",
        "{}",
        "{\"keys\":{}}",
        "{\"keys\":[]}",
        "{\"keys\":[1,\"x\"]}",
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}]}",
        "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"!!\",\"e\":\"AQAB\"}]}",
        "{\"keys\":[]} x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CS_CHECK_RC(cs_jwks_parse(bad[i], strlen(bad[i]), &k, err), CS_ERR_INVALID);
    /* An EC point off the curve (y changed). */
    char *ecj = fx_jwk(&ec, "", NULL), *y = strstr(ecj, "\"y\":\"") + 5;
    *y = *y == 'A' ? 'B' : 'A';
    set = fx_jwks((const char *const *)&ecj, 1);
    CS_CHECK_RC(cs_jwks_parse(set, strlen(set), &k, err), CS_ERR_INVALID);
    cs_free(set);
    cs_free(ecj);
    /* 65 keys; a document over 256 KiB. */
    char *many[65];
    for (int i = 0; i < 65; i++)
        many[i] = j[4];
    set = fx_jwks((const char *const *)many, 65);
    CS_CHECK_RC(cs_jwks_parse(set, strlen(set), &k, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "more than 64 keys");
    CS_CHECK_RC(cs_jwks_parse(set, CS_OIDC_JWKS_MAX + 1, &k, err), CS_ERR_INVALID);
    cs_free(set);
    set = fx_jwks((const char *const *)many, 64);
    CS_CHECK_RC(cs_jwks_parse(set, strlen(set), &k, err), CS_OK);
    CS_CHECK_EQ_INT(cs_jwks_count(k), 64);
    cs_jwks_free(k);
    cs_jwks_free(NULL);
    cs_free(set);
    for (int i = 0; i < 6; i++)
        cs_free(j[i]);
    cs_free(c);
}

CS_TEST(teardown)
{
    cs_jwks_free(keys);
    keys = NULL;
    fx_key_free(&rsa);
    fx_key_free(&ec);
    fx_key_free(&ec2);
    fx_key_free(&weak);
    CS_CHECK(true);
}

CS_TEST_MAIN(CS_RUN(valid_rs256_and_es256), CS_RUN(audience), CS_RUN(issuer_and_subject),
             CS_RUN(times_and_leeway), CS_RUN(nonce), CS_RUN(alg_none_and_hmac_confusion),
             CS_RUN(key_selection), CS_RUN(tampering_and_malformed), CS_RUN(optional_claims),
             CS_RUN(role_claim), CS_RUN(jwks_parsing), CS_RUN(teardown))
