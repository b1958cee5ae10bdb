/*
 * main.c -- the countersign-api process: wiring only.
 *
 * Start: configuration -> signals -> keys derived from the master key ->
 * Postgres pool (migrations) -> long-poll waiter thread -> Kafka probe ->
 * libmicrohttpd daemon (CS_HTTP_THREADS threads, epoll, suspend/resume).
 *
 * Stop (SIGTERM/SIGINT), in this order: stop accepting connections; resume
 * every suspended long-poll so it answers with the status it has now (202
 * when still pending -- clients poll again); let in-flight requests finish
 * and stop the daemon; stop the waiter thread; close the pool.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "api.h"
#include "cs_batch.h"
#include "cs_kafka.h"
#include "cs_link.h"
#include "cs_log.h"
#include "cs_mem.h"
#include "cs_oidc.h"
#include "cs_process.h"

extern const char api_openapi_json[];

static bool kafka_ok(struct api *a)
{
    const struct rd_kafka_metadata *md = NULL;
    if (!a->kafka || rd_kafka_metadata(a->kafka, 0, NULL, &md, 1000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    rd_kafka_metadata_destroy(md);
    return true;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    cs_log(CS_LOG_WARN, "http", "%s", msg);
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void set_origin(struct api *a)
{
    const char *u = a->cfg->public_url, *host = strstr(u, "://");
    size_t n = host ? strcspn(host + 3, "/") + (size_t)(host + 3 - u) : strlen(u);
    snprintf(a->origin, sizeof(a->origin), "%.*s", (int)n, u);
    /* The WebAuthn RP ID: the host alone (a domain; browsers refuse IP literals). */
    const char *h = host ? host + 3 : u;
    size_t hn = strcspn(h, ":/");
    snprintf(a->rp_id, sizeof(a->rp_id), "%.*s", (int)hn, h);
}

/* SSO when CS_OIDC_ISSUER is set; discovery is fetched on first use (lib/cs_oidc.c). */
static enum cs_err start_oidc(struct api *a, char *err)
{
    const struct cs_config *cfg = a->cfg;
    if (!cfg->oidc_issuer)
        return CS_OK;
    char *redirect = cs_link_url(cfg->public_url, "/signin/oidc/callback");
    struct cs_oidc_config oc = {.issuer = cfg->oidc_issuer,
                                .client_id = cfg->oidc_client_id,
                                .client_secret = cfg->oidc_client_secret,
                                .redirect_uri = redirect,
                                .scopes = cfg->oidc_scopes,
                                .leeway_s = 60,
                                .http_timeout_ms = 10000,
                                .allow_http = cfg->oidc_allow_http,
                                .role_claim = cfg->oidc_operator_claim};
    enum cs_err rc = cs_oidc_new(&oc, &a->oidc, err);
    cs_free(redirect);
    return rc;
}

static int serve(struct api *a)
{
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)a->cfg->http_port);
    /* An inherited listening socket (CS_HTTP_FD) is served as it is; else bind. */
    struct MHD_OptionItem listen_at[] = {
        a->cfg->http_fd >= 0
            ? (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, (intptr_t)a->cfg->http_fd, NULL}
            : (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &sa},
        {MHD_OPTION_END, 0, NULL}};
    if (a->cfg->http_fd < 0 && inet_pton(AF_INET, a->cfg->http_addr, &sa.sin_addr) != 1) {
        cs_log(CS_LOG_ERROR, "api", "CS_HTTP_ADDR: not an IPv4 address: %s", a->cfg->http_addr);
        return 2;
    }
    a->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, router_handle, a, MHD_OPTION_NOTIFY_COMPLETED, router_completed, a,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)a->cfg->http_threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)a->cfg->http_max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)a->cfg->http_client_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)a->cfg->http_idle_s, /* suspended: never */
        MHD_OPTION_ARRAY, listen_at, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (!a->d) {
        cs_log(CS_LOG_ERROR, "api", "cannot listen on %s:%lld", a->cfg->http_addr,
               (long long)a->cfg->http_port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
    cs_log(CS_LOG_INFO, "api", "listening on http://%s:%u (public URL %s)", a->cfg->http_addr,
           info ? info->port : 0, a->cfg->public_url);
    while (!atomic_load(&cs_stopping)) {
        struct pollfd p = {cs_process_wake_fd(), POLLIN, 0};
        poll(&p, 1, 1000);
    }
    cs_log(CS_LOG_INFO, "api", "stopping");
    MHD_quiesce_daemon(a->d);
    waiters_stop(a->waiters);
    MHD_stop_daemon(a->d);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct cs_process_info info = {
        "api", CS_PROC_API, "HTTP API for agents, approvers and operators; approval pages", true};
    struct cs_config cfg;
    int status = cs_process_init(argc, argv, &info, &cfg);
    if (status >= 0)
        return status;
    char err[CS_ERRLEN];
    cs_process_signals();
    raise_fd_limit();
    struct api a = {.cfg = &cfg, .openapi = api_openapi_json, .kafka_ok = kafka_ok};
    cs_link_keys_derive(cfg.master_key, &a.keys);
    cs_key_derive(cfg.master_key, CS_LINK_CSRF_PURPOSE, a.csrf_key);
    set_origin(&a);
    if (start_oidc(&a, err) != CS_OK) {
        cs_log(CS_LOG_ERROR, "api", "CS_OIDC_*: %s", err);
        cs_config_free(&cfg);
        return 2;
    }
    a.metrics = metrics_new(router_nroutes(), router_route_name);
    cs_log(CS_LOG_INFO, "api", "starting %s (%s)", CS_VERSION, cfg.instance_id);
    if (pool_new(&cfg, (int)cfg.http_threads + 2, &a.pool, err) != CS_OK ||
        waiters_start(&a, &a.waiters, err) != CS_OK) {
        if (!atomic_load(&cs_stopping)) {
            cs_log(CS_LOG_ERROR, "api", "cannot start: %s", err);
            status = 1;
        } else {
            status = 0;
        }
    } else {
        a.kafka = cs_kafka_producer(&cfg, "countersign-api", NULL, NULL, err);
        if (!a.kafka)
            cs_log(CS_LOG_WARN, "api", "no Kafka client (readyz will say so): %s", err);
        status = serve(&a);
    }
    waiters_stop(a.waiters);
    waiters_free(a.waiters);
    if (a.kafka)
        rd_kafka_destroy(a.kafka);
    pool_free(a.pool);
    metrics_free(a.metrics);
    cs_oidc_free(a.oidc);
    cs_link_keys_wipe(&a.keys);
    cs_wipe(a.csrf_key, 32);
    cs_log(CS_LOG_INFO, "api", "stopped");
    cs_config_free(&cfg);
    return status;
}
