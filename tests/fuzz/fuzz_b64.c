/*
 * fuzz_b64.c -- libFuzzer target: base64 and base64url (lib/cs_crypto.c),
 * the decoders behind "body_b64" bodies, approval link tokens and master
 * keys.
 *
 * Input: one byte (bit 0: URL-safe alphabet) and then the bytes to use,
 * both as text to decode and as data to encode.
 *   - Decoding: cs_b64_decode accepts only canonical text, so encoding
 *     what it returns gives the same text back, up to '=' padding (which
 *     decoding takes as optional); the length is what the text implies.
 *   - Encoding: cs_b64_encode gives cs_b64_encoded_len characters of the
 *     alphabet, and decoding them -- with and without padding -- gives the
 *     data back.
 * Both alphabets are tried on each input; the selected one goes first.
 */
#include "cs_crypto.h"
#include "fuzz.h"

static size_t unpadded(const char *s, size_t n)
{
    while (n && s[n - 1] == '=')
        n--;
    return n;
}

static bool in_alphabet(char c, bool url)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == (url ? '-' : '+') || c == (url ? '_' : '/');
}

static void decode_then_encode(const char *s, size_t n, bool url)
{
    unsigned char *out = NULL;
    size_t outlen = 0;
    if (cs_b64_decode(s, n, url, &out, &outlen) != CS_OK)
        return;
    size_t body = unpadded(s, n);
    FUZZ_CHECK(outlen == body * 3 / 4);
    char *again = cs_b64_encode(out, outlen, url);
    size_t alen = strlen(again);
    FUZZ_CHECK(alen == cs_b64_encoded_len(outlen, url));
    FUZZ_CHECK(unpadded(again, alen) == body && memcmp(again, s, body) == 0);
    cs_free(again);
    cs_free(out);
}

static void encode_then_decode(const uint8_t *data, size_t size, bool url)
{
    char *text = cs_b64_encode(data, size, url);
    size_t n = strlen(text);
    FUZZ_CHECK(n == cs_b64_encoded_len(size, url));
    for (size_t i = 0; i < unpadded(text, n); i++)
        FUZZ_CHECK(in_alphabet(text[i], url));
    FUZZ_CHECK(url ? unpadded(text, n) == n : n % 4 == 0);
    for (int strip = 0; strip < 2; strip++) {
        unsigned char *out = NULL;
        size_t outlen = 0;
        FUZZ_CHECK(cs_b64_decode(text, strip ? unpadded(text, n) : n, url, &out, &outlen) == CS_OK);
        FUZZ_CHECK(outlen == size && (size == 0 || memcmp(out, data, size) == 0));
        cs_free(out);
    }
    cs_free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool url = data[0] & 1;
    data++, size--;
    for (int k = 0; k < 2; k++, url = !url) {
        decode_then_encode((const char *)data, size, url);
        encode_then_decode(data, size, url);
    }
    return 0;
}
