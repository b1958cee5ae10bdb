/*
 * cs_envsig.h -- per-agent signatures of Kafka request envelopes.
 *
 * Every record on the requests topic (request envelope or seal) carries a
 * header proving which agent produced it, like a webhook signature
 * (Stripe, GitHub):
 *
 *   countersign-signature: t=<unix seconds>,k=<key id>,v1=<hex>
 *
 *   t   the signer's clock, 1-12 decimal digits;
 *   k   the agent's signing key id, "csk_" + 16 lower-case hex digits;
 *   v1  lower-case hex of HMAC-SHA256(secret, "<t>." || record value),
 *       with <t> exactly as written in the header and the secret the
 *       64-character text the CLI or admin API printed once (its ASCII
 *       bytes are the HMAC key).
 *
 * Pairs are separated by ',', names are case-sensitive, each of t, k and
 * v1 appears exactly once; other names (a future v2) are ignored. The
 * record key and other headers are not signed: the agent, request id and
 * everything else that matters are inside the value.
 *
 * The verifier (worker/ingest.c) looks the key up by id, checks the MAC in
 * constant time, requires |t - reference| <= the replay window, where the
 * reference is the broker's LogAppendTime when the topic keeps it and the
 * consumer's clock otherwise, and requires the envelope's agent to own the
 * key. Within the window a replay is a duplicate (agent, request_id) and a
 * no-op; past it, it is refused as stale. Pure functions: no I/O, no log.
 */
#ifndef CS_ENVSIG_H
#define CS_ENVSIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_crypto.h"
#include "cs_err.h"

#define CS_ENVSIG_HEADER "countersign-signature"
#define CS_ENVSIG_KID_LEN 20     /* "csk_" + 16 hex */
#define CS_ENVSIG_SECRET_LEN 64  /* 32 random bytes as hex */
#define CS_ENVSIG_HEADER_MAX 160 /* longest header value this side writes */

struct cs_envsig {
    int64_t t;       /* unix seconds */
    char t_text[16]; /* t as it was written (signed as such) */
    char kid[CS_ENVSIG_KID_LEN + 1];
    unsigned char mac[CS_SHA256_LEN];
};

/* True when s is a well-formed key id. */
bool cs_envsig_kid_valid(const char *s);

/*
 * Parses a header value of len bytes (not NUL-terminated). CS_ERR_UNAUTHENTICATED
 * with what is wrong ("malformed signature header: ...").
 */
enum cs_err cs_envsig_parse(const char *v, size_t len, struct cs_envsig *out,
                            char *err) CS_MUSTCHECK;

/* The v1 MAC of value under secret for timestamp text t_text. */
void cs_envsig_mac(const char *secret, size_t secret_len, const char *t_text, const void *value,
                   size_t len, unsigned char mac[CS_SHA256_LEN]);

/* True when sig's MAC is the one secret makes over value (constant time). */
bool cs_envsig_verify(const struct cs_envsig *sig, const char *secret, size_t secret_len,
                      const void *value, size_t len);

/*
 * Writes the header value signing value with (kid, secret) at time t into
 * out[CS_ENVSIG_HEADER_MAX]. For tools and tests; producers use their SDK.
 */
void cs_envsig_sign(const char *kid, const char *secret, size_t secret_len, int64_t t,
                    const void *value, size_t len, char out[CS_ENVSIG_HEADER_MAX]);

#endif
