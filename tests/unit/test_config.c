/*
 * test_config.c -- unit tests of the configuration table and loader
 * (lib/cs_config.c).
 *
 * The environment is replaced by the loader's `get` callback reading a
 * small table, so the tests never depend on (or change) the real
 * environment. Held here: an empty environment yields every default and
 * every default is within its own bounds; a bad value is refused with the
 * variable named and the secret never echoed; the master key is accepted
 * as base64 or hex, from the variable or from a file, and refused at any
 * other length; topic names follow CS_TOPIC_PREFIX; every key is
 * documented. cs_config_free runs after every load, failed ones included
 * (as the processes do), and valgrind checks that nothing leaks.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cs_config.h"
#include "cs_mem.h"
#include "cs_test.h"

/* The fake environment: NULL-terminated name/value pairs. */
static const char *const *env;

static const char *fake_getenv(const char *name)
{
    for (const char *const *e = env; e && *e; e += 2)
        if (strcmp(e[0], name) == 0)
            return e[1];
    return NULL;
}

/* Loads cfg from the pairs (NULL-terminated); cfg must be freed by the caller. */
static enum cs_err load(struct cs_config *cfg, unsigned procs, const char *const *pairs, char *err)
{
    env = pairs;
    enum cs_err rc = cs_config_load(cfg, procs, fake_getenv, err);
    env = NULL;
    return rc;
}

/* The 32 bytes 0x00..0x1f, as base64 and as hex. */
#define KEY_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static bool key_is_sequence(const struct cs_config *cfg)
{
    for (int i = 0; i < CS_MASTER_KEY_LEN; i++)
        if (cfg->master_key[i] != i)
            return false;
    return cfg->have_master_key;
}

CS_TEST(defaults_with_empty_environment)
{
    struct cs_config cfg;
    char err[CS_ERRLEN] = "";
    static const char *const none[] = {NULL};
    if (CS_CHECK_RC(load(&cfg, CS_PROC_ALL, none, err), CS_OK)) {
        CS_CHECK_EQ_STR(cfg.pg_url, "postgresql://cs@127.0.0.1:5432/countersign");
        CS_CHECK_EQ_STR(cfg.kafka_brokers, "127.0.0.1:9092");
        CS_CHECK_EQ_STR(cfg.topic_prefix, "countersign");
        CS_CHECK_EQ_STR(cfg.topic_requests, "countersign.requests");
        CS_CHECK_EQ_STR(cfg.topic_events, "countersign.events");
        CS_CHECK_EQ_STR(cfg.topic_results, "countersign.results");
        CS_CHECK_EQ_STR(cfg.topic_dlq, "countersign.dlq");
        CS_CHECK_EQ_STR(cfg.log_level, "info");
        CS_CHECK_EQ_INT(cfg.kafka_partitions, 6);
        CS_CHECK_EQ_INT(cfg.ingest_batch, 1000);
        CS_CHECK_EQ_INT(cfg.http_port, 8080);
        CS_CHECK(cfg.migrate_on_start);
        CS_CHECK(cfg.master_key_b64 == NULL && cfg.admin_token == NULL);
        CS_CHECK(!cfg.have_master_key);
        CS_CHECK_HAS(cfg.instance_id, ":"); /* hostname:pid */
        CS_CHECK_RC(cs_config_require_master_key(&cfg, err), CS_ERR_CONFIG);
        CS_CHECK_HAS(err, "CS_MASTER_KEY");
    }
    cs_config_free(&cfg);
    /* An empty variable counts as unset. */
    static const char *const empty[] = {"CS_INGEST_BATCH", "", "CS_TOPIC_PREFIX", "", NULL};
    if (CS_CHECK_RC(load(&cfg, CS_PROC_ALL, empty, err), CS_OK)) {
        CS_CHECK_EQ_INT(cfg.ingest_batch, 1000);
        CS_CHECK_EQ_STR(cfg.topic_prefix, "countersign");
    }
    cs_config_free(&cfg);
}

CS_TEST(values_are_read)
{
    static const char *const pairs[] = {"CS_PG_URL",
                                        "postgresql://other/db",
                                        "CS_INGEST_BATCH",
                                        "1",
                                        "CS_HTTP_PORT",
                                        "0",
                                        "CS_MIGRATE_ON_START",
                                        "false",
                                        "CS_INSTANCE_ID",
                                        "api-7",
                                        "CS_LOG_LEVEL",
                                        "debug",
                                        "CS_ADMIN_TOKEN",
                                        "s3cret",
                                        "CS_REQUEST_MAX_BYTES",
                                        "67108864",
                                        NULL};
    struct cs_config cfg;
    char err[CS_ERRLEN] = "";
    if (CS_CHECK_RC(load(&cfg, CS_PROC_ALL, pairs, err), CS_OK)) {
        CS_CHECK_EQ_STR(cfg.pg_url, "postgresql://other/db");
        CS_CHECK_EQ_INT(cfg.ingest_batch, 1);
        CS_CHECK_EQ_INT(cfg.http_port, 0);
        CS_CHECK(!cfg.migrate_on_start);
        CS_CHECK_EQ_STR(cfg.instance_id, "api-7");
        CS_CHECK_EQ_STR(cfg.admin_token, "s3cret");
        CS_CHECK_EQ_INT(cfg.request_max_bytes, 64LL << 20);
    }
    cs_config_free(&cfg);
    CS_CHECK(cfg.pg_url == NULL && cfg.admin_token == NULL && cfg.instance_id == NULL);

    /* A key another process reads keeps its default, even when set badly. */
    static const char *const other[] = {"CS_INGEST_BATCH", "0", "CS_HTTP_PORT", "1", NULL};
    if (CS_CHECK_RC(load(&cfg, CS_PROC_SCHEDULER, other, err), CS_OK)) {
        CS_CHECK_EQ_INT(cfg.ingest_batch, 1000);
        CS_CHECK_EQ_INT(cfg.http_port, 8080);
    }
    cs_config_free(&cfg);
}

static void expect_refusal(const char *name, const char *value, int line)
{
    const char *pairs[] = {name, value, NULL};
    struct cs_config cfg;
    char err[CS_ERRLEN] = "";
    if (!cs_test_eq_rc(load(&cfg, CS_PROC_ALL, pairs, err), CS_ERR_CONFIG, __FILE__, line, name))
        printf("  %s=%s accepted\n", name, value);
    cs_test_has(err, name, __FILE__, line, "err");
    cs_config_free(&cfg);
}
#define REFUSED(name, value) expect_refusal((name), (value), __LINE__)

CS_TEST(bad_values_name_the_variable)
{
    REFUSED("CS_INGEST_BATCH", "0");
    REFUSED("CS_INGEST_BATCH", "10001");
    REFUSED("CS_INGEST_BATCH", "-1");
    REFUSED("CS_INGEST_BATCH", "abc");
    REFUSED("CS_INGEST_BATCH", "12abc");
    REFUSED("CS_INGEST_BATCH", "1.5");
    REFUSED("CS_INGEST_BATCH", "0x10");
    REFUSED("CS_INGEST_BATCH", "99999999999999999999999");
    REFUSED("CS_HTTP_PORT", "65536");
    REFUSED("CS_REQUEST_MAX_BYTES", "1023");
    REFUSED("CS_MIGRATE_ON_START", "yes");
    REFUSED("CS_MIGRATE_ON_START", "TRUE");
    REFUSED("CS_MIGRATE_ON_START", "2");
    REFUSED("CS_LOG_LEVEL", "verbose");
    REFUSED("CS_PUBLIC_URL", "ftp://x.example");
    REFUSED("CS_PUBLIC_URL", "x.example");

    struct cs_config cfg;
    char err[CS_ERRLEN] = "";
    static const char *const range[] = {"CS_INGEST_BATCH", "10001", NULL};
    CS_CHECK_RC(load(&cfg, CS_PROC_ALL, range, err), CS_ERR_CONFIG);
    CS_CHECK_HAS(err, "[1, 10000]");
    cs_config_free(&cfg);

    static const char *const bools[] = {"0", "1", "true", "false", NULL};
    for (const char *const *b = bools; *b; b++) {
        const char *pairs[] = {"CS_MIGRATE_ON_START", *b, NULL};
        if (CS_CHECK_RC(load(&cfg, CS_PROC_ALL, pairs, err), CS_OK))
            CS_CHECK_EQ_INT(cfg.migrate_on_start, (*b)[0] == '1' || (*b)[0] == 't');
        cs_config_free(&cfg);
    }
}

CS_TEST(master_key_from_variable)
{
    static const char *const good[] = {
        KEY_B64, KEY_HEX, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
        KEY_B64 "\n", NULL};
    for (const char *const *k = good; *k; k++) {
        const char *pairs[] = {"CS_MASTER_KEY", *k, NULL};
        struct cs_config cfg;
        char err[CS_ERRLEN] = "";
        if (CS_CHECK_RC(load(&cfg, CS_PROC_ALL, pairs, err), CS_OK)) {
            CS_CHECK(key_is_sequence(&cfg));
            CS_CHECK_RC(cs_config_require_master_key(&cfg, err), CS_OK);
        }
        cs_config_free(&cfg);
        CS_CHECK(cfg.master_key_b64 == NULL);
        unsigned char zero[CS_MASTER_KEY_LEN] = {0};
        CS_CHECK(memcmp(cfg.master_key, zero, sizeof(zero)) == 0); /* wiped */
    }
    static const char *const bad[] = {
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==",                   /* 31 bytes */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g",                   /* 33 bytes */
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e", /* 31 hex bytes */
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
        "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8-",
        "not a key",
        "q!",
        NULL};
    for (const char *const *k = bad; *k; k++) {
        const char *pairs[] = {"CS_MASTER_KEY", *k, NULL};
        struct cs_config cfg;
        char err[CS_ERRLEN] = "";
        if (!CS_CHECK_RC(load(&cfg, CS_PROC_ALL, pairs, err), CS_ERR_CONFIG))
            printf("  accepted %s\n", *k);
        CS_CHECK_HAS(err, "CS_MASTER_KEY");
        CS_CHECK(strstr(err, *k) == NULL); /* the secret is never echoed */
        cs_config_free(&cfg);
    }
}

/* Writes text to a fresh temporary file; returns its cs_malloc'd path. */
static char *temp_file(const char *text)
{
    const char *dir = getenv("TMPDIR");
    char *path = cs_asprintf("%s/cs_test_config_XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    cs_assert(fd >= 0);
    size_t n = strlen(text);
    cs_assert(write(fd, text, n) == (ssize_t)n);
    close(fd);
    return path;
}

CS_TEST(master_key_from_file)
{
    struct cs_config cfg;
    char err[CS_ERRLEN] = "";
    char *path = temp_file(KEY_HEX "\n");
    const char *pairs[] = {"CS_MASTER_KEY_FILE", path, NULL};
    if (CS_CHECK_RC(load(&cfg, CS_PROC_ALL, pairs, err), CS_OK))
        CS_CHECK(key_is_sequence(&cfg));
    cs_config_free(&cfg);
    unlink(path);
    cs_free(path);

    path = temp_file(KEY_B64 "\r\n");
    pairs[1] = path;
    if (CS_CHECK_RC(load(&cfg, CS_PROC_ALL, pairs, err), CS_OK))
        CS_CHECK(key_is_sequence(&cfg));
    cs_config_free(&cfg);

    /* CS_MASTER_KEY wins over the file. */
    const char *both[] = {"CS_MASTER_KEY",
                          "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=", "CS_MASTER_KEY_FILE",
                          path, NULL};
    if (CS_CHECK_RC(load(&cfg, CS_PROC_ALL, both, err), CS_OK))
        CS_CHECK_EQ_INT(cfg.master_key[0], 0x20);
    cs_config_free(&cfg);
    unlink(path);
    cs_free(path);

    path = temp_file("too short\n");
    pairs[1] = path;
    CS_CHECK_RC(load(&cfg, CS_PROC_ALL, pairs, err), CS_ERR_CONFIG);
    CS_CHECK_HAS(err, "CS_MASTER_KEY_FILE");
    cs_config_free(&cfg);
    unlink(path);
    CS_CHECK_RC(load(&cfg, CS_PROC_ALL, pairs, err), CS_ERR_CONFIG); /* now missing */
    CS_CHECK_HAS(err, "CS_MASTER_KEY_FILE");
    CS_CHECK_HAS(err, path);
    cs_config_free(&cfg);
    cs_free(path);
}

CS_TEST(topic_prefix)
{
    struct cs_config cfg;
    char err[CS_ERRLEN] = "";
    static const char *const pairs[] = {"CS_TOPIC_PREFIX", "acme-prod.cs_1", NULL};
    if (CS_CHECK_RC(load(&cfg, CS_PROC_ALL, pairs, err), CS_OK)) {
        CS_CHECK_EQ_STR(cfg.topic_requests, "acme-prod.cs_1.requests");
        CS_CHECK_EQ_STR(cfg.topic_events, "acme-prod.cs_1.events");
        CS_CHECK_EQ_STR(cfg.topic_results, "acme-prod.cs_1.results");
        CS_CHECK_EQ_STR(cfg.topic_dlq, "acme-prod.cs_1.dlq");
    }
    cs_config_free(&cfg);

    char longest[121];
    memset(longest, 'p', 120);
    longest[120] = '\0';
    const char *max[] = {"CS_TOPIC_PREFIX", longest, NULL};
    if (CS_CHECK_RC(load(&cfg, CS_PROC_ALL, max, err), CS_OK))
        CS_CHECK_EQ_INT(strlen(cfg.topic_requests), 120 + strlen(".requests"));
    cs_config_free(&cfg);

    char too_long[122];
    memset(too_long, 'p', 121);
    too_long[121] = '\0';
    REFUSED("CS_TOPIC_PREFIX", too_long);
    REFUSED("CS_TOPIC_PREFIX", "has space");
    REFUSED("CS_TOPIC_PREFIX", "a/b");
    REFUSED("CS_TOPIC_PREFIX", "caf\xc3\xa9");
}

CS_TEST(every_key_is_documented)
{
    CS_CHECK(cs_config_nkeys > 0);
    for (size_t i = 0; i < cs_config_nkeys; i++) {
        const struct cs_config_key *k = &cs_config_keys[i];
        if (!CS_CHECK(k->env && strncmp(k->env, "CS_", 3) == 0))
            continue;
        if (!CS_CHECK(k->help && strlen(k->help) >= 10))
            printf("  %s has no help text\n", k->env);
        CS_CHECK(k->procs != 0 && (k->procs & ~CS_PROC_ALL) == 0);
        CS_CHECK(k->offset < offsetof(struct cs_config, master_key));
        if (k->type == CS_CFG_SECRET)
            CS_CHECK(k->def == NULL);
        if (k->type == CS_CFG_INT && CS_CHECK(k->def != NULL)) {
            long long def = strtoll(k->def, NULL, 10);
            if (!CS_CHECK(k->min <= def && def <= k->max))
                printf("  %s default %s outside [%lld, %lld]\n", k->env, k->def, (long long)k->min,
                       (long long)k->max);
        }
        for (size_t j = i + 1; j < cs_config_nkeys; j++) {
            CS_CHECK(strcmp(k->env, cs_config_keys[j].env) != 0);
            CS_CHECK(k->offset != cs_config_keys[j].offset);
        }
    }
}

CS_TEST(help_and_markdown)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!CS_CHECK(f))
        return;
    cs_config_print_markdown(f);
    fclose(f);
    for (size_t i = 0; i < cs_config_nkeys; i++) {
        char cell[80];
        snprintf(cell, sizeof(cell), "| `%s` |", cs_config_keys[i].env);
        CS_CHECK_HAS(text, cell);
    }
    cs_free(text); /* open_memstream allocates with malloc, which cs_free matches */

    f = open_memstream(&text, &len);
    if (!CS_CHECK(f))
        return;
    cs_config_print_help(f, CS_PROC_SCHEDULER);
    fclose(f);
    CS_CHECK_HAS(text, "CS_SWEEP_INTERVAL_MS");
    CS_CHECK(strstr(text, "CS_HTTP_PORT") == NULL);
    cs_free(text);
}

/* CS_KAFKA_PROP_<NAME> -> librdkafka names, and which of them are secrets. */
CS_TEST(kafka_property_names)
{
    static const char *const good[][2] = {
        {"CS_KAFKA_PROP_SECURITY_PROTOCOL", "security.protocol"},
        {"CS_KAFKA_PROP_SASL_MECHANISMS", "sasl.mechanisms"},
        {"CS_KAFKA_PROP_SSL_CA_LOCATION", "ssl.ca.location"},
        {"CS_KAFKA_PROP_SSL__KEY", "ssl_key"},
        {"CS_KAFKA_PROP_MESSAGE_MAX_BYTES", "message.max.bytes"},
        {"CS_KAFKA_PROP_SASL_OAUTHBEARER_CONFIG", "sasl.oauthbearer.config"},
    };
    char out[64];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        CS_CHECK(cs_config_kafka_prop_name(good[i][0], out, sizeof(out)));
        CS_CHECK_EQ_STR(out, good[i][1]);
    }
    static const char *const bad[] = {
        "CS_KAFKA_PROP_",    "CS_KAFKA_PROP__X", "CS_KAFKA_PROP_X_", "CS_KAFKA_PROP_sasl_username",
        "CS_KAFKA_PROP_A-B", "CS_KAFKA_PROPS_X", "KAFKA_PROP_X"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CS_CHECK(!cs_config_kafka_prop_name(bad[i], out, sizeof(out)));
    char tiny[8];
    CS_CHECK(!cs_config_kafka_prop_name("CS_KAFKA_PROP_SECURITY_PROTOCOL", tiny, sizeof(tiny)));
    CS_CHECK(cs_config_kafka_prop_secret("sasl.password"));
    CS_CHECK(cs_config_kafka_prop_secret("ssl.key.password"));
    CS_CHECK(cs_config_kafka_prop_secret("ssl.key.pem"));
    CS_CHECK(cs_config_kafka_prop_secret("sasl.oauthbearer.client.secret"));
    CS_CHECK(cs_config_kafka_prop_secret("sasl.oauthbearer.config"));
    CS_CHECK(!cs_config_kafka_prop_secret("sasl.username"));
    CS_CHECK(!cs_config_kafka_prop_secret("ssl.key.location"));
}

CS_TEST_MAIN(CS_RUN(kafka_property_names), CS_RUN(defaults_with_empty_environment),
             CS_RUN(values_are_read), CS_RUN(bad_values_name_the_variable),
             CS_RUN(master_key_from_variable), CS_RUN(master_key_from_file), CS_RUN(topic_prefix),
             CS_RUN(every_key_is_documented), CS_RUN(help_and_markdown))
