/*
 * cs_wal.h -- the logical replication stream the event relay reads: decoding
 * PostgreSQL's streaming replication messages (XLogData 'w', keepalive 'k')
 * with pgoutput's messages inside (Begin 'B', Message 'M', Commit 'C';
 * protocol version 1, so no transaction ids inside), and the standby status
 * update ('r') that confirms a position. Pure functions over bytes: unit
 * tested (tests/unit/test_wal.c) and fuzzed (tests/fuzz/fuzz_wal.c).
 *
 * Our messages are those cs_emit() writes (migration 014): prefix
 * "countersign.<topic>", content "<kafka key>\n<payload>"; and those
 * cs_emit_all() writes, a statement's events in one (migration 020): prefix
 * "countersign.<topic>.batch", content entries "<key>\n<length>\n<payload>",
 * read one at a time with cs_wal_entry().
 */
#ifndef CS_WAL_H
#define CS_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"

/* One message of the replication stream (CopyData), decoded. */
enum cs_wal_kind {
    CS_WAL_BEGIN,     /* a transaction starts */
    CS_WAL_MESSAGE,   /* one of ours: topic, key, payload are set */
    CS_WAL_BATCH,     /* several of ours: topic; payload holds the entries (cs_wal_entry) */
    CS_WAL_COMMIT,    /* the transaction ends at end_lsn */
    CS_WAL_KEEPALIVE, /* the server is at end_lsn; reply_requested */
    CS_WAL_OTHER      /* anything else (another prefix, relation, origin ...) */
};

struct cs_wal_msg {
    enum cs_wal_kind kind;
    uint64_t end_lsn;     /* COMMIT: end of the transaction; KEEPALIVE: the server's end */
    bool reply_requested; /* KEEPALIVE */
    const char *topic;    /* MESSAGE: "events" | "results" (points into the input) */
    size_t topic_len;
    const char *key, *payload; /* MESSAGE: point into the input; not NUL-terminated */
    size_t key_len, payload_len;
};

/*
 * Decodes one CopyData message of a pgoutput stream: 'w' (XLogData with a
 * pgoutput message inside) or 'k' (keepalive). Fails (CS_ERR_INVALID)
 * on anything malformed: truncated, a message of ours without its key
 * line, a topic other than events | results.
 */
enum cs_err cs_wal_decode(const char *buf, size_t len, struct cs_wal_msg *m,
                          char *err) CS_MUSTCHECK;

/*
 * The entry of batch b (CS_WAL_BATCH) at *pos (0 for the first): *one becomes
 * that event (CS_WAL_MESSAGE, b's topic; pointing into b's input) and *pos
 * moves past it; the last entry leaves *pos == b->payload_len. Fails
 * (CS_ERR_INVALID) on a malformed entry: empty key, no or a bad length, a
 * payload shorter than its length; what follows cannot be framed then.
 */
enum cs_err cs_wal_entry(const struct cs_wal_msg *b, size_t *pos, struct cs_wal_msg *one,
                         char *err) CS_MUSTCHECK;

/* The standby status update confirming lsn ('r', 34 bytes), at unix time now_us. */
#define CS_WAL_STATUS_LEN 34
void cs_wal_status(unsigned char out[CS_WAL_STATUS_LEN], uint64_t lsn, int64_t now_us);

#endif
