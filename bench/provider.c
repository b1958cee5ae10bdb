/*
 * provider.c -- the benchmark's loopback provider: a small, fast HTTP/1.1
 * server (GNU libmicrohttpd, epoll, keep-alive) that answers every call with
 * 200 {"ok":true} and records when each call arrived.
 *
 * Usage: bench-provider PORT [THREADS] [CAPACITY]
 *   Listens on 127.0.0.1:PORT only. THREADS (default 1) is the size of the
 *   libmicrohttpd thread pool; CAPACITY (default 2000000) is how many arrivals
 *   can be recorded (48 bytes each, allocated on the first recorded call).
 *
 * Control endpoints (the calls under test never use the /__ prefix):
 *   GET  /__stats         "count first_us last_us recorded" (count of calls
 *                         since the last reset; times are CLOCK_REALTIME in
 *                         microseconds, 0 when none)
 *   POST /__reset?record=1  forget everything; record arrivals from now on
 *                         (record=0 or absent: only count)
 *   GET  /__dump          one line per recorded call: "<key> <arrival_us>",
 *                         key being the Idempotency-Key without its
 *                         "countersign-" prefix (or "-" when absent)
 *
 * An arrival is stamped when libmicrohttpd has parsed the request line and
 * headers (the first call of the access handler), i.e. when the provider
 * "receives the call". The body is read and discarded.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT;
#else
typedef enum MHD_Result MHD_RESULT;
#endif

struct arrival {
    char key[40];
    int64_t us;
};

static atomic_uint_fast64_t g_count;
static atomic_int_fast64_t g_first_us, g_last_us;
static atomic_int g_record;
static atomic_uint_fast64_t g_nrec;
static struct arrival *g_log;
static size_t g_cap = 2000000;

/* Anonymous mappings rather than the C heap (the repo's style check reserves
 * the heap functions for lib/cs_mem.c, which this stand-alone tool does not link). */
static void *map(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}
static struct MHD_Response *g_ok;
static volatile sig_atomic_t g_stop;
static int g_marker; /* the per-request context pointer after the first call */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static MHD_RESULT reply(struct MHD_Connection *c, unsigned code, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "text/plain");
    MHD_RESULT ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static MHD_RESULT control(struct MHD_Connection *c, const char *url, const char *method)
{
    if (!strcmp(url, "/__stats")) {
        char buf[160];
        snprintf(buf, sizeof(buf), "%llu %lld %lld %llu\n",
                 (unsigned long long)atomic_load(&g_count), (long long)atomic_load(&g_first_us),
                 (long long)atomic_load(&g_last_us), (unsigned long long)atomic_load(&g_nrec));
        return reply(c, 200, buf);
    }
    if (!strcmp(url, "/__reset") && !strcmp(method, "POST")) {
        const char *rec = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "record");
        atomic_store(&g_record, 0);
        atomic_store(&g_nrec, 0);
        atomic_store(&g_count, 0);
        atomic_store(&g_first_us, 0);
        atomic_store(&g_last_us, 0);
        if (rec && !strcmp(rec, "1")) {
            if (!g_log)
                g_log = map(g_cap * sizeof(*g_log));
            if (!g_log)
                return reply(c, 500, "out of memory\n");
            atomic_store(&g_record, 1);
        }
        return reply(c, 200, "ok\n");
    }
    if (!strcmp(url, "/__dump")) {
        size_t n = atomic_load(&g_nrec);
        if (n > g_cap)
            n = g_cap;
        size_t cap = n * 64 + 1, len = 0;
        char *buf = map(cap);
        if (!buf)
            return reply(c, 500, "out of memory\n");
        for (size_t i = 0; i < n && len < cap - 1; i++) {
            int w = snprintf(buf + len, cap - len, "%s %lld\n",
                             g_log[i].key[0] ? g_log[i].key : "-", (long long)g_log[i].us);
            if (w < 0 || (size_t)w >= cap - len)
                break;
            len += (size_t)w;
        }
        struct MHD_Response *r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_COPY);
        munmap(buf, cap);
        MHD_RESULT ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    return reply(c, 404, "no such control endpoint\n");
}

static MHD_RESULT handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                         const char *version, const char *upload, size_t *upload_size, void **ctx)
{
    (void)cls;
    (void)version;
    (void)upload;
    if (!*ctx) {
        /* First call: request line and headers are in. */
        if (strncmp(url, "/__", 3) != 0) {
            int64_t t = now_us();
            int_fast64_t zero = 0;
            atomic_compare_exchange_strong(&g_first_us, &zero, t);
            atomic_store(&g_last_us, t);
            atomic_fetch_add(&g_count, 1);
            if (atomic_load(&g_record)) {
                uint_fast64_t i = atomic_fetch_add(&g_nrec, 1);
                if (i < g_cap) {
                    const char *k =
                        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
                    if (k && !strncmp(k, "countersign-", 12))
                        k += 12;
                    snprintf(g_log[i].key, sizeof(g_log[i].key), "%s", k ? k : "");
                    g_log[i].us = t;
                }
            }
        }
        *ctx = &g_marker;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* discard the body */
        return MHD_YES;
    }
    if (!strncmp(url, "/__", 3))
        return control(c, url, method);
    return MHD_queue_response(c, 200, g_ok);
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [THREADS] [CAPACITY]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : 1;
    if (argc > 3)
        g_cap = (size_t)strtoull(argv[3], NULL, 10);
    static const char body[] = "{\"ok\":true}";
    g_ok = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(g_ok, "Content-Type", "application/json");
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)20000, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)4096, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "bench-provider: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("listening on http://127.0.0.1:%d (%u thread(s))\n", port, threads);
    fflush(stdout);
    while (!g_stop)
        pause();
    MHD_stop_daemon(d);
    MHD_destroy_response(g_ok);
    if (g_log)
        munmap(g_log, g_cap * sizeof(*g_log));
    return 0;
}
