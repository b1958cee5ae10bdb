/*
 * test_wal.c -- unit tests of the replication stream decoding (lib/cs_wal.c)
 * and of the event slot's name (lib/cs_events.c).
 *
 * The messages are built here byte by byte after PostgreSQL's documented
 * formats (protocol-replication.html, protocol-logicalrep-message-formats.html);
 * the integration tests read the same bytes from a real walsender.
 */
#include <string.h>

#include "cs_events.h"
#include "cs_test.h"
#include "cs_wal.h"

static size_t put64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
    return 8;
}

/* An XLogData message around the pgoutput message body[0..n). */
static size_t xlog(unsigned char *out, const unsigned char *body, size_t n)
{
    size_t o = 0;
    out[o++] = 'w';
    o += put64(out + o, 0x1000); /* dataStart */
    o += put64(out + o, 0x2000); /* walEnd */
    o += put64(out + o, 12345);  /* sendTime */
    memcpy(out + o, body, n);
    return o + n;
}

/* pgoutput Message: 'M' flags lsn prefix\0 length content. */
static size_t message(unsigned char *out, const char *prefix, const char *content, size_t clen)
{
    unsigned char body[512];
    size_t o = 0;
    body[o++] = 'M';
    body[o++] = 1; /* transactional */
    o += put64(body + o, 0xABCDEF);
    memcpy(body + o, prefix, strlen(prefix) + 1);
    o += strlen(prefix) + 1;
    body[o++] = (unsigned char)(clen >> 24);
    body[o++] = (unsigned char)(clen >> 16);
    body[o++] = (unsigned char)(clen >> 8);
    body[o++] = (unsigned char)clen;
    memcpy(body + o, content, clen);
    return xlog(out, body, o + clen);
}

CS_TEST(decodes_our_message)
{
    unsigned char buf[600];
    const char content[] = "0190-abc\n{\"event_id\":\"x\"}";
    size_t n = message(buf, "countersign.results", content, sizeof(content) - 1);
    struct cs_wal_msg m;
    char err[CS_ERRLEN];
    if (!CS_CHECK_RC(cs_wal_decode((const char *)buf, n, &m, err), CS_OK))
        return;
    CS_CHECK(m.kind == CS_WAL_MESSAGE);
    CS_CHECK(m.topic_len == 7 && memcmp(m.topic, "results", 7) == 0);
    CS_CHECK(m.key_len == 8 && memcmp(m.key, "0190-abc", 8) == 0);
    CS_CHECK(m.payload_len == 16 && memcmp(m.payload, "{\"event_id\":\"x\"}", 16) == 0);
}

CS_TEST(other_prefixes_are_not_ours)
{
    unsigned char buf[600];
    size_t n = message(buf, "other.app", "k\nv", 3);
    struct cs_wal_msg m;
    char err[CS_ERRLEN];
    CS_CHECK_RC(cs_wal_decode((const char *)buf, n, &m, err), CS_OK);
    CS_CHECK(m.kind == CS_WAL_OTHER);
    n = message(buf, "countersign", "k\nv", 3); /* no dot: not ours either */
    CS_CHECK_RC(cs_wal_decode((const char *)buf, n, &m, err), CS_OK);
    CS_CHECK(m.kind == CS_WAL_OTHER);
}

CS_TEST(refuses_malformed_messages)
{
    unsigned char buf[600];
    struct cs_wal_msg m;
    char err[CS_ERRLEN];
    size_t n = message(buf, "countersign.audit", "k\nv", 3);
    CS_CHECK_RC(cs_wal_decode((const char *)buf, n, &m, err), CS_ERR_INVALID);
    CS_CHECK_HAS(err, "neither events nor results");
    n = message(buf, "countersign.events", "no key line", 11);
    CS_CHECK_RC(cs_wal_decode((const char *)buf, n, &m, err), CS_ERR_INVALID);
    n = message(buf, "countersign.events", "\n{}", 3); /* empty key */
    CS_CHECK_RC(cs_wal_decode((const char *)buf, n, &m, err), CS_ERR_INVALID);
    n = message(buf, "countersign.events", "k\n{}", 4);
    /* Every truncation of a valid message is refused, never read past. */
    for (size_t cut = 0; cut < n; cut++)
        CS_CHECK(cs_wal_decode((const char *)buf, cut, &m, err) != CS_OK ||
                 m.kind != CS_WAL_MESSAGE);
    /* A length that disagrees with the bytes that follow. */
    buf[n - 5] ^= 1;
    CS_CHECK_RC(cs_wal_decode((const char *)buf, n, &m, err), CS_ERR_INVALID);
    CS_CHECK_RC(cs_wal_decode("x", 1, &m, err), CS_ERR_INVALID);
}

/* A statement's events as one message (migration 020): split in order, keys and payloads intact. */
CS_TEST(splits_a_batch)
{
    unsigned char buf[600];
    const char content[] = "id-1\n7\n(e,1,a)id-2\n0\nid-3\n11\n{\"n\":\"a\nb\"}";
    size_t n = message(buf, "countersign.events.batch", content, sizeof(content) - 1);
    struct cs_wal_msg m, one;
    char err[CS_ERRLEN];
    if (!CS_CHECK_RC(cs_wal_decode((const char *)buf, n, &m, err), CS_OK))
        return;
    CS_CHECK(m.kind == CS_WAL_BATCH);
    CS_CHECK(m.topic_len == 6 && memcmp(m.topic, "events", 6) == 0);
    CS_CHECK(m.payload_len == sizeof(content) - 1);
    const char *keys[] = {"id-1", "id-2", "id-3"},
               *payloads[] = {"(e,1,a)", "", "{\"n\":\"a\nb\"}"};
    size_t pos = 0;
    for (int i = 0; i < 3; i++) {
        if (!CS_CHECK_RC(cs_wal_entry(&m, &pos, &one, err), CS_OK))
            return;
        CS_CHECK(one.kind == CS_WAL_MESSAGE && one.topic == m.topic && one.topic_len == 6);
        CS_CHECK(one.key_len == strlen(keys[i]) && memcmp(one.key, keys[i], one.key_len) == 0);
        CS_CHECK(one.payload_len == strlen(payloads[i]) &&
                 memcmp(one.payload, payloads[i], one.payload_len) == 0);
    }
    CS_CHECK(pos == m.payload_len);
    n = message(buf, "countersign.results.batch", "k\n2\n{}", 6);
    if (CS_CHECK_RC(cs_wal_decode((const char *)buf, n, &m, err), CS_OK))
        CS_CHECK(m.kind == CS_WAL_BATCH && m.topic_len == 7 && !memcmp(m.topic, "results", 7));
    n = message(buf, "countersign.audit.batch", "k\n2\n{}", 6);
    CS_CHECK_RC(cs_wal_decode((const char *)buf, n, &m, err), CS_ERR_INVALID);
}

/* Each way an entry can be malformed is refused, never read past the message. */
CS_TEST(refuses_malformed_batch_entries)
{
    const char *bad[] = {"\n2\n{}",            /* empty key */
                         "k",                  /* no key line */
                         "k\n",                /* no length */
                         "k\nx\n{}",           /* not a number */
                         "k\n2",               /* no length line */
                         "k\n3\n{}",           /* payload shorter than its length */
                         "k\n99999999999\n{}", /* 11 digits */
                         "k\n2\n{}k2\n9\n{}"}; /* the second entry short */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned char buf[600];
        size_t n = message(buf, "countersign.events.batch", bad[i], strlen(bad[i]));
        struct cs_wal_msg m, one;
        char err[CS_ERRLEN];
        if (!CS_CHECK_RC(cs_wal_decode((const char *)buf, n, &m, err), CS_OK))
            continue;
        size_t pos = 0;
        enum cs_err rc = CS_OK;
        while (pos < m.payload_len && (rc = cs_wal_entry(&m, &pos, &one, err)) == CS_OK)
            ;
        CS_CHECK_RC(rc, CS_ERR_INVALID);
    }
}

CS_TEST(begin_commit_and_keepalive)
{
    unsigned char body[64], buf[128];
    struct cs_wal_msg m;
    char err[CS_ERRLEN];
    size_t o = 0;
    body[o++] = 'B';
    o += put64(body + o, 0x3000);
    o += put64(body + o, 99);
    memset(body + o, 0, 4);
    o += 4;
    CS_CHECK_RC(cs_wal_decode((const char *)buf, xlog(buf, body, o), &m, err), CS_OK);
    CS_CHECK(m.kind == CS_WAL_BEGIN);
    o = 0;
    body[o++] = 'C';
    body[o++] = 0;
    o += put64(body + o, 0x2FF0); /* commit LSN */
    o += put64(body + o, 0x3010); /* end LSN: what the relay confirms */
    o += put64(body + o, 99);
    CS_CHECK_RC(cs_wal_decode((const char *)buf, xlog(buf, body, o), &m, err), CS_OK);
    CS_CHECK(m.kind == CS_WAL_COMMIT && m.end_lsn == 0x3010);
    CS_CHECK(cs_wal_decode((const char *)buf, xlog(buf, body, o - 1), &m, err) == CS_ERR_INVALID);
    o = 0;
    buf[o++] = 'k';
    o += put64(buf + o, 0x123456789ULL);
    o += put64(buf + o, 7);
    buf[o++] = 1;
    CS_CHECK_RC(cs_wal_decode((const char *)buf, o, &m, err), CS_OK);
    CS_CHECK(m.kind == CS_WAL_KEEPALIVE && m.end_lsn == 0x123456789ULL && m.reply_requested);
    CS_CHECK_RC(cs_wal_decode((const char *)buf, o - 1, &m, err), CS_ERR_INVALID);
}

CS_TEST(status_update_confirms_the_position)
{
    unsigned char s[CS_WAL_STATUS_LEN];
    cs_wal_status(s, 0x0102030405060708ULL, 946684800000000LL + 5);
    CS_CHECK(s[0] == 'r');
    static const unsigned char lsn[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (int k = 0; k < 3; k++) /* written, flushed, applied */
        CS_CHECK(memcmp(s + 1 + 8 * k, lsn, 8) == 0);
    static const unsigned char t[8] = {0, 0, 0, 0, 0, 0, 0, 5}; /* since 2000-01-01 */
    CS_CHECK(memcmp(s + 25, t, 8) == 0);
    CS_CHECK(s[33] == 0);
}

CS_TEST(slot_names)
{
    struct cs_config cfg = {0};
    char name[CS_EVENTS_SLOT_MAX + 1], err[CS_ERRLEN];
    CS_CHECK_RC(cs_events_slot_name(&cfg, "Count-ersign.db", name, err), CS_OK);
    CS_CHECK_EQ_STR(name, "countersign_count_ersign_db");
    char longdb[100];
    memset(longdb, 'a', 99);
    longdb[99] = '\0';
    CS_CHECK_RC(cs_events_slot_name(&cfg, longdb, name, err), CS_OK);
    CS_CHECK(strlen(name) == CS_EVENTS_SLOT_MAX);
    cfg.event_slot = "cs_prod";
    CS_CHECK_RC(cs_events_slot_name(&cfg, "ignored", name, err), CS_OK);
    CS_CHECK_EQ_STR(name, "cs_prod");
    cfg.event_slot = "Bad-Name";
    CS_CHECK_RC(cs_events_slot_name(&cfg, "x", name, err), CS_ERR_CONFIG);
    CS_CHECK_HAS(err, "CS_EVENT_SLOT");
}

CS_TEST_MAIN(CS_RUN(decodes_our_message), CS_RUN(other_prefixes_are_not_ours),
             CS_RUN(refuses_malformed_messages), CS_RUN(splits_a_batch),
             CS_RUN(refuses_malformed_batch_entries), CS_RUN(begin_commit_and_keepalive),
             CS_RUN(status_update_confirms_the_position), CS_RUN(slot_names))
