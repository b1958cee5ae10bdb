/*
 * base64.c -- the body encoding of the C client (RFC 4648, padded): request
 * bodies go out as "body_b64", results come back as "body_b64".
 *
 * Decoding refuses anything that is not canonical padded base64 (bad
 * characters, a wrong length, misplaced padding); it never reads past len.
 */
#include <stdint.h>
#include <string.h>

#include "client.h"
#include "cs_mem.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *client_b64_encode(const void *p, size_t n)
{
    const unsigned char *in = p;
    char *out = cs_malloc((n + 2) / 3 * 4 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static int sextet(char ch)
{
    const char *p = ch ? strchr(alphabet, ch) : NULL;
    return p ? (int)(p - alphabet) : -1;
}

bool client_b64_decode(const char *s, size_t len, unsigned char **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (len % 4)
        return false;
    unsigned char *buf = cs_malloc(len / 4 * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        int a = sextet(s[i]), b = sextet(s[i + 1]);
        int c = last && s[i + 2] == '=' && s[i + 3] == '=' ? 0 : sextet(s[i + 2]);
        int d = last && s[i + 3] == '=' ? 0 : sextet(s[i + 3]);
        if (a < 0 || b < 0 || c < 0 || d < 0) {
            cs_free(buf);
            return false;
        }
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        buf[o++] = (unsigned char)(v >> 16);
        if (!(last && s[i + 2] == '='))
            buf[o++] = (unsigned char)(v >> 8);
        if (!(last && s[i + 3] == '='))
            buf[o++] = (unsigned char)v;
    }
    buf[o] = '\0';
    *out = buf;
    *n = o;
    return true;
}
