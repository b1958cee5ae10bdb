/*
 * cs_wal.c -- the logical replication stream, decoded (see cs_wal.h).
 */
#include "cs_wal.h"

#include <string.h>

#define PREFIX "countersign."
#define BATCH ".batch"                /* after the topic: cs_emit_all(), migration 020 */
#define PG_EPOCH_US 946684800000000LL /* 2000-01-01 in unix microseconds */

static uint64_t be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

/* pgoutput's Message: flags(1) lsn(8) prefix\0 length(4) content. */
static enum cs_err decode_message(const unsigned char *p, size_t n, struct cs_wal_msg *m, char *err)
{
    if (n < 10)
        return cs_err_set(err, CS_ERR_INVALID, "logical message truncated");
    const unsigned char *pre = p + 9, *nul = memchr(pre, '\0', n - 9);
    if (!nul)
        return cs_err_set(err, CS_ERR_INVALID, "logical message prefix unterminated");
    size_t off = (size_t)(nul - p) + 1;
    if (n - off < 4)
        return cs_err_set(err, CS_ERR_INVALID, "logical message length missing");
    uint64_t clen = (uint64_t)p[off] << 24 | (uint64_t)p[off + 1] << 16 |
                    (uint64_t)p[off + 2] << 8 | p[off + 3];
    off += 4;
    if (clen != n - off)
        return cs_err_set(err, CS_ERR_INVALID, "logical message length %llu, %zu bytes follow",
                          (unsigned long long)clen, n - off);
    size_t plen = (size_t)(nul - pre);
    if (plen < sizeof(PREFIX) - 1 || memcmp(pre, PREFIX, sizeof(PREFIX) - 1) != 0) {
        m->kind = CS_WAL_OTHER; /* another application's message */
        return CS_OK;
    }
    m->topic = (const char *)pre + sizeof(PREFIX) - 1;
    m->topic_len = plen - (sizeof(PREFIX) - 1);
    bool batch =
        m->topic_len > sizeof(BATCH) - 1 &&
        memcmp(m->topic + m->topic_len - (sizeof(BATCH) - 1), BATCH, sizeof(BATCH) - 1) == 0;
    if (batch)
        m->topic_len -= sizeof(BATCH) - 1;
    if (!(m->topic_len == 6 && memcmp(m->topic, "events", 6) == 0) &&
        !(m->topic_len == 7 && memcmp(m->topic, "results", 7) == 0))
        return cs_err_set(err, CS_ERR_INVALID,
                          "event topic \"%.*s\" is neither events nor "
                          "results",
                          (int)(m->topic_len > 40 ? 40 : m->topic_len), m->topic);
    const char *c = (const char *)p + off;
    if (batch) {
        m->kind = CS_WAL_BATCH;
        m->payload = c;
        m->payload_len = (size_t)clen;
        return CS_OK;
    }
    const char *nl = memchr(c, '\n', (size_t)clen);
    if (!nl || nl == c)
        return cs_err_set(err, CS_ERR_INVALID, "event without its key line");
    m->kind = CS_WAL_MESSAGE;
    m->key = c;
    m->key_len = (size_t)(nl - c);
    m->payload = nl + 1;
    m->payload_len = (size_t)clen - m->key_len - 1;
    return CS_OK;
}

enum cs_err cs_wal_decode(const char *buf, size_t len, struct cs_wal_msg *m, char *err)
{
    const unsigned char *b = (const unsigned char *)buf;
    memset(m, 0, sizeof(*m));
    m->kind = CS_WAL_OTHER;
    if (len < 1)
        return cs_err_set(err, CS_ERR_INVALID, "empty replication message");
    if (b[0] == 'k') {
        if (len < 18)
            return cs_err_set(err, CS_ERR_INVALID, "keepalive truncated");
        m->kind = CS_WAL_KEEPALIVE;
        m->end_lsn = be64(b + 1);
        m->reply_requested = b[17] != 0;
        return CS_OK;
    }
    if (b[0] != 'w')
        return cs_err_set(err, CS_ERR_INVALID, "unexpected replication message '%c'",
                          b[0] >= 0x20 && b[0] < 0x7f ? b[0] : '?');
    if (len < 26)
        return cs_err_set(err, CS_ERR_INVALID, "XLogData truncated");
    const unsigned char *p = b + 25;
    size_t n = len - 25;
    switch (p[0]) {
    case 'B':
        if (n < 21)
            return cs_err_set(err, CS_ERR_INVALID, "Begin truncated");
        m->kind = CS_WAL_BEGIN;
        return CS_OK;
    case 'C':
        if (n < 26)
            return cs_err_set(err, CS_ERR_INVALID, "Commit truncated");
        m->kind = CS_WAL_COMMIT;
        m->end_lsn = be64(p + 10);
        return CS_OK;
    case 'M': return decode_message(p + 1, n - 1, m, err);
    default: return CS_OK; /* relation, type, origin ...: nothing of ours */
    }
}

enum cs_err cs_wal_entry(const struct cs_wal_msg *b, size_t *pos, struct cs_wal_msg *one, char *err)
{
    const char *p = b->payload + *pos, *end = b->payload + b->payload_len;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl || nl == p)
        return cs_err_set(err, CS_ERR_INVALID, "event batch: entry without its key line");
    const char *q = nl + 1;
    size_t len = 0, digits = 0;
    for (; q < end && *q >= '0' && *q <= '9' && digits < 10; q++, digits++)
        len = len * 10 + (size_t)(*q - '0');
    if (!digits || q >= end || *q != '\n')
        return cs_err_set(err, CS_ERR_INVALID, "event batch: entry without its length line");
    q++;
    if (len > (size_t)(end - q))
        return cs_err_set(err, CS_ERR_INVALID, "event batch: entry of %zu bytes, %zu left", len,
                          (size_t)(end - q));
    memset(one, 0, sizeof(*one));
    one->kind = CS_WAL_MESSAGE;
    one->topic = b->topic;
    one->topic_len = b->topic_len;
    one->key = p;
    one->key_len = (size_t)(nl - p);
    one->payload = q;
    one->payload_len = len;
    *pos = (size_t)(q + len - b->payload);
    return CS_OK;
}

void cs_wal_status(unsigned char out[CS_WAL_STATUS_LEN], uint64_t lsn, int64_t now_us)
{
    out[0] = 'r';
    put64(out + 1, lsn);  /* written */
    put64(out + 9, lsn);  /* flushed: the slot's confirmed position */
    put64(out + 17, lsn); /* applied */
    put64(out + 25, (uint64_t)(now_us - PG_EPOCH_US));
    out[33] = 0; /* no reply requested */
}
