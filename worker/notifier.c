/*
 * notifier.c -- the worker's notifier: tells approvers, with their own links.
 *
 * Claims due rows of the notifications table (notifications_claim, SKIP
 * LOCKED, a lease of twice the delivery timeout), woken by LISTEN cs_notify,
 * and delivers a round of them concurrently on a libcurl multi handle:
 *   email    SMTP through libcurl (CS_SMTP_URL), plain text;
 *   slack    a Slack-compatible incoming webhook: {"text": ...};
 *   webhook  JSON, signed: X-Countersign-Signature: v1=hex(HMAC-SHA256(key,
 *            timestamp "." body)) with X-Countersign-Timestamp; the key is
 *            derived from the master key (`countersign webhook-key` prints it).
 * Each message carries the approval's page (its approval_url, or the batch
 * page) and a fresh one-time sign-in link addressed to the recipient
 * (cs_session.h): holding a message never lets anyone vote. A
 * failure is retried with backoff (CS_NOTIFY_BACKOFF_MS doubling, at most 1 h) up to
 * CS_NOTIFY_MAX_ATTEMPTS, and every success and failure is audited. An
 * approval that is no longer pending gets no message. Nothing here changes
 * an approval.
 */
#include <curl/curl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cs_batch.h"
#include "cs_buf.h"
#include "cs_db.h"
#include "cs_json.h"
#include "cs_link.h"
#include "cs_log.h"
#include "cs_mem.h"
#include "cs_process.h"
#include "cs_session.h"
#include "worker.h"

#define ROUND 32

struct message {
    char id[24];
    char approval[CS_UUID_STRLEN + 1];
    char channel[16];
    int attempts;
    CURL *easy;
    struct curl_slist *hdrs, *rcpt;
    char *payload;
    size_t len, sent;
    char error[CURL_ERROR_SIZE];
};

struct notifier {
    const struct cs_config *cfg;
    struct worker_role *role;
    struct cs_db *db;
    CURLM *cm;
    struct cs_link_keys keys;
    unsigned char hook_key[32];
    bool wake;
    uint64_t sent, failed;
};

static void on_notify(void *arg, const char *channel, const char *payload)
{
    struct notifier *n = arg;
    (void)channel;
    (void)payload;
    n->wake = true;
}

static size_t read_payload(char *buf, size_t size, size_t nitems, void *arg)
{
    struct message *m = arg;
    size_t room = size * nitems, left = m->len - m->sent;
    size_t n = left < room ? left : room;
    memcpy(buf, m->payload + m->sent, n);
    m->sent += n;
    return n;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* The links of one message: the approval's page and the recipient's sign-in link. */
struct links {
    char *page;   /* approval_url or batch page */
    char *signin; /* one-time, for this recipient only */
};

/* The human text of a message, shared by email and Slack. */
static char *text_for(const PGresult *res, int r, const struct links *l)
{
    char iso[CS_TIME_ISO_LEN];
    const char *kind = cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_KIND),
               *slot = cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_APPROVER_NAME),
               *name = cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_RECIPIENT_NAME);
    bool delegated = strcmp(cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_APPROVER_ID),
                            cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_RECIPIENT_ID)) != 0;
    return cs_asprintf("%s%s asks to call %s %s with grant %s.\n\nReason: %s\n\n"
                       "Review and approve or deny: %s\n\n"
                       "Sign in as %s%s%s with this one-time link (it works once, soon): %s\n\n"
                       "The request expires %s.\n",
                       !strcmp(kind, "reminder")     ? "Reminder: "
                       : !strcmp(kind, "escalation") ? "Escalated to you: "
                       : !strcmp(kind, "signin")     ? "Your sign-in link: "
                                                     : "",
                       cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_AGENT_NAME),
                       cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_METHOD),
                       cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_URL),
                       cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_GRANT_ID),
                       *cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_REASON)
                           ? cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_REASON)
                           : "(none given)",
                       l->page, name, delegated ? ", voting on behalf of " : "",
                       delegated ? slot : "", l->signin,
                       cs_time_iso(cs_db_int(res, r, CSC_NOTIFICATIONS_CLAIM_EXPIRES_MS), iso));
}

static void prepare_email(struct notifier *n, struct message *m, const PGresult *res, int r,
                          const struct links *link)
{
    char date[64], rcpt[400];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    char *text = text_for(res, r, link);
    struct cs_buf b;
    cs_buf_init(&b, 1u << 20);
    /* Header values come from validated fields (agent names, URLs, email addresses). */
    enum cs_err rc = cs_buf_printf(
        &b,
        "Date: %s\r\nFrom: Countersign <%s>\r\nTo: %s <%s>\r\n"
        "Subject: Approval needed: %s %s (%s)\r\n"
        "Message-ID: <%s.%s@countersign>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n",
        date, n->cfg->smtp_from, cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_RECIPIENT_NAME),
        cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_EMAIL),
        cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_METHOD),
        cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_URL),
        cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_AGENT_NAME), m->id, m->approval);
    for (const char *p = text; !rc && *p; p++) /* bare LF -> CRLF */
        rc = *p == '\n' ? cs_buf_append(&b, "\r\n", 2) : cs_buf_append(&b, p, 1);
    cs_free(text);
    m->payload = cs_buf_take(&b, &m->len);
    snprintf(rcpt, sizeof(rcpt), "<%s>", cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_EMAIL));
    m->rcpt = curl_slist_append(NULL, rcpt);
    char from[300];
    snprintf(from, sizeof(from), "<%s>", n->cfg->smtp_from);
    curl_easy_setopt(m->easy, CURLOPT_URL, n->cfg->smtp_url);
    curl_easy_setopt(m->easy, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(m->easy, CURLOPT_MAIL_RCPT, m->rcpt);
    curl_easy_setopt(m->easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(m->easy, CURLOPT_READFUNCTION, read_payload);
    curl_easy_setopt(m->easy, CURLOPT_READDATA, m);
    curl_easy_setopt(m->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)m->len);
    if (n->cfg->smtp_user) {
        curl_easy_setopt(m->easy, CURLOPT_USERNAME, n->cfg->smtp_user);
        curl_easy_setopt(m->easy, CURLOPT_PASSWORD,
                         n->cfg->smtp_password ? n->cfg->smtp_password : "");
    }
}

static void prepare_post(struct notifier *n, struct message *m, const PGresult *res, int r,
                         const struct links *link, bool slack)
{
    char iso[CS_TIME_ISO_LEN];
    json_object *o = json_object_new_object();
    if (slack) {
        char *text = text_for(res, r, link);
        json_object_object_add(o, "text", json_object_new_string(text));
        cs_free(text);
    } else {
        char *type = cs_asprintf("approval.%s",
                                 !strcmp(cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_KIND), "request")
                                     ? "requested"
                                     : cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_KIND));
        json_object_object_add(o, "type", json_object_new_string(type));
        cs_free(type);
        static const struct {
            const char *key;
            int col;
        } cols[] = {{"approval_id", CSC_NOTIFICATIONS_CLAIM_SUBJECT_ID},
                    {"approver_id", CSC_NOTIFICATIONS_CLAIM_APPROVER_ID},
                    {"recipient_id", CSC_NOTIFICATIONS_CLAIM_RECIPIENT_ID},
                    {"recipient", CSC_NOTIFICATIONS_CLAIM_RECIPIENT_NAME},
                    {"agent", CSC_NOTIFICATIONS_CLAIM_AGENT_NAME},
                    {"method", CSC_NOTIFICATIONS_CLAIM_METHOD},
                    {"url", CSC_NOTIFICATIONS_CLAIM_URL},
                    {"grant_id", CSC_NOTIFICATIONS_CLAIM_GRANT_ID},
                    {"reason", CSC_NOTIFICATIONS_CLAIM_REASON}};
        for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
            json_object_object_add(o, cols[i].key,
                                   json_object_new_string(cs_db_str(res, r, cols[i].col)));
        json_object_object_add(o, "approval_url", json_object_new_string(link->page));
        json_object_object_add(o, "signin_url", json_object_new_string(link->signin));
        json_object_object_add(o, "expires_at",
                               json_object_new_string(cs_time_iso(
                                   cs_db_int(res, r, CSC_NOTIFICATIONS_CLAIM_EXPIRES_MS), iso)));
    }
    size_t len = 0;
    const char *body = cs_json_text(o, &len);
    m->payload = cs_memdup(body, len);
    m->len = len;
    json_object_put(o);
    m->hdrs = curl_slist_append(m->hdrs, "Content-Type: application/json");
    if (!slack) {
        char ts[24], sig[2 * CS_SHA256_LEN + 1], line[160];
        unsigned char mac[CS_SHA256_LEN];
        snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
        char *signed_text = cs_asprintf("%s.%.*s", ts, (int)m->len, m->payload);
        cs_hmac_sha256(n->hook_key, 32, signed_text, strlen(signed_text), mac);
        cs_free(signed_text);
        cs_hex_encode(mac, sizeof(mac), sig);
        snprintf(line, sizeof(line), "X-Countersign-Timestamp: %s", ts);
        m->hdrs = curl_slist_append(m->hdrs, line);
        snprintf(line, sizeof(line), "X-Countersign-Signature: v1=%s", sig);
        m->hdrs = curl_slist_append(m->hdrs, line);
    }
    curl_easy_setopt(m->easy, CURLOPT_URL,
                     cs_db_str(res, r,
                               slack ? CSC_NOTIFICATIONS_CLAIM_SLACK_WEBHOOK_URL
                                     : CSC_NOTIFICATIONS_CLAIM_WEBHOOK_URL));
    curl_easy_setopt(m->easy, CURLOPT_HTTPHEADER, m->hdrs);
    curl_easy_setopt(m->easy, CURLOPT_POSTFIELDS, m->payload);
    curl_easy_setopt(m->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)m->len);
    curl_easy_setopt(m->easy, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(m->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(m->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(m->easy, CURLOPT_WRITEFUNCTION, discard);
}

/* Records a message's fate; database errors are logged and retried by the lease. */
static void finish(struct notifier *n, struct message *m, const char *status, const char *error)
{
    char retry[24], detail[600], err[CS_ERRLEN];
    int64_t delay = n->cfg->notify_backoff_ms << (m->attempts - 1 < 16 ? m->attempts - 1 : 16);
    snprintf(retry, sizeof(retry), "%.3f", (double)(delay > 3600000 ? 3600000 : delay) / 1000.0);
    const char *action = !strcmp(status, "sent")      ? "notification.sent"
                         : !strcmp(status, "skipped") ? NULL
                                                      : "notification.failed";
    json_object *d = json_object_new_object();
    json_object_object_add(d, "channel", json_object_new_string(m->channel));
    json_object_object_add(d, "attempt", json_object_new_int(m->attempts));
    json_object_object_add(d, "final", json_object_new_boolean(strcmp(status, "queued") != 0));
    if (error)
        json_object_object_add(d, "error", json_object_new_string(error));
    snprintf(detail, sizeof(detail), "%s", cs_json_text(d, NULL));
    json_object_put(d);
    const char *p[] = {m->id, status, error, retry, action, detail};
    if (cs_db_exec(n->db, CS_DB_Q(NOTIFICATION_DONE, p), NULL, err) != CS_OK)
        cs_log_ap(CS_LOG_WARN, "notifier", m->approval, "cannot record a delivery: %s", err);
    if (!strcmp(status, "sent")) {
        n->sent++;
        atomic_fetch_add(&n->role->m->notified, 1);
    } else if (strcmp(status, "skipped")) {
        n->failed++;
        atomic_fetch_add(&n->role->m->notify_failures, 1);
    }
    if (error)
        cs_log_ap(CS_LOG_WARN, "notifier", m->approval, "%s message %s: %s (attempt %d)",
                  m->channel, !strcmp(status, "queued") ? "will be retried" : "failed", error,
                  m->attempts);
    else if (!strcmp(status, "sent"))
        cs_log_ap(CS_LOG_INFO, "notifier", m->approval, "%s message sent", m->channel);
}

static void message_free(struct message *m)
{
    if (m->easy)
        curl_easy_cleanup(m->easy);
    curl_slist_free_all(m->hdrs);
    curl_slist_free_all(m->rcpt);
    cs_free(m->payload);
}

/* Sends one claimed round; returns how many rows were claimed. */
static int round_once(struct notifier *n, char *err)
{
    char lim[16], lease[24];
    snprintf(lim, sizeof(lim), "%d", ROUND);
    snprintf(lease, sizeof(lease), "%lld", (long long)(2 * n->cfg->notify_timeout_ms / 1000 + 5));
    const char *p[] = {lim, lease};
    PGresult *res = NULL;
    if (cs_db_exec(n->db, CS_DB_Q(NOTIFICATIONS_CLAIM, p), &res, err) != CS_OK)
        return -1;
    int count = PQntuples(res), live = 0;
    struct message *ms = cs_calloc((size_t)(count ? count : 1), sizeof(*ms));
    for (int r = 0; r < count; r++) {
        struct message *m = &ms[r];
        cs_strlcpy(m->id, cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_ID), sizeof(m->id));
        cs_strlcpy(m->approval, cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_SUBJECT_ID),
                   sizeof(m->approval));
        cs_strlcpy(m->channel, cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_CHANNEL),
                   sizeof(m->channel));
        m->attempts = (int)cs_db_int(res, r, CSC_NOTIFICATIONS_CLAIM_ATTEMPTS);
        if (strcmp(cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_STATUS), "pending") != 0) {
            finish(n, m, "skipped", NULL);
            continue;
        }
        if (!strcmp(m->channel, "email") && !n->cfg->smtp_url) {
            finish(n, m, "failed", "email is not configured (CS_SMTP_URL)");
            continue;
        }
        char path[CS_LINK_PATH_MAX];
        struct links link = {NULL, NULL};
        if (cs_db_bool(res, r, CSC_NOTIFICATIONS_CLAIM_IS_BATCH))
            cs_link_batch_path(&n->keys, m->approval,
                               cs_db_int(res, r, CSC_NOTIFICATIONS_CLAIM_EXPIRES_MS), path);
        else
            cs_link_approval_path(&n->keys, m->approval,
                                  cs_db_int(res, r, CSC_NOTIFICATIONS_CLAIM_EXPIRES_MS), path);
        if (cs_signin_link_mint(
                n->db, n->cfg, cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_RECIPIENT_ID), path,
                cs_db_str(res, r, CSC_NOTIFICATIONS_CLAIM_KIND), &link.signin, err) != CS_OK) {
            finish(n, m, "failed", "the recipient cannot sign in (unknown or disabled)");
            continue;
        }
        link.page = cs_link_url(n->cfg->public_url, path);
        m->easy = curl_easy_init();
        cs_assert(m->easy);
        curl_easy_setopt(m->easy, CURLOPT_PRIVATE, m);
        curl_easy_setopt(m->easy, CURLOPT_ERRORBUFFER, m->error);
        curl_easy_setopt(m->easy, CURLOPT_TIMEOUT_MS, (long)n->cfg->notify_timeout_ms);
        curl_easy_setopt(m->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(m->easy, CURLOPT_USERAGENT, "countersign/" CS_VERSION);
        if (!strcmp(m->channel, "email"))
            prepare_email(n, m, res, r, &link);
        else
            prepare_post(n, m, res, r, &link, !strcmp(m->channel, "slack"));
        cs_free(link.page);
        cs_wipe(link.signin, strlen(link.signin));
        cs_free(link.signin);
        curl_multi_add_handle(n->cm, m->easy);
        live++;
    }
    PQclear(res);
    while (live > 0) {
        int running = 0;
        curl_multi_perform(n->cm, &running);
        CURLMsg *msg;
        int left = 0;
        while ((msg = curl_multi_info_read(n->cm, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct message *m = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&m);
            curl_multi_remove_handle(n->cm, m->easy);
            CURLcode c = msg->data.result;
            if (c == CURLE_OK)
                finish(n, m, "sent", NULL);
            else
                finish(n, m, m->attempts >= n->cfg->notify_max_attempts ? "failed" : "queued",
                       m->error[0] ? m->error : curl_easy_strerror(c));
            live--;
        }
        if (live > 0)
            curl_multi_poll(n->cm, NULL, 0, 200, NULL);
    }
    for (int r = 0; r < count; r++)
        message_free(&ms[r]);
    cs_free(ms);
    return count;
}

static void run(struct notifier *n)
{
    char err[CS_ERRLEN];
    while (!atomic_load(&n->role->stop)) {
        if (!cs_db_connected(n->db) && cs_db_reconnect(n->db, &n->role->stop, err) != CS_OK)
            break;
        n->wake = false;
        int got = round_once(n, err);
        if (got < 0) {
            static struct cs_log_limit lim;
            if (cs_log_limit_allow(&lim, 10, NULL))
                cs_log(CS_LOG_WARN, "notifier", "cannot claim messages: %s", err);
            worker_sleep(n->role, 1000);
            continue;
        }
        if (got == ROUND)
            continue;
        if (!n->wake)
            worker_wait(n->role, n->db, (int)n->cfg->poll_interval_ms, on_notify, n);
    }
}

void *notifier_main(void *arg)
{
    struct worker_role *role = arg;
    struct notifier n = {.cfg = role->cfg, .role = role};
    char err[CS_ERRLEN];
    cs_link_keys_derive(role->cfg->master_key, &n.keys);
    cs_key_derive(role->cfg->master_key, CS_WEBHOOK_PURPOSE, n.hook_key);
    n.cm = curl_multi_init();
    cs_assert(n.cm);
    if (cs_process_db(role->cfg, "countersign-notifier", &role->stop, &n.db, err) != CS_OK ||
        cs_db_listen(n.db, CSQ_LISTEN_NOTIFY, err) != CS_OK) {
        if (!atomic_load(&role->stop)) {
            cs_log(CS_LOG_ERROR, "notifier", "cannot start: %s", err);
            role->status = 1;
        }
    } else {
        cs_log(CS_LOG_INFO, "notifier", "notifying approvers (email %s)",
               role->cfg->smtp_url ? "on" : "off: CS_SMTP_URL unset");
        worker_ready(role);
        run(&n);
        cs_log(CS_LOG_INFO, "notifier", "stopped: %llu sent, %llu failed",
               (unsigned long long)n.sent, (unsigned long long)n.failed);
    }
    curl_multi_cleanup(n.cm);
    cs_db_close(n.db);
    cs_link_keys_wipe(&n.keys);
    cs_wipe(n.hook_key, sizeof(n.hook_key));
    atomic_store(&role->done, 1);
    return NULL;
}
