/*
 * signature.c -- the ingest's check of envelope signatures (cs_envsig.h,
 * README "Signed envelopes"): run on every record of the requests topic
 * before its value is parsed, then once more after parsing to match the
 * envelope's agent with the key's. Verdicts are CS_ERR_UNAUTHENTICATED
 * with a message starting with which check failed (unsigned, malformed
 * signature header, unknown key, bad signature, stale, wrong agent), the
 * dead letter's message. It does not log: ingest dead-letters.
 */
#include <string.h>

#include "cs_envsig.h"
#include "cs_time.h"
#include "worker.h"

/*
 * Authenticates message m (cs_envsig.h): *key is the signing key it was
 * signed with, or NULL for an unsigned message accepted under
 * CS_KAFKA_ALLOW_UNSIGNED. CS_ERR_UNAUTHENTICATED says which check failed;
 * the key lookup may return a retriable CS_ERR_DB (db NULL: cache only).
 */
enum cs_err signature_check(const struct cs_config *cfg, struct cs_catalog *cat,
                            const rd_kafka_message_t *m, struct cs_db *db,
                            const struct cs_signing_key **key, char *err)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *v = NULL, *second = NULL;
    size_t vlen = 0, len2 = 0;
    *key = NULL;
    if (rd_kafka_message_headers(m, &hdrs) ||
        rd_kafka_header_get(hdrs, 0, CS_ENVSIG_HEADER, &v, &vlen) || !v) {
        if (cfg->kafka_allow_unsigned)
            return CS_OK;
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                          "unsigned: no %s header (see README \"Signed envelopes\")",
                          CS_ENVSIG_HEADER);
    }
    if (!rd_kafka_header_get(hdrs, 1, CS_ENVSIG_HEADER, &second, &len2))
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                          "malformed signature header: more than "
                          "one %s header",
                          CS_ENVSIG_HEADER);
    struct cs_envsig sig;
    enum cs_err rc = cs_envsig_parse(v, vlen, &sig, err);
    if (rc)
        return rc;
    rc = cs_catalog_signing_key(cat, db, cfg->master_key, sig.kid, key, err);
    if (rc == CS_ERR_NOT_FOUND)
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                          "unknown key: %s is not a live signing "
                          "key (never issued, revoked, expired or its agent disabled)",
                          sig.kid);
    if (rc)
        return rc;
    /* The reference time: the broker's, when the topic stamps records at append. */
    rd_kafka_timestamp_type_t tt = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    bool broker = tt == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME && ts > 0;
    int64_t ref_ms = broker ? ts : cs_now_ms();
    if ((*key)->expires_ms && (*key)->expires_ms <= ref_ms)
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED, "unknown key: %s expired (rotated)",
                          sig.kid);
    if (!cs_envsig_verify(&sig, (*key)->secret, CS_ENVSIG_SECRET_LEN, m->payload,
                          m->payload ? m->len : 0))
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                          "bad signature: the v1 MAC of key %s "
                          "does not match this record's value and t",
                          sig.kid);
    int64_t skew_s = (sig.t * 1000 - ref_ms) / 1000;
    if (skew_s > cfg->kafka_signature_window_s || -skew_s > cfg->kafka_signature_window_s)
        return cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                          "stale: signed at t=%lld, %lld s from "
                          "the %s (replay window %lld s)",
                          (long long)sig.t, (long long)skew_s,
                          broker ? "broker's append time" : "worker's clock",
                          (long long)cfg->kafka_signature_window_s);
    return CS_OK;
}

enum cs_err signature_owner(const struct cs_signing_key *key, const char *agent, char *err)
{
    if (!key || !strcmp(key->agent_name, agent))
        return CS_OK;
    return cs_err_set(err, CS_ERR_UNAUTHENTICATED,
                      "wrong agent: key %s belongs to agent "
                      "\"%.64s\", not \"%.64s\"",
                      key->id, key->agent_name, agent);
}
