/*
 * cs_config.h -- the one configuration table.
 *
 * cs_config_keys[] lists every setting once: environment variable, type,
 * default, bounds, which processes read it, and help. Parsing, `--help`,
 * the error for a bad value and docs/CONFIGURATION.md are all generated from
 * it (`countersign docs config`; `make docs-check` fails when the committed
 * file differs). Configuration is read once, in main(), into a struct
 * cs_config that is passed down as const; nothing keeps it in a global.
 *
 * Checklist when adding a key: a field in struct cs_config, a row in
 * cs_config_keys[] (lib/cs_config.c), then `make docs` to regenerate
 * docs/CONFIGURATION.md.
 */
#ifndef CS_CONFIG_H
#define CS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cs_err.h"

/* Processes, as a mask in each key's `procs`. */
#define CS_PROC_API 1u
#define CS_PROC_WORKER 2u
#define CS_PROC_SCHEDULER 4u
#define CS_PROC_CLI 8u
#define CS_PROC_ALL 15u

#define CS_MASTER_KEY_LEN 32

struct cs_config {
    /* Connections. */
    char *pg_url;
    char *relay_pg_url;
    char *pg_owner_url; /* secret (may hold a password): never printed */
    char *kafka_brokers;
    char *topic_prefix;
    char *kafka_group;
    int64_t kafka_partitions;
    int64_t kafka_session_timeout_ms;
    int64_t kafka_signature_window_s;
    bool kafka_allow_unsigned;
    char *kafka_properties_file;
    /* Identity and keys. */
    char *master_key_b64; /* secret: never printed */
    char *master_key_file;
    char *public_url;
    char *instance_id;
    char *log_level;
    bool migrate_on_start;
    /* Ingest. */
    int64_t ingest_batch;
    int64_t ingest_linger_ms;
    int64_t request_max_bytes;
    int64_t catalog_ttl_ms;
    /* Executor. */
    int64_t exec_concurrency;
    int64_t exec_claim_batch;
    int64_t exec_grant_share;      /* percent of exec_concurrency one grant may hold */
    int64_t exec_pace_ahead_ms;    /* a claim takes a rate-limited grant's tokens this far ahead */
    int64_t exec_host_connections; /* CURLMOPT_MAX_HOST_CONNECTIONS */
    int64_t lease_margin_ms;
    int64_t response_max_bytes;
    char *exec_ca_file;
    int64_t poll_interval_ms;
    int64_t shutdown_grace_ms;
    /* Notifier. */
    char *smtp_url;
    char *smtp_from;
    char *smtp_user;
    char *smtp_password; /* secret: never printed */
    int64_t notify_max_attempts;
    int64_t notify_timeout_ms;
    int64_t notify_backoff_ms;
    /* Relay. */
    int64_t relay_batch;
    char *event_slot;
    int64_t event_lag_max_bytes;
    /* Scheduler. */
    int64_t sweep_interval_ms;
    int64_t sweep_batch;
    int64_t retention_days;
    int64_t audit_retention_days;
    char *audit_head_file;
    /* API. */
    char *http_addr;
    int64_t http_port;
    int64_t http_fd;
    int64_t http_threads;
    int64_t http_max_connections;
    int64_t http_client_connections; /* per client address, 0: no limit */
    int64_t http_idle_s;
    char *admin_token; /* secret: never printed */
    int64_t metrics_port;
    /* Approver sign-in (api; links also worker and CLI). */
    int64_t signin_link_s;
    int64_t session_idle_s;
    int64_t session_max_s;
    char *oidc_issuer;
    char *oidc_client_id;
    char *oidc_client_secret; /* secret: never printed */
    char *oidc_client_secret_file;
    char *oidc_scopes;
    bool oidc_match_email;
    bool oidc_allow_http;
    char *oidc_operator_claim; /* operator console role from the ID token */
    char *oidc_operator_read;
    char *oidc_operator_write;
    int64_t console_refresh_s;

    /*
     * librdkafka properties for every Kafka client (not in the table): from
     * CS_KAFKA_PROPERTIES_FILE, then every CS_KAFKA_PROP_<NAME> variable
     * (cs_config_kafka_prop_name), which wins. kafka_props holds
     * 2 * nkafka_props strings, name then value; values may be secrets.
     */
    char **kafka_props;
    int nkafka_props;

    /* Derived by cs_config_load (not in the table). */
    unsigned char master_key[CS_MASTER_KEY_LEN];
    bool have_master_key;
    char topic_requests[160], topic_events[160], topic_results[160], topic_dlq[160];
};

enum cs_config_type { CS_CFG_STRING, CS_CFG_SECRET, CS_CFG_INT, CS_CFG_BOOL };

struct cs_config_key {
    const char *env; /* e.g. "CS_PG_URL" */
    enum cs_config_type type;
    size_t offset;    /* offsetof(struct cs_config, field) */
    const char *def;  /* default as text; NULL = unset */
    int64_t min, max; /* bounds for CS_CFG_INT */
    unsigned procs;   /* CS_PROC_* mask */
    const char *help;
};

extern const struct cs_config_key cs_config_keys[];
extern const size_t cs_config_nkeys;

/*
 * Loads every key used by `procs` from the environment (getenv-like `get`,
 * NULL for getenv), applying defaults and bounds, then derives the master
 * key and topic names. Returns CS_ERR_CONFIG with the variable named in err
 * on the first bad value. cfg owns its strings: release with cs_config_free.
 */
enum cs_err cs_config_load(struct cs_config *cfg, unsigned procs,
                           const char *(*get)(const char *name), char *err) CS_MUSTCHECK;
void cs_config_free(struct cs_config *cfg);

/*
 * The librdkafka property a CS_KAFKA_PROP_<NAME> variable names, into
 * out[outlen]: <NAME> lower-cased, each "_" a ".", each "__" a literal "_"
 * (CS_KAFKA_PROP_SASL_MECHANISMS -> sasl.mechanisms). False when env does
 * not start with CS_KAFKA_PROP_, the name is empty, has other characters
 * than A-Z, 0-9 and _, or does not fit.
 */
bool cs_config_kafka_prop_name(const char *env, char *out, size_t outlen);

/* True when librdkafka property `name` holds a secret (its value is never shown). */
bool cs_config_kafka_prop_secret(const char *name);

/* Requires the master key (CS_MASTER_KEY or CS_MASTER_KEY_FILE) to be set. */
enum cs_err cs_config_require_master_key(const struct cs_config *cfg, char *err) CS_MUSTCHECK;

/* Prints the keys used by `procs` for --help. */
void cs_config_print_help(FILE *out, unsigned procs);

/* Writes docs/CONFIGURATION.md (Markdown) for every key. */
void cs_config_print_markdown(FILE *out);

#endif
