/*
 * cs_config.c -- the configuration table and its loader (see cs_config.h).
 *
 * Checklist when adding a key: field in struct cs_config (cs_config.h),
 * row below, `make docs` (docs/CONFIGURATION.md is generated from here).
 */
#include "cs_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cs_crypto.h"
#include "cs_ident.h"
#include "cs_log.h"
#include "cs_mem.h"

#define F(field) offsetof(struct cs_config, field)
#define W CS_PROC_WORKER
#define S CS_PROC_SCHEDULER
#define A CS_PROC_API
#define C CS_PROC_CLI
#define ALL CS_PROC_ALL
#define DAY 86400000LL

const struct cs_config_key cs_config_keys[] = {
    {"CS_PG_URL", CS_CFG_STRING, F(pg_url), "postgresql://cs@127.0.0.1:5432/countersign", 0, 0, ALL,
     "libpq connection URL of the Countersign database, as this process's own role "
     "(countersign_api for the api and the CLI, countersign_worker, countersign_scheduler)"},
    {"CS_RELAY_PG_URL", CS_CFG_SECRET, F(relay_pg_url), NULL, 0, 0, W,
     "libpq URL of the relay's replication connection: a role with REPLICATION and no table "
     "grants (countersign_relay; default CS_PG_URL)"},
    {"CS_PG_OWNER_URL", CS_CFG_SECRET, F(pg_owner_url), NULL, 0, 0, ALL,
     "libpq URL as the role that owns the schema (countersign_owner), used only to apply "
     "migrations (`countersign migrate`, CS_MIGRATE_ON_START); unset: CS_PG_URL"},
    {"CS_KAFKA_BROKERS", CS_CFG_STRING, F(kafka_brokers), "127.0.0.1:9092", 0, 0, W | A | C,
     "Kafka bootstrap servers (host:port,...)"},
    {"CS_TOPIC_PREFIX", CS_CFG_STRING, F(topic_prefix), "countersign", 0, 0, W | A | C,
     "topic names are PREFIX.requests, PREFIX.events, PREFIX.results and PREFIX.dlq"},
    {"CS_KAFKA_GROUP", CS_CFG_STRING, F(kafka_group), "countersign-ingest", 0, 0, W,
     "consumer group of the ingest consumers on the requests topic"},
    {"CS_KAFKA_PARTITIONS", CS_CFG_INT, F(kafka_partitions), "6", 1, 1024, W | C,
     "partitions for topics Countersign creates when they are missing"},
    {"CS_KAFKA_SESSION_TIMEOUT_MS", CS_CFG_INT, F(kafka_session_timeout_ms), "10000", 6000, 300000,
     W, "how soon the group reassigns the partitions of an ingest consumer that died"},
    {"CS_KAFKA_SIGNATURE_WINDOW_S", CS_CFG_INT, F(kafka_signature_window_s), "300", 5, 86400, W,
     "replay window of signed request envelopes: a signature's t may differ from the broker's "
     "append time (or the worker's clock) by at most this many seconds"},
    {"CS_KAFKA_ALLOW_UNSIGNED", CS_CFG_BOOL, F(kafka_allow_unsigned), "0", 0, 0, W,
     "accept request envelopes without a countersign-signature header as the agent they name "
     "(anyone who can write the topic can then act as any agent; logged at start)"},
    {"CS_KAFKA_PROPERTIES_FILE", CS_CFG_STRING, F(kafka_properties_file), NULL, 0, 0, W | A | S | C,
     "file of librdkafka properties (name=value lines, # comments) for every Kafka client, e.g. "
     "security.protocol, sasl.*, ssl.*; CS_KAFKA_PROP_<NAME> variables override it (see below)"},
    {"CS_MASTER_KEY", CS_CFG_SECRET, F(master_key_b64), NULL, 0, 0, ALL,
     "master key: 32 bytes as base64 or 64 hex digits; encrypts grant secrets and signing keys, derives "
     "the link-signing key (or use CS_MASTER_KEY_FILE)"},
    {"CS_MASTER_KEY_FILE", CS_CFG_STRING, F(master_key_file), NULL, 0, 0, ALL,
     "file holding the master key (same format); used when CS_MASTER_KEY is unset"},
    {"CS_PUBLIC_URL", CS_CFG_STRING, F(public_url), "http://127.0.0.1:8080", 0, 0, ALL,
     "base URL of the api as approvers reach it; approval links start with it"},
    {"CS_INSTANCE_ID", CS_CFG_STRING, F(instance_id), NULL, 0, 0, ALL,
     "name of this process in leases and logs, 1-80 of [A-Za-z0-9._:-] (default: hostname:pid)"},
    {"CS_LOG_LEVEL", CS_CFG_STRING, F(log_level), "info", 0, 0, ALL,
     "debug, info, warn, error or off"},
    {"CS_MIGRATE_ON_START", CS_CFG_BOOL, F(migrate_on_start), "1", 0, 0, A | W | S,
     "apply pending database migrations at start, through CS_PG_OWNER_URL (safe with many "
     "processes; nothing is opened as the owner when the schema is current)"},
    {"CS_INGEST_BATCH", CS_CFG_INT, F(ingest_batch), "1000", 1, 10000, W,
     "most Kafka requests stored in one Postgres transaction"},
    {"CS_INGEST_LINGER_MS", CS_CFG_INT, F(ingest_linger_ms), "20", 0, 1000, W,
     "how long ingest waits to fill a batch"},
    {"CS_REQUEST_MAX_BYTES", CS_CFG_INT, F(request_max_bytes), "1048576", 1024, 64LL << 20, W | A,
     "largest request envelope or submit body accepted"},
    {"CS_CATALOG_TTL_MS", CS_CFG_INT, F(catalog_ttl_ms), "2000", 0, 600000, W | A,
     "how long agents, grants and policies are cached in memory"},
    {"CS_EXEC_CONCURRENCY", CS_CFG_INT, F(exec_concurrency), "256", 1, 10000, W,
     "provider calls in flight per worker process"},
    {"CS_EXEC_CLAIM_BATCH", CS_CFG_INT, F(exec_claim_batch), "100", 1, 1000, W,
     "most approved calls claimed in one statement"},
    {"CS_EXEC_GRANT_SHARE", CS_CFG_INT, F(exec_grant_share), "75", 1, 100, W,
     "percent of a worker's call slots one grant may hold: the rest stay free for other "
     "grants when one provider is slow or dead"},
    {"CS_EXEC_PACE_AHEAD_MS", CS_CFG_INT, F(exec_pace_ahead_ms), "100", 0, 10000, W,
     "a claim takes up to this much of a rate-limited grant's tokens ahead; those calls wait "
     "in the worker for their turn, so calls leave at the grant's rate, not in bunches "
     "(0: only the tokens the bucket holds, all started at once)"},
    {"CS_EXEC_HOST_CONNECTIONS", CS_CFG_INT, F(exec_host_connections), "64", 1, 10000, W,
     "connections per provider host per worker, reused (keep-alive, HTTP/2 where offered) "
     "for grants with idempotency keys"},
    {"CS_LEASE_MARGIN_MS", CS_CFG_INT, F(lease_margin_ms), "30000", 1000, DAY, W | S,
     "a claim's lease is the execution timeout plus this margin"},
    {"CS_RESPONSE_MAX_BYTES", CS_CFG_INT, F(response_max_bytes), "1048576", 0, 64LL << 20, W,
     "provider response bodies are stored up to this size, then truncated (flagged)"},
    {"CS_EXEC_CA_FILE", CS_CFG_STRING, F(exec_ca_file), NULL, 0, 0, W,
     "CA bundle for provider TLS (default: the system store)"},
    {"CS_POLL_INTERVAL_MS", CS_CFG_INT, F(poll_interval_ms), "1000", 10, 60000, W | A,
     "fallback polling when no LISTEN/NOTIFY wake-up arrives"},
    {"CS_SHUTDOWN_GRACE_MS", CS_CFG_INT, F(shutdown_grace_ms), "30000", 0, 600000, W | A,
     "on SIGTERM, how long in-flight work may finish before its leases are released"},
    {"CS_SMTP_URL", CS_CFG_STRING, F(smtp_url), NULL, 0, 0, W,
     "SMTP server for approver emails, smtp://host:port or smtps://host:port (email off when unset)"},
    {"CS_SMTP_FROM", CS_CFG_STRING, F(smtp_from), "countersign@localhost", 0, 0, W,
     "sender address of approver emails"},
    {"CS_SMTP_USER", CS_CFG_STRING, F(smtp_user), NULL, 0, 0, W,
     "SMTP user name, if the server needs one"},
    {"CS_SMTP_PASSWORD", CS_CFG_SECRET, F(smtp_password), NULL, 0, 0, W, "SMTP password"},
    {"CS_NOTIFY_MAX_ATTEMPTS", CS_CFG_INT, F(notify_max_attempts), "8", 1, 50, W,
     "tries per approver message before it is marked failed"},
    {"CS_NOTIFY_BACKOFF_MS", CS_CFG_INT, F(notify_backoff_ms), "30000", 100, 3600000, W,
     "wait before retrying a failed approver message; doubles per attempt, at most 1 h"},
    {"CS_NOTIFY_TIMEOUT_MS", CS_CFG_INT, F(notify_timeout_ms), "10000", 100, 120000, W,
     "time limit of one email or webhook delivery"},
    {"CS_RELAY_BATCH", CS_CFG_INT, F(relay_batch), "1000", 1, 10000, W,
     "most events the relay hands the broker before it waits for the acknowledgements "
     "and confirms the slot's position"},
    {"CS_EVENT_SLOT", CS_CFG_STRING, F(event_slot), NULL, 0, 0, ALL,
     "logical replication slot the events are read from (default countersign_<database>, "
     "made by the first process that starts; Postgres needs wal_level = logical)"},
    {"CS_EVENT_LAG_MAX_BYTES", CS_CFG_INT, F(event_lag_max_bytes), "1073741824", 1048576, INT64_MAX,
     A,
     "WAL the event slot may hold back before /readyz says not ready (a relay "
     "that stays away); keep Postgres's max_slot_wal_keep_size above it"},
    {"CS_SWEEP_INTERVAL_MS", CS_CFG_INT, F(sweep_interval_ms), "1000", 50, 3600000, S,
     "how often the scheduler's duties run"},
    {"CS_SWEEP_BATCH", CS_CFG_INT, F(sweep_batch), "1000", 1, 100000, S,
     "most rows one duty changes per transaction"},
    {"CS_RETENTION_DAYS", CS_CFG_INT, F(retention_days), "30", 1, 36500, S,
     "terminal approvals (with their votes and notifications) and finished batches are "
     "deleted after this many days"},
    {"CS_AUDIT_RETENTION_DAYS", CS_CFG_INT, F(audit_retention_days), "0", 0, 36500, S,
     "whole audit seals older than this are pruned, the chain kept verifiable (0: keep forever)"},
    {"CS_AUDIT_HEAD_FILE", CS_CFG_STRING, F(audit_head_file), NULL, 0, 0, S | A | C,
     "append-only file where the scheduler publishes every signed audit seal head (one JSON "
     "line each) and `audit verify` checks the chain against; keep it where the database's "
     "users cannot write (unset: not published, a cut chain goes unnoticed)"},
    {"CS_HTTP_ADDR", CS_CFG_STRING, F(http_addr), "127.0.0.1", 0, 0, A | W | S,
     "address the api (and the worker's and scheduler's /metrics) listen on"},
    {"CS_HTTP_PORT", CS_CFG_INT, F(http_port), "8080", 0, 65535, A,
     "port the api listens on (0 picks a free port and logs it)"},
    {"CS_HTTP_FD", CS_CFG_INT, F(http_fd), "-1", -1, 65535, A,
     "a listening TCP socket the api inherits from whoever started it, served instead of "
     "binding CS_HTTP_ADDR:CS_HTTP_PORT (the starter bound it, to port 0 if it likes, and "
     "knows the port before the api starts; -1: bind)"},
    {"CS_HTTP_THREADS", CS_CFG_INT, F(http_threads), "4", 1, 256, A, "api threads serving HTTP"},
    {"CS_HTTP_MAX_CONNECTIONS", CS_CFG_INT, F(http_max_connections), "20000", 16, 1000000, A,
     "open connections the api accepts in all, long-poll waiters included (the process's "
     "open-files limit must be higher)"},
    {"CS_HTTP_CLIENT_CONNECTIONS", CS_CFG_INT, F(http_client_connections), "1000", 0, 1000000, A,
     "open connections one client address may hold, long-poll waiters included, so that one "
     "client cannot take them all (0: no limit; behind a proxy every client shares its "
     "address: raise it there)"},
    {"CS_HTTP_IDLE_SECONDS", CS_CFG_INT, F(http_idle_s), "15", 1, 3600, A,
     "a connection that sends nothing for this long -- an unfinished request, an idle "
     "keep-alive -- is closed; long-poll waiters are not (they wait for their answer)"},
    {"CS_METRICS_PORT", CS_CFG_INT, F(metrics_port), "0", 0, 65535, W | S,
     "port of the worker's or scheduler's own /metrics on CS_HTTP_ADDR (0: off)"},
    {"CS_ADMIN_TOKEN", CS_CFG_SECRET, F(admin_token), NULL, 0, 0, A,
     "bearer token for /v1/admin/* (admin API disabled when unset)"},
    {"CS_SIGNIN_LINK_SECONDS", CS_CFG_INT, F(signin_link_s), "900", 60, 86400, W | A | C,
     "lifetime of a one-time sign-in link sent to an approver (each is single-use)"},
    {"CS_SESSION_IDLE_SECONDS", CS_CFG_INT, F(session_idle_s), "3600", 60, 604800, A,
     "an approver's session ends after this long without a request"},
    {"CS_SESSION_MAX_SECONDS", CS_CFG_INT, F(session_max_s), "43200", 300, 2592000, A,
     "an approver's session ends this long after sign-in, whatever its use"},
    {"CS_OIDC_ISSUER", CS_CFG_STRING, F(oidc_issuer), NULL, 0, 0, A,
     "OpenID Connect issuer URL for approver single sign-on (SSO off when unset)"},
    {"CS_OIDC_CLIENT_ID", CS_CFG_STRING, F(oidc_client_id), NULL, 0, 0, A,
     "client id registered at the OpenID provider; the redirect URI is "
     "CS_PUBLIC_URL/signin/oidc/callback"},
    {"CS_OIDC_CLIENT_SECRET", CS_CFG_SECRET, F(oidc_client_secret), NULL, 0, 0, A,
     "client secret at the OpenID provider (or CS_OIDC_CLIENT_SECRET_FILE; none: PKCE only)"},
    {"CS_OIDC_CLIENT_SECRET_FILE", CS_CFG_STRING, F(oidc_client_secret_file), NULL, 0, 0, A,
     "file holding the OpenID client secret; used when CS_OIDC_CLIENT_SECRET is unset"},
    {"CS_OIDC_SCOPES", CS_CFG_STRING, F(oidc_scopes), "openid email profile", 0, 0, A,
     "scopes asked of the OpenID provider"},
    {"CS_OIDC_MATCH_EMAIL", CS_CFG_BOOL, F(oidc_match_email), "1", 0, 0, A,
     "map a signed-in person to the approver with their verified email when no approver "
     "has their subject"},
    {"CS_OIDC_ALLOW_HTTP", CS_CFG_BOOL, F(oidc_allow_http), "0", 0, 0, A,
     "accept a plain-http OpenID issuer (loopback tests only; never in production)"},
    {"CS_OIDC_OPERATOR_CLAIM", CS_CFG_STRING, F(oidc_operator_claim), NULL, 0, 0, A,
     "ID token claim (a string or an array of strings, e.g. groups) that grants the operator "
     "console role at sign-in"},
    {"CS_OIDC_OPERATOR_READ", CS_CFG_STRING, F(oidc_operator_read), NULL, 0, 0, A,
     "value of CS_OIDC_OPERATOR_CLAIM that grants the read-only operator role"},
    {"CS_OIDC_OPERATOR_WRITE", CS_CFG_STRING, F(oidc_operator_write), NULL, 0, 0, A,
     "value of CS_OIDC_OPERATOR_CLAIM that grants the read-write operator role"},
    {"CS_CONSOLE_REFRESH_SECONDS", CS_CFG_INT, F(console_refresh_s), "5", 0, 3600, A,
     "how often the operator console's pages refresh their counts and lists (0: never)"},
};
const size_t cs_config_nkeys = sizeof(cs_config_keys) / sizeof(cs_config_keys[0]);

static enum cs_err parse_int(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0')
        return CS_ERR_CONFIG;
    *out = v;
    return CS_OK;
}

static enum cs_err parse_master_key(const char *text, unsigned char out[CS_MASTER_KEY_LEN])
{
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
        n--;
    if (n == 2 * CS_MASTER_KEY_LEN && cs_hex_decode(text, n, out, CS_MASTER_KEY_LEN) == CS_OK)
        return CS_OK;
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    if (cs_b64_decode(text, n, false, &raw, &rawlen) != CS_OK)
        return CS_ERR_CONFIG;
    enum cs_err rc = rawlen == CS_MASTER_KEY_LEN ? CS_OK : CS_ERR_CONFIG;
    if (rc == CS_OK)
        memcpy(out, raw, CS_MASTER_KEY_LEN);
    cs_wipe(raw, rawlen);
    cs_free(raw);
    return rc;
}

static enum cs_err load_master_key(struct cs_config *cfg, char *err)
{
    if (cfg->master_key_b64) {
        if (parse_master_key(cfg->master_key_b64, cfg->master_key) != CS_OK)
            return cs_err_set(err, CS_ERR_CONFIG,
                              "CS_MASTER_KEY: expected 32 bytes as base64 or 64 hex digits");
        cfg->have_master_key = true;
        return CS_OK;
    }
    if (!cfg->master_key_file)
        return CS_OK;
    FILE *f = fopen(cfg->master_key_file, "r");
    if (!f)
        return cs_err_set(err, CS_ERR_CONFIG, "CS_MASTER_KEY_FILE: cannot open %s: %s",
                          cfg->master_key_file, strerror(errno));
    char text[256] = {0};
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    enum cs_err rc = parse_master_key(text, cfg->master_key);
    cs_wipe(text, sizeof(text));
    if (rc != CS_OK)
        return cs_err_set(err, CS_ERR_CONFIG,
                          "CS_MASTER_KEY_FILE: expected 32 bytes as base64 or 64 hex digits");
    cfg->have_master_key = true;
    return CS_OK;
}

/* SSO is on when an issuer is set: it then needs a client id, and its secret may come from a file. */
static enum cs_err load_oidc(struct cs_config *cfg, char *err)
{
    if (!cfg->oidc_issuer)
        return CS_OK;
    if (!cfg->oidc_client_id)
        return cs_err_set(err, CS_ERR_CONFIG, "CS_OIDC_CLIENT_ID: required with CS_OIDC_ISSUER");
    if (strncmp(cfg->oidc_issuer, "https://", 8) &&
        !(cfg->oidc_allow_http && !strncmp(cfg->oidc_issuer, "http://", 7)))
        return cs_err_set(err, CS_ERR_CONFIG, "CS_OIDC_ISSUER: must be an https:// URL");
    if (!cfg->oidc_operator_claim != (!cfg->oidc_operator_read && !cfg->oidc_operator_write))
        return cs_err_set(err, CS_ERR_CONFIG,
                          "CS_OIDC_OPERATOR_CLAIM goes with "
                          "CS_OIDC_OPERATOR_READ and/or CS_OIDC_OPERATOR_WRITE");
    if (cfg->oidc_client_secret || !cfg->oidc_client_secret_file)
        return CS_OK;
    FILE *f = fopen(cfg->oidc_client_secret_file, "r");
    if (!f)
        return cs_err_set(err, CS_ERR_CONFIG, "CS_OIDC_CLIENT_SECRET_FILE: cannot open %s: %s",
                          cfg->oidc_client_secret_file, strerror(errno));
    char text[1024] = {0};
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
        n--;
    text[n] = '\0';
    if (n > 0)
        cfg->oidc_client_secret = cs_strdup(text);
    cs_wipe(text, sizeof(text));
    return n > 0 ? CS_OK
                 : cs_err_set(err, CS_ERR_CONFIG, "CS_OIDC_CLIENT_SECRET_FILE: the file is empty");
}

bool cs_config_kafka_prop_name(const char *env, char *out, size_t outlen)
{
    static const char prefix[] = "CS_KAFKA_PROP_";
    if (strncmp(env, prefix, sizeof(prefix) - 1) != 0)
        return false;
    const char *p = env + sizeof(prefix) - 1;
    size_t n = 0;
    if (!*p || *p == '_')
        return false;
    for (; *p; p++) {
        char c = *p;
        if (c == '_' && p[1] == '_') {
            p++;
        } else if (c == '_') {
            c = '.';
        } else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
            c = (char)tolower((unsigned char)c);
        } else {
            return false;
        }
        if (n + 1 >= outlen)
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return n > 0 && out[n - 1] != '.';
}

bool cs_config_kafka_prop_secret(const char *name)
{
    size_t n = strlen(name);
    return strstr(name, "password") || strstr(name, "secret") ||
           strstr(name, "oauthbearer.config") || (n > 4 && !strcmp(name + n - 4, ".pem")) ||
           !strcmp(name, "ssl_key");
}

/* Adds (or replaces) property name=value. */
static void kafka_prop_set(struct cs_config *cfg, const char *name, const char *value)
{
    for (int i = 0; i < cfg->nkafka_props; i++)
        if (!strcmp(cfg->kafka_props[2 * i], name)) {
            cs_wipe(cfg->kafka_props[2 * i + 1], strlen(cfg->kafka_props[2 * i + 1]));
            cs_free(cfg->kafka_props[2 * i + 1]);
            cfg->kafka_props[2 * i + 1] = cs_strdup(value);
            return;
        }
    cfg->kafka_props =
        cs_realloc(cfg->kafka_props, sizeof(char *) * 2 * (size_t)(cfg->nkafka_props + 1));
    cfg->kafka_props[2 * cfg->nkafka_props] = cs_strdup(name);
    cfg->kafka_props[2 * cfg->nkafka_props + 1] = cs_strdup(value);
    cfg->nkafka_props++;
}

/* CS_KAFKA_PROPERTIES_FILE: name=value lines; blank lines and # comments skipped. */
static enum cs_err kafka_props_file(struct cs_config *cfg, char *err)
{
    if (!cfg->kafka_properties_file)
        return CS_OK;
    FILE *f = fopen(cfg->kafka_properties_file, "r");
    if (!f)
        return cs_err_set(err, CS_ERR_CONFIG, "CS_KAFKA_PROPERTIES_FILE: cannot open %s: %s",
                          cfg->kafka_properties_file, strerror(errno));
    char line[8192];
    int no = 0;
    enum cs_err rc = CS_OK;
    while (!rc && fgets(line, sizeof(line), f)) {
        no++;
        size_t n = strlen(line);
        if (n == sizeof(line) - 1 && line[n - 1] != '\n')
            rc = cs_err_set(err, CS_ERR_CONFIG,
                            "CS_KAFKA_PROPERTIES_FILE: line %d is longer "
                            "than %zu bytes",
                            no, sizeof(line) - 2);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
            line[--n] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (rc || !*p || *p == '#')
            continue;
        char *eq = strchr(p, '=');
        if (!eq || eq == p) {
            rc = cs_err_set(err, CS_ERR_CONFIG,
                            "CS_KAFKA_PROPERTIES_FILE: line %d is not "
                            "name=value",
                            no);
            break;
        }
        char *end = eq;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        *end = '\0';
        char *v = eq + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        kafka_prop_set(cfg, p, v);
    }
    cs_wipe(line, sizeof(line));
    fclose(f);
    return rc;
}

/* Properties Countersign sets itself, for correctness (README "Kafka security settings"). */
static const char *const kafka_locked[] = {
    "bootstrap.servers",        "client.id",          "group.id", "enable.auto.commit",
    "enable.auto.offset.store", "enable.idempotence", "acks",     NULL};

static enum cs_err kafka_props_check(const struct cs_config *cfg, char *err)
{
    for (int i = 0; i < cfg->nkafka_props; i++)
        for (const char *const *l = kafka_locked; *l; l++)
            if (!strcmp(cfg->kafka_props[2 * i], *l))
                return cs_err_set(err, CS_ERR_CONFIG,
                                  "Kafka property %s is set by Countersign "
                                  "itself (CS_KAFKA_BROKERS, CS_KAFKA_GROUP or fixed); remove it",
                                  *l);
    return CS_OK;
}

extern char **environ;

/* The CS_KAFKA_PROP_<NAME> variables (from the environment only). */
static enum cs_err kafka_props_env(struct cs_config *cfg, char *err)
{
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "CS_KAFKA_PROP_", 14))
            continue;
        const char *eq = strchr(*e, '=');
        char env[256], name[256];
        size_t n = eq ? (size_t)(eq - *e) : 0;
        if (!eq || n >= sizeof(env))
            return cs_err_set(err, CS_ERR_CONFIG, "%.64s...: not a CS_KAFKA_PROP_<NAME>", *e);
        memcpy(env, *e, n);
        env[n] = '\0';
        if (!cs_config_kafka_prop_name(env, name, sizeof(name)))
            return cs_err_set(err, CS_ERR_CONFIG,
                              "%s: NAME is A-Z, 0-9 and _ (\"_\" for "
                              "\".\", \"__\" for \"_\")",
                              env);
        if (eq[1])
            kafka_prop_set(cfg, name, eq + 1);
    }
    return CS_OK;
}

enum cs_err cs_config_load(struct cs_config *cfg, unsigned procs,
                           const char *(*get)(const char *name), char *err)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < cs_config_nkeys; i++) {
        const struct cs_config_key *k = &cs_config_keys[i];
        const char *v = get ? get(k->env) : getenv(k->env);
        if (v && !*v)
            v = NULL; /* an empty variable means "unset" */
        if (!(k->procs & procs))
            v = NULL; /* other processes' keys keep their defaults */
        if (!v)
            v = k->def;
        char *field = (char *)cfg + k->offset;
        switch (k->type) {
        case CS_CFG_STRING:
        case CS_CFG_SECRET: *(char **)field = cs_strdup(v); break;
        case CS_CFG_INT: {
            int64_t n = 0;
            if (!v || parse_int(v, &n) != CS_OK)
                return cs_err_set(err, CS_ERR_CONFIG, "%s: expected an integer", k->env);
            if (n < k->min || n > k->max)
                return cs_err_set(err, CS_ERR_CONFIG, "%s: %lld is out of range [%lld, %lld]",
                                  k->env, (long long)n, (long long)k->min, (long long)k->max);
            *(int64_t *)field = n;
            break;
        }
        case CS_CFG_BOOL:
            if (v && strcmp(v, "0") && strcmp(v, "1") && strcmp(v, "true") && strcmp(v, "false"))
                return cs_err_set(err, CS_ERR_CONFIG, "%s: expected 0, 1, true or false", k->env);
            *(bool *)field = v && (!strcmp(v, "1") || !strcmp(v, "true"));
            break;
        }
    }
    if (cs_log_level_parse(cfg->log_level) < 0)
        return cs_err_set(err, CS_ERR_CONFIG,
                          "CS_LOG_LEVEL: expected debug, info, warn, error or off");
    if (!cs_ident_valid(cfg->topic_prefix, CS_IDENT_TOPIC_PREFIX))
        return cs_err_set(err, CS_ERR_CONFIG, "CS_TOPIC_PREFIX: must be %s",
                          cs_ident_rule(CS_IDENT_TOPIC_PREFIX));
    if (strncmp(cfg->public_url, "http://", 7) && strncmp(cfg->public_url, "https://", 8))
        return cs_err_set(err, CS_ERR_CONFIG, "CS_PUBLIC_URL: must start with http:// or https://");
    if (!cfg->instance_id) {
        char host[64] = "host";
        gethostname(host, sizeof(host) - 1);
        cfg->instance_id = cs_asprintf("%s:%d", host, (int)getpid());
    }
    if (!cs_ident_valid(cfg->instance_id, CS_IDENT_INSTANCE))
        return cs_err_set(err, CS_ERR_CONFIG, "CS_INSTANCE_ID: must be %s",
                          cs_ident_rule(CS_IDENT_INSTANCE));
    snprintf(cfg->topic_requests, sizeof(cfg->topic_requests), "%s.requests", cfg->topic_prefix);
    snprintf(cfg->topic_events, sizeof(cfg->topic_events), "%s.events", cfg->topic_prefix);
    snprintf(cfg->topic_results, sizeof(cfg->topic_results), "%s.results", cfg->topic_prefix);
    snprintf(cfg->topic_dlq, sizeof(cfg->topic_dlq), "%s.dlq", cfg->topic_prefix);
    enum cs_err rc = load_oidc(cfg, err);
    if (!rc)
        rc = kafka_props_file(cfg, err);
    if (!rc && !get)
        rc = kafka_props_env(cfg, err);
    if (!rc)
        rc = kafka_props_check(cfg, err);
    return rc ? rc : load_master_key(cfg, err);
}

enum cs_err cs_config_require_master_key(const struct cs_config *cfg, char *err)
{
    if (!cfg->have_master_key)
        return cs_err_set(err, CS_ERR_CONFIG,
                          "CS_MASTER_KEY or CS_MASTER_KEY_FILE must be set (32 bytes, base64 or "
                          "hex; e.g. `openssl rand -base64 32`)");
    return CS_OK;
}

void cs_config_free(struct cs_config *cfg)
{
    for (size_t i = 0; i < cs_config_nkeys; i++) {
        const struct cs_config_key *k = &cs_config_keys[i];
        if (k->type == CS_CFG_STRING || k->type == CS_CFG_SECRET) {
            char **p = (char **)((char *)cfg + k->offset);
            if (*p && k->type == CS_CFG_SECRET)
                cs_wipe(*p, strlen(*p));
            cs_free(*p);
            *p = NULL;
        }
    }
    for (int i = 0; i < 2 * cfg->nkafka_props; i++) {
        cs_wipe(cfg->kafka_props[i], strlen(cfg->kafka_props[i]));
        cs_free(cfg->kafka_props[i]);
    }
    cs_free(cfg->kafka_props);
    cfg->kafka_props = NULL;
    cfg->nkafka_props = 0;
    cs_wipe(cfg->master_key, sizeof(cfg->master_key));
}

static const char *type_name(enum cs_config_type t)
{
    switch (t) {
    case CS_CFG_INT: return "integer";
    case CS_CFG_BOOL: return "boolean";
    case CS_CFG_SECRET: return "secret";
    default: return "string";
    }
}

void cs_config_print_help(FILE *out, unsigned procs)
{
    fprintf(out, "Configuration (environment variables):\n");
    for (size_t i = 0; i < cs_config_nkeys; i++) {
        const struct cs_config_key *k = &cs_config_keys[i];
        if (!(k->procs & procs))
            continue;
        fprintf(out, "  %-22s %s", k->env, k->help);
        if (k->def && k->type != CS_CFG_SECRET)
            fprintf(out, " (default: %s)", k->def);
        fputc('\n', out);
    }
}

void cs_config_print_markdown(FILE *out)
{
    static const struct {
        unsigned bit;
        const char *name;
    } procs[] = {{CS_PROC_API, "api"},
                 {CS_PROC_WORKER, "worker"},
                 {CS_PROC_SCHEDULER, "scheduler"},
                 {CS_PROC_CLI, "cli"}};
    fprintf(out, "# Configuration\n\n"
                 "<!-- Generated by `countersign docs config` from cs_config_keys[] in "
                 "lib/cs_config.c. Do not edit; run `make docs`. -->\n\n"
                 "Every process reads its settings from environment variables, once, at start. "
                 "A bad value stops the process with a message naming the variable. "
                 "An empty variable counts as unset.\n\n"
                 "| Variable | Type | Default | Range | Used by | Meaning |\n"
                 "|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < cs_config_nkeys; i++) {
        const struct cs_config_key *k = &cs_config_keys[i];
        char range[64] = "";
        if (k->type == CS_CFG_INT)
            snprintf(range, sizeof(range), "%lld..%lld", (long long)k->min, (long long)k->max);
        fprintf(out, "| `%s` | %s | %s%s%s | %s | ", k->env, type_name(k->type), k->def ? "`" : "",
                k->def ? k->def : "(unset)", k->def ? "`" : "", range);
        const char *sep = "";
        for (size_t p = 0; p < sizeof(procs) / sizeof(procs[0]); p++)
            if (k->procs & procs[p].bit) {
                fprintf(out, "%s%s", sep, procs[p].name);
                sep = ", ";
            }
        fprintf(out, " | %s |\n", k->help);
    }
    fprintf(out, "\n## Kafka client properties\n\n"
                 "Every Kafka producer and consumer the processes create gets, besides the "
                 "settings above, the librdkafka properties of `CS_KAFKA_PROPERTIES_FILE` "
                 "(`name=value` lines, `#` comments) and of every `CS_KAFKA_PROP_<NAME>` "
                 "variable, which wins over the file. `<NAME>` is the librdkafka property "
                 "upper-cased with each `.` written `_` and each `_` written `__`: "
                 "`CS_KAFKA_PROP_SECURITY_PROTOCOL=SASL_SSL` is `security.protocol`, "
                 "`CS_KAFKA_PROP_SASL_MECHANISMS` is `sasl.mechanisms`, "
                 "`CS_KAFKA_PROP_SSL_CA_LOCATION` is `ssl.ca.location`. "
                 "Countersign sets these itself and refuses them: `bootstrap.servers`, "
                 "`client.id`, `group.id`, `enable.auto.commit`, `enable.auto.offset.store`, "
                 "`enable.idempotence`, `acks`. The values of `*password*`, `*secret*`, "
                 "`*.pem` and `sasl.oauthbearer.config` properties are never logged or shown "
                 "in an error.\n");
}
