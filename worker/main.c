/*
 * main.c -- the countersign-worker process: wiring only.
 *
 * Start: configuration -> signals -> Kafka topics (created if missing) ->
 * one thread per role (ingest, executor, notifier, relay), each with its own
 * Postgres connection.
 *
 * Stop (SIGTERM/SIGINT), in this order, so that nothing accepted is lost:
 *   1. ingest: stop consuming; the batch in hand is stored and committed,
 *      or left uncommitted for redelivery;
 *   2. executor: stop claiming; calls waiting to retry are released; calls
 *      in flight finish within CS_SHUTDOWN_GRACE_MS (else their leases
 *      lapse and the scheduler's rescuer decides);
 *   3. notifier: the round of messages in hand is delivered or left to retry;
 *   4. relay: publishes the outcomes recorded in step 2 (until the event
 *      stream is quiet, at most 2 s; what is left stays in the slot).
 * A role that fails to start stops the whole process with status 1.
 */
#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cs_kafka.h"
#include "cs_log.h"
#include "cs_process.h"
#include "worker.h"

void worker_ready(struct worker_role *role)
{
    atomic_store(&role->ready, 1);
}

void worker_sleep(struct worker_role *role, int ms)
{
    struct pollfd p = {role->wake[0], POLLIN, 0};
    if (!atomic_load(&role->stop))
        poll(&p, 1, ms);
}

bool worker_wait(struct worker_role *role, struct cs_db *db, int timeout_ms,
                 void (*on_notify)(void *arg, const char *channel, const char *payload), void *arg)
{
    if (cs_db_notifies(db, on_notify, arg) > 0)
        return true;
    struct pollfd fds[2] = {{cs_db_socket(db), POLLIN, 0}, {role->wake[0], POLLIN, 0}};
    if (!atomic_load(&role->stop))
        poll(fds, 2, timeout_ms);
    cs_db_notifies(db, on_notify, arg);
    return false;
}

static int ensure_topics(const struct cs_config *cfg)
{
    char err[CS_ERRLEN];
    rd_kafka_t *rk = cs_kafka_producer(cfg, "countersign-worker-admin", NULL, NULL, err);
    if (!rk) {
        cs_log(CS_LOG_ERROR, "worker", "%s", err);
        return 1;
    }
    const char *topics[] = {cfg->topic_requests, cfg->topic_events, cfg->topic_results,
                            cfg->topic_dlq};
    enum cs_err rc;
    struct cs_backoff b = {200, 5000, 0};
    /* The broker may still be starting: retry until it answers or we are stopped. */
    while ((rc = cs_kafka_ensure_topics(rk, topics, 4, (int)cfg->kafka_partitions,
                                        cfg->topic_requests, 10000, err)) &&
           !atomic_load(&cs_stopping)) {
        cs_log(CS_LOG_WARN, "worker", "Kafka not ready, retrying: %s", err);
        struct pollfd p = {cs_process_wake_fd(), POLLIN, 0};
        poll(&p, 1, cs_backoff_next(&b));
    }
    rd_kafka_destroy(rk);
    return rc ? 1 : 0;
}

static void stop_role(struct worker_role *r)
{
    atomic_store(&r->stop, 1);
    ssize_t w = write(r->wake[1], "x", 1);
    (void)w;
    pthread_join(r->thread, NULL);
    close(r->wake[0]);
    close(r->wake[1]);
}

int main(int argc, char **argv)
{
    static const struct cs_process_info info = {
        "worker", CS_PROC_WORKER,
        "Kafka ingest, provider-call executor, approver notifications and event relay", true};
    struct cs_config cfg;
    int status = cs_process_init(argc, argv, &info, &cfg);
    if (status >= 0)
        return status;
    cs_process_signals();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cs_log(CS_LOG_INFO, "worker", "starting %s (%s)", CS_VERSION, cfg.instance_id);

    /* outlives the threads and the server */
    static struct worker_metrics metrics = {.grants_lock = PTHREAD_MUTEX_INITIALIZER};
    struct worker_role roles[] = {
        {.name = "ingest"}, {.name = "executor"}, {.name = "notifier"}, {.name = "relay"}};
    void *(*mains[])(void *) = {ingest_main, executor_main, notifier_main, relay_main};
    const int n = 4;
    status = ensure_topics(&cfg);
    int started = 0;
    for (int i = 0; i < n && status == 0 && !atomic_load(&cs_stopping); i++, started++) {
        roles[i].cfg = &cfg;
        roles[i].m = &metrics;
        if (pipe(roles[i].wake) != 0 ||
            pthread_create(&roles[i].thread, NULL, mains[i], &roles[i]) != 0) {
            cs_log(CS_LOG_ERROR, "worker", "cannot start the %s thread", roles[i].name);
            status = 1;
            break;
        }
    }
    struct cs_metrics_server *ms = NULL;
    if (status == 0 && cfg.metrics_port &&
        !(ms = cs_metrics_serve(cfg.http_addr, (int)cfg.metrics_port, worker_metrics_render,
                                &metrics)))
        cs_log(CS_LOG_ERROR, "worker", "cannot serve /metrics on port %lld",
               (long long)cfg.metrics_port);
    /* Run until a signal, or until a role ends on its own (a failure). */
    bool announced = false;
    while (status == 0 && !atomic_load(&cs_stopping)) {
        struct pollfd p = {cs_process_wake_fd(), POLLIN, 0};
        poll(&p, 1, announced ? 500 : 20);
        int ready = 0;
        for (int i = 0; i < started; i++) {
            if (atomic_load(&roles[i].done) && !atomic_load(&roles[i].stop))
                status = 1;
            ready += atomic_load(&roles[i].ready);
        }
        /* The ready line is an interface (worker/README.md): supervisors and tests wait for it. */
        if (!announced && status == 0 && ready == n) {
            cs_log(CS_LOG_INFO, "worker", "ready");
            announced = true;
        }
    }
    cs_log(CS_LOG_INFO, "worker", "stopping");
    for (int i = 0; i < started; i++) {
        stop_role(&roles[i]);
        if (roles[i].status)
            status = 1;
    }
    cs_metrics_server_stop(ms);
    worker_metrics_free(&metrics);
    cs_log(CS_LOG_INFO, "worker", "stopped");
    curl_global_cleanup();
    cs_config_free(&cfg);
    return status;
}
