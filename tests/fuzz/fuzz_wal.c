/*
 * fuzz_wal.c -- libFuzzer target: the logical replication stream the event
 * relay reads (lib/cs_wal.c), bytes a walsender -- or whatever answers on
 * the database's port -- sends.
 *
 * Input: one CopyData message. Properties:
 *   - decoding never reads outside the input (ASan);
 *   - a message of ours points inside the input: topic "events" or
 *     "results", a non-empty key without a newline, and key "\n" payload
 *     exactly filling the content the message's length field announced;
 *   - a batch (migration 020) holds entries that, split by cs_wal_entry(),
 *     each point inside it, tile it exactly in order, and carry a
 *     non-empty key without a newline; a malformed entry stops the split
 *     with an error, never past the end;
 *   - a keepalive or a commit carries the LSN at its documented offset.
 */
#include "cs_wal.h"
#include "fuzz.h"

static bool inside(const uint8_t *data, size_t size, const char *p, size_t n)
{
    const char *b = (const char *)data;
    return p >= b && p + n <= b + size;
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cs_wal_msg m;
    char err[CS_ERRLEN];
    if (cs_wal_decode((const char *)data, size, &m, err) != CS_OK) {
        FUZZ_CHECK(err[0] != '\0');
        return 0;
    }
    switch (m.kind) {
    case CS_WAL_MESSAGE:
        FUZZ_CHECK(inside(data, size, m.topic, m.topic_len));
        FUZZ_CHECK((m.topic_len == 6 && !memcmp(m.topic, "events", 6)) ||
                   (m.topic_len == 7 && !memcmp(m.topic, "results", 7)));
        FUZZ_CHECK(m.key_len > 0 && inside(data, size, m.key, m.key_len));
        FUZZ_CHECK(!memchr(m.key, '\n', m.key_len) && m.key[m.key_len] == '\n');
        FUZZ_CHECK(m.payload == m.key + m.key_len + 1);
        FUZZ_CHECK(m.payload + m.payload_len == (const char *)data + size);
        break;
    case CS_WAL_BATCH:
        FUZZ_CHECK(inside(data, size, m.topic, m.topic_len));
        FUZZ_CHECK(m.payload + m.payload_len == (const char *)data + size);
        for (size_t pos = 0; pos < m.payload_len;) {
            struct cs_wal_msg one;
            size_t before = pos;
            if (cs_wal_entry(&m, &pos, &one, err) != CS_OK) {
                FUZZ_CHECK(err[0] != '\0' && pos == before);
                break;
            }
            FUZZ_CHECK(one.kind == CS_WAL_MESSAGE && one.topic == m.topic);
            FUZZ_CHECK(one.key == m.payload + before && one.key_len > 0);
            FUZZ_CHECK(!memchr(one.key, '\n', one.key_len));
            FUZZ_CHECK(inside(data, size, one.payload, one.payload_len));
            FUZZ_CHECK(pos > before && one.payload + one.payload_len == m.payload + pos);
        }
        break;
    case CS_WAL_KEEPALIVE:
        FUZZ_CHECK(data[0] == 'k' && size >= 18 && m.end_lsn == be64(data + 1));
        break;
    case CS_WAL_COMMIT:
        FUZZ_CHECK(data[0] == 'w' && size >= 51 && m.end_lsn == be64(data + 35));
        break;
    case CS_WAL_BEGIN:
    case CS_WAL_OTHER: FUZZ_CHECK(data[0] == 'w'); break;
    }
    return 0;
}
