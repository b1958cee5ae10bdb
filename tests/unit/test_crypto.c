/*
 * test_crypto.c -- unit tests of hashing, MACs, AEAD, encodings and UUIDs
 * (lib/cs_crypto.c).
 *
 * Hashes and MACs are checked against published vectors (FIPS 180-2,
 * RFC 4231), base64 against RFC 4648 and by round trips of every length
 * 0..64 in both alphabets, with strict refusal of foreign characters, bad
 * padding and non-canonical trailing bits. The AEAD must open only what it
 * sealed, under the same key and AAD, and refuse any flipped bit or
 * truncation. UUIDv7s must carry version 7, the RFC 4122 variant, and sort
 * by time; the one wait in this file is a bounded spin on the clock.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cs_crypto.h"
#include "cs_mem.h"
#include "cs_test.h"

/* ---- hashes and MACs ---- */

/* Checks the hex of p[n] against a published vector, reporting the caller's line. */
static bool hex_is(const unsigned char *p, size_t n, const char *want, int line)
{
    char hex[2 * 64 + 1];
    cs_hex_encode(p, n, hex);
    return cs_test_eq_str(hex, want, __FILE__, line, "digest");
}
#define HEX_IS(p, n, want) hex_is((p), (n), (want), __LINE__)

CS_TEST(sha256_vectors)
{
    unsigned char d[CS_SHA256_LEN];
    cs_sha256("abc", 3, d);
    HEX_IS(d, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cs_sha256("", 0, d);
    HEX_IS(d, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    static const char two[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    cs_sha256(two, sizeof(two) - 1, d);
    HEX_IS(d, 32, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

    /* Incremental hashing gives the same digest wherever the input is split. */
    for (size_t cut = 0; cut <= sizeof(two) - 1; cut++) {
        unsigned char inc[CS_SHA256_LEN];
        struct cs_sha256 *h = cs_sha256_new();
        cs_sha256_update(h, two, cut);
        cs_sha256_update(h, two + cut, sizeof(two) - 1 - cut);
        cs_sha256_final(h, inc);
        CS_CHECK(memcmp(inc, d, 32) == 0);
    }
}

CS_TEST(hmac_sha256_rfc4231)
{
    unsigned char key[131], mac[CS_SHA256_LEN];
    memset(key, 0x0b, 20);
    cs_hmac_sha256(key, 20, "Hi There", 8, mac); /* case 1 */
    HEX_IS(mac, 32, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    cs_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac); /* case 2 */
    HEX_IS(mac, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    memset(key, 0xaa, sizeof(key)); /* case 6: a key longer than the block */
    static const char six[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    cs_hmac_sha256(key, sizeof(key), six, sizeof(six) - 1, mac);
    HEX_IS(mac, 32, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

/*
 * Each thread keeps its last few HMAC keys keyed: alternating more keys
 * than it keeps, repeating one, and switching threads must give the MAC of
 * a fresh computation every time (RFC 4231 cases 1 and 2 as references).
 */
static const char *const case1 = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
static const char *const case2 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

static int hmac_rounds(void)
{
    unsigned char k1[20], other[8][32], mac[CS_SHA256_LEN], first[8][CS_SHA256_LEN];
    char hex[65];
    int bad = 0;
    memset(k1, 0x0b, sizeof(k1));
    for (int k = 0; k < 8; k++) {
        memset(other[k], 0x40 + k, sizeof(other[k]));
        cs_hmac_sha256(other[k], 32, "x", 1, first[k]);
    }
    for (int round = 0; round < 50; round++) {
        cs_hmac_sha256(k1, sizeof(k1), "Hi There", 8, mac);
        cs_hex_encode(mac, 32, hex);
        bad += strcmp(hex, case1) != 0;
        cs_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac);
        cs_hex_encode(mac, 32, hex);
        bad += strcmp(hex, case2) != 0;
        int k = round % (round < 25 ? 2 : 8); /* within the slots, then past them */
        cs_hmac_sha256(other[k], 32, "x", 1, mac);
        bad += memcmp(mac, first[k], 32) != 0;
        cs_hmac_sha256(other[k], 31, "x", 1, mac); /* a prefix of a cached key is another key */
        bad += memcmp(mac, first[k], 32) == 0;
    }
    return bad;
}

static void *hmac_thread(void *arg)
{
    *(int *)arg = hmac_rounds();
    return NULL;
}

CS_TEST(hmac_keyed_cache)
{
    CS_CHECK_EQ_INT(hmac_rounds(), 0);
    pthread_t t[3];
    int bad[3] = {-1, -1, -1};
    for (int i = 0; i < 3; i++)
        CS_CHECK(pthread_create(&t[i], NULL, hmac_thread, &bad[i]) == 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        CS_CHECK_EQ_INT(bad[i], 0);
    }
    CS_CHECK_EQ_INT(hmac_rounds(), 0);
}

CS_TEST(key_derive_and_ct_equal)
{
    unsigned char master[32], a[32], b[32], c[32], mac[32];
    for (int i = 0; i < 32; i++)
        master[i] = (unsigned char)i;
    cs_key_derive(master, "purpose-a", a);
    cs_key_derive(master, "purpose-a", b);
    cs_key_derive(master, "purpose-b", c);
    CS_CHECK(memcmp(a, b, 32) == 0);
    CS_CHECK(memcmp(a, c, 32) != 0);
    CS_CHECK(memcmp(a, master, 32) != 0);
    cs_hmac_sha256(master, 32, "purpose-a", 9, mac);
    CS_CHECK(memcmp(a, mac, 32) == 0);

    CS_CHECK(cs_ct_equal(a, b, 32));
    CS_CHECK(!cs_ct_equal(a, c, 32));
    b[31] ^= 1;
    CS_CHECK(!cs_ct_equal(a, b, 32));
    CS_CHECK(cs_ct_equal(a, b, 0));
}

CS_TEST(random_bytes_differ)
{
    unsigned char a[32], b[32];
    cs_random_bytes(a, sizeof(a));
    cs_random_bytes(b, sizeof(b));
    CS_CHECK(memcmp(a, b, sizeof(a)) != 0);
}

/* ---- encodings ---- */

CS_TEST(hex)
{
    static const unsigned char bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char hex[2 * sizeof(bytes) + 1];
    cs_hex_encode(bytes, sizeof(bytes), hex);
    CS_CHECK_EQ_STR(hex, "00017f80abff");
    unsigned char out[sizeof(bytes)];
    CS_CHECK_RC(cs_hex_decode("00017f80abff", 12, out, sizeof(out)), CS_OK);
    CS_CHECK(memcmp(out, bytes, sizeof(bytes)) == 0);
    CS_CHECK_RC(cs_hex_decode("00017F80ABFF", 12, out, sizeof(out)), CS_OK);
    CS_CHECK(memcmp(out, bytes, sizeof(bytes)) == 0);
    CS_CHECK_RC(cs_hex_decode("00017f80abf", 11, out, sizeof(out)), CS_ERR_INVALID);
    CS_CHECK_RC(cs_hex_decode("00017f80abffff", 14, out, sizeof(out)), CS_ERR_INVALID);
    CS_CHECK_RC(cs_hex_decode("00017g80abff", 12, out, sizeof(out)), CS_ERR_INVALID);
    CS_CHECK_RC(cs_hex_decode("0x017f80abff", 12, out, sizeof(out)), CS_ERR_INVALID);
    CS_CHECK_RC(cs_hex_decode(" 0017f80abff", 12, out, sizeof(out)), CS_ERR_INVALID);
    CS_CHECK_RC(cs_hex_decode("", 0, out, 0), CS_OK);
}

static enum cs_err b64_decode_str(const char *s, bool url, char **out)
{
    unsigned char *raw = NULL;
    size_t len = 0;
    enum cs_err rc = cs_b64_decode(s, strlen(s), url, &raw, &len);
    *out = NULL;
    if (rc == CS_OK) {
        *out = cs_strndup((const char *)raw, len);
        cs_free(raw);
    }
    return rc;
}

CS_TEST(base64_rfc4648)
{
    static const char *const vec[][3] = {{"", "", ""},
                                         {"f", "Zg==", "Zg"},
                                         {"fo", "Zm8=", "Zm8"},
                                         {"foo", "Zm9v", "Zm9v"},
                                         {"foob", "Zm9vYg==", "Zm9vYg"},
                                         {"fooba", "Zm9vYmE=", "Zm9vYmE"},
                                         {"foobar", "Zm9vYmFy", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        for (int url = 0; url < 2; url++) {
            char *enc = cs_b64_encode(vec[i][0], strlen(vec[i][0]), url);
            CS_CHECK_EQ_STR(enc, vec[i][1 + url]);
            cs_free(enc);
            char *dec = NULL;
            CS_CHECK_RC(b64_decode_str(vec[i][1 + url], url, &dec), CS_OK);
            CS_CHECK_EQ_STR(dec, vec[i][0]);
            cs_free(dec);
        }
        /* Padding is optional for the standard alphabet, accepted for URLs. */
        char *dec = NULL;
        CS_CHECK_RC(b64_decode_str(vec[i][2], false, &dec), CS_OK);
        CS_CHECK_EQ_STR(dec, vec[i][0]);
        cs_free(dec);
        CS_CHECK_RC(b64_decode_str(vec[i][1], true, &dec), CS_OK);
        CS_CHECK_EQ_STR(dec, vec[i][0]);
        cs_free(dec);
    }
    /* The two alphabets differ in the last two characters. */
    static const unsigned char hi[] = {0xfb, 0xff, 0xbf};
    char *enc = cs_b64_encode(hi, sizeof(hi), false);
    CS_CHECK_EQ_STR(enc, "+/+/");
    cs_free(enc);
    enc = cs_b64_encode(hi, sizeof(hi), true);
    CS_CHECK_EQ_STR(enc, "-_-_");
    cs_free(enc);
}

CS_TEST(base64_round_trips_every_length)
{
    unsigned char data[64];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 37 + 250);
    for (int url = 0; url < 2; url++)
        for (size_t n = 0; n <= 64; n++) {
            char *enc = cs_b64_encode(data, n, url);
            CS_CHECK_EQ_INT(strlen(enc), cs_b64_encoded_len(n, url));
            char to[88 + 1]; /* cs_b64_encoded_len(64, false) + 1 */
            cs_b64_encode_to(data, n, url, to);
            CS_CHECK_EQ_STR(to, enc);
            CS_CHECK(strcspn(enc, url ? "+/=" : "-_") == strlen(enc));
            unsigned char *dec = NULL;
            size_t len = 0;
            if (CS_CHECK_RC(cs_b64_decode(enc, strlen(enc), url, &dec, &len), CS_OK)) {
                CS_CHECK_EQ_INT(len, n);
                CS_CHECK(memcmp(dec, data, n) == 0);
                cs_free(dec);
            }
            /* The other alphabet refuses any encoding that uses 62 or 63. */
            if (strpbrk(enc, "+/-_")) {
                CS_CHECK_RC(cs_b64_decode(enc, strlen(enc), !url, &dec, &len), CS_ERR_INVALID);
            }
            cs_free(enc);
        }
}

CS_TEST(base64_strict)
{
    static const char *const
        bad_std[] = {"Zm9v-_",      "Zm9v_w==", "Zm 9v",    "Zm9v\n",   "Zm9v*A==",
                     "Zm9\xc3\xa9", /* alphabet */
                     "Z",           "Zm9vY",    "=",        "==",       "===",
                     "====",        "Zg=",      "Zg===",    "Zm9v=",    "Zm9v==", /* length */
                     "Zg==Zg==",    "Z=g=",     "Zm=9v",    "=Zm9v", /* padding not at the end */
                     "Zh==",        "Zm9=",     "Zm9vYh==", "Zm9vYmF=", "Zh",
                     "Zm9", /* non-canonical trailing bits */
                     NULL};
    for (const char *const *s = bad_std; *s; s++) {
        unsigned char *out = NULL;
        size_t len = 0;
        if (!CS_CHECK_RC(cs_b64_decode(*s, strlen(*s), false, &out, &len), CS_ERR_INVALID))
            printf("  accepted \"%s\"\n", *s);
        CS_CHECK(out == NULL);
    }
    static const char *const bad_url[] = {"Zm9v+/", "ab/c", "Zh", "Z", "Zg=", "a.bc", NULL};
    for (const char *const *s = bad_url; *s; s++) {
        unsigned char *out = NULL;
        size_t len = 0;
        if (!CS_CHECK_RC(cs_b64_decode(*s, strlen(*s), true, &out, &len), CS_ERR_INVALID))
            printf("  accepted \"%s\"\n", *s);
    }
    /* A NUL inside the given length is a foreign character, not an end. */
    unsigned char *out = NULL;
    size_t len = 0;
    CS_CHECK_RC(cs_b64_decode("Zm9v\0AAA", 8, false, &out, &len), CS_ERR_INVALID);
}

/* ---- AES-256-GCM ---- */

CS_TEST(aead_round_trip)
{
    unsigned char key[32];
    for (int i = 0; i < 32; i++)
        key[i] = (unsigned char)(0xa0 + i);
    static const char secret[] = "sk_live_0123456789";
    unsigned char *blob = NULL, *blob2 = NULL, *pt = NULL;
    size_t bloblen = 0, blob2len = 0, ptlen = 0;
    cs_aead_seal(key, secret, strlen(secret), "grant:1", &blob, &bloblen);
    CS_CHECK_EQ_INT(bloblen, 1 + 12 + strlen(secret) + 16);
    CS_CHECK_EQ_INT(blob[0], 0x01);
    CS_CHECK(memmem(blob, bloblen, "sk_live", 7) == NULL);
    if (CS_CHECK_RC(cs_aead_open(key, blob, bloblen, "grant:1", &pt, &ptlen), CS_OK)) {
        CS_CHECK_EQ_INT(ptlen, strlen(secret));
        CS_CHECK_EQ_STR((char *)pt, secret); /* NUL-terminated for convenience */
        cs_free(pt);
    }
    /* A fresh nonce each time: the same input seals differently. */
    cs_aead_seal(key, secret, strlen(secret), "grant:1", &blob2, &blob2len);
    CS_CHECK(bloblen == blob2len && memcmp(blob, blob2, bloblen) != 0);
    cs_free(blob2);
    cs_free(blob);

    cs_aead_seal(key, "", 0, "", &blob, &bloblen);
    CS_CHECK_EQ_INT(bloblen, 1 + 12 + 16);
    if (CS_CHECK_RC(cs_aead_open(key, blob, bloblen, "", &pt, &ptlen), CS_OK)) {
        CS_CHECK_EQ_INT(ptlen, 0);
        cs_free(pt);
    }
    cs_free(blob);
}

CS_TEST(aead_refuses_tampering)
{
    unsigned char key[32], other[32];
    memset(key, 7, sizeof(key));
    memcpy(other, key, sizeof(key));
    other[0] ^= 1;
    unsigned char *blob = NULL, *pt = NULL;
    size_t bloblen = 0, ptlen = 0;
    cs_aead_seal(key, "hunter2", 7, "grant:1", &blob, &bloblen);

    CS_CHECK_RC(cs_aead_open(other, blob, bloblen, "grant:1", &pt, &ptlen), CS_ERR_CRYPTO);
    CS_CHECK_RC(cs_aead_open(key, blob, bloblen, "grant:2", &pt, &ptlen), CS_ERR_CRYPTO);
    CS_CHECK_RC(cs_aead_open(key, blob, bloblen, "", &pt, &ptlen), CS_ERR_CRYPTO);
    /* Any flipped bit: version, nonce (1..12), ciphertext, tag (last 16). */
    int accepted = 0;
    for (size_t i = 0; i < bloblen; i++)
        for (int bit = 0; bit < 8; bit++) {
            blob[i] ^= (unsigned char)(1 << bit);
            if (cs_aead_open(key, blob, bloblen, "grant:1", &pt, &ptlen) != CS_ERR_CRYPTO) {
                accepted++;
                cs_free(pt);
            }
            blob[i] ^= (unsigned char)(1 << bit);
        }
    CS_CHECK_EQ_INT(accepted, 0);
    /* Every truncation, and one byte too many. */
    for (size_t n = 0; n < bloblen; n++)
        CS_CHECK_RC(cs_aead_open(key, blob, n, "grant:1", &pt, &ptlen), CS_ERR_CRYPTO);
    unsigned char *longer = cs_malloc(bloblen + 1);
    memcpy(longer, blob, bloblen);
    longer[bloblen] = 0;
    CS_CHECK_RC(cs_aead_open(key, longer, bloblen + 1, "grant:1", &pt, &ptlen), CS_ERR_CRYPTO);
    cs_free(longer);
    /* Untouched, it still opens. */
    if (CS_CHECK_RC(cs_aead_open(key, blob, bloblen, "grant:1", &pt, &ptlen), CS_OK))
        cs_free(pt);
    cs_free(blob);
}

/* ---- UUIDs ---- */

static bool uuid_shape(const char *u)
{
    if (strlen(u) != CS_UUID_STRLEN)
        return false;
    for (int i = 0; i < CS_UUID_STRLEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? u[i] != '-' : !strchr("0123456789abcdef", u[i]))
            return false;
    }
    return true;
}

static uint64_t uuid_ms(const char *u)
{
    unsigned char b[16];
    if (cs_uuid_parse(u, b) != CS_OK)
        return 0;
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | b[i];
    return ms;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

CS_TEST(uuid_v7_format)
{
    for (int i = 0; i < 200; i++) {
        char u[CS_UUID_STRLEN + 1];
        uint64_t before = wall_ms();
        cs_uuid_v7(u);
        uint64_t after = wall_ms();
        if (!CS_CHECK(uuid_shape(u))) {
            printf("  %s\n", u);
            break;
        }
        CS_CHECK_EQ_INT(u[14], '7');             /* version */
        CS_CHECK(strchr("89ab", u[19]) != NULL); /* variant 10xx */
        CS_CHECK(uuid_ms(u) >= before && uuid_ms(u) <= after);
        CS_CHECK(cs_uuid_valid(u));
    }
}

/* Orders UUIDs by their random part (after the 48-bit time). */
static int uuid_tail_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a + 14, (const char *)b + 14);
}

CS_TEST(uuid_v7_orders_by_time)
{
    char a[CS_UUID_STRLEN + 1], b[CS_UUID_STRLEN + 1];
    cs_uuid_v7(a);
    /* Spin (no sleep) until the clock has moved past a's millisecond; 2 s at most. */
    uint64_t deadline = wall_ms() + 2000;
    while (wall_ms() <= uuid_ms(a) && wall_ms() < deadline)
        ;
    cs_uuid_v7(b);
    CS_CHECK(uuid_ms(b) > uuid_ms(a));
    CS_CHECK(strcmp(a, b) < 0);

    /* Within one run, no two are equal. */
    enum { N = 500 };
    static char many[N][CS_UUID_STRLEN + 1];
    for (int i = 0; i < N; i++)
        cs_uuid_v7(many[i]);
    int dup = 0;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            dup += strcmp(many[i], many[j]) == 0;
    CS_CHECK_EQ_INT(dup, 0);

    /* Across refills of the per-thread random pool (4 KB = 409 ids) ids stay
     * distinct in their random part too: 1000 ids in one millisecond or not. */
    enum { M = 1000 };
    static char more[M][CS_UUID_STRLEN + 1];
    for (int i = 0; i < M; i++)
        cs_uuid_v7(more[i]);
    qsort(more, M, sizeof(more[0]), uuid_tail_cmp);
    dup = 0;
    for (int i = 1; i < M; i++)
        dup += uuid_tail_cmp(more[i - 1], more[i]) == 0;
    CS_CHECK_EQ_INT(dup, 0);
}

CS_TEST(uuid_valid_parse_format)
{
    static const char *const good[] = {"01890a5d-ac96-774b-bcce-b302099a8057",
                                       "01890A5D-AC96-774B-BCCE-B302099A8057",
                                       "00000000-0000-0000-0000-000000000000", NULL};
    for (const char *const *s = good; *s; s++)
        CS_CHECK(cs_uuid_valid(*s));
    static const char *const bad[] = {"",
                                      "01890a5d-ac96-774b-bcce-b302099a805",
                                      "01890a5d-ac96-774b-bcce-b302099a80577",
                                      "01890a5dac96774bbcceb302099a8057",
                                      "01890a5d-ac96-774b-bcceb-302099a8057",
                                      "{01890a5d-ac96-774b-bcce-b302099a8057}",
                                      "01890a5d-ac96-774b-bcce-b302099a805g",
                                      " 1890a5d-ac96-774b-bcce-b302099a8057",
                                      "01890a5d_ac96_774b_bcce_b302099a8057",
                                      "+1890a5d-ac96-774b-bcce-b302099a8057",
                                      NULL};
    for (const char *const *s = bad; *s; s++)
        if (!CS_CHECK(!cs_uuid_valid(*s)))
            printf("  accepted \"%s\"\n", *s);
    CS_CHECK(!cs_uuid_valid(NULL));

    unsigned char b[16];
    char out[CS_UUID_STRLEN + 1];
    CS_CHECK_RC(cs_uuid_parse("01890A5D-AC96-774B-BCCE-B302099A8057", b), CS_OK);
    CS_CHECK_EQ_INT(b[0], 0x01);
    CS_CHECK_EQ_INT(b[15], 0x57);
    cs_uuid_format(b, out);
    CS_CHECK_EQ_STR(out, "01890a5d-ac96-774b-bcce-b302099a8057");
    CS_CHECK_RC(cs_uuid_parse("01890a5d-ac96-774b-bcce-b302099a805", b), CS_ERR_INVALID);
    unsigned char all[16];
    for (int i = 0; i < 16; i++)
        all[i] = (unsigned char)(i * 17);
    cs_uuid_format(all, out);
    CS_CHECK_EQ_STR(out, "00112233-4455-6677-8899-aabbccddeeff");
    CS_CHECK_RC(cs_uuid_parse(out, b), CS_OK);
    CS_CHECK(memcmp(b, all, 16) == 0);
}

CS_TEST_MAIN(CS_RUN(sha256_vectors), CS_RUN(hmac_sha256_rfc4231), CS_RUN(hmac_keyed_cache),
             CS_RUN(key_derive_and_ct_equal), CS_RUN(random_bytes_differ), CS_RUN(hex),
             CS_RUN(base64_rfc4648), CS_RUN(base64_round_trips_every_length), CS_RUN(base64_strict),
             CS_RUN(aead_round_trip), CS_RUN(aead_refuses_tampering), CS_RUN(uuid_v7_format),
             CS_RUN(uuid_v7_orders_by_time), CS_RUN(uuid_valid_parse_format))
