/*
 * console_overview.c -- GET /console: the state of the queue at a glance.
 *
 * Counts by status (live), terminal outcomes in the last hour, the oldest
 * pending approval and the longest-running execution, the Kafka relay's
 * backlog and the dead letters of the last hour; then throughput and
 * latency over the last hour (per minute) or day (per hour) as inline SVG
 * charts drawn here: requests in, decisions, executions, failures (with a
 * table by error code) and decision -> call p50/p99.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cs_mem.h"

#define MAX_BUCKETS 60
#define CHART_W 600
#define CHART_H 140
#define PAD_L 44
#define PAD_B 18

static void stat(struct cs_buf *b, const char *label, const char *value, const char *href)
{
    html_raw(b, "<div class=\"stat\">");
    if (href) {
        html_raw(b, "<a href=\"");
        html_raw(b, href);
        html_raw(b, "\">");
    }
    html_raw(b, "<b>");
    html_esc(b, value);
    html_raw(b, "</b>");
    if (href)
        html_raw(b, "</a>");
    html_raw(b, "<span>");
    html_esc(b, label);
    html_raw(b, "</span></div>");
}

static void counts(struct console *k, const PGresult *res)
{
    struct cs_buf *b = &k->b;
    static const char *const terminal[] = {"executed", "failed", "denied", "expired", "cancelled"};
    static const char *const waiting[] = {"pending", "approved", "executing"};
    static const int waiting_col[] = {CSC_CONSOLE_COUNTS_PENDING, CSC_CONSOLE_COUNTS_APPROVED,
                                      CSC_CONSOLE_COUNTS_EXECUTING};
    char v[64], label[64], href[64];
    html_raw(b, "<section id=\"counts\" data-live><div class=\"grid\">");
    for (int i = 0; i < 3; i++) {
        snprintf(v, sizeof(v), "%lld", (long long)cs_db_int(res, 0, waiting_col[i]));
        snprintf(href, sizeof(href), "/console/approvals?status=%s", waiting[i]);
        stat(b, waiting[i], v, href);
    }
    long long n[5] = {0};
    const char *t = cs_db_str(res, 0, CSC_CONSOLE_COUNTS_FINISHED_CSV);
    if (t)
        sscanf(t, "%lld,%lld,%lld,%lld,%lld", &n[0], &n[1], &n[2], &n[3], &n[4]);
    for (int i = 0; i < 5; i++) {
        snprintf(v, sizeof(v), "%lld", n[i]);
        snprintf(label, sizeof(label), "%s, last hour", terminal[i]);
        snprintf(href, sizeof(href), "/console/approvals?status=%s", terminal[i]);
        stat(b, label, v, href);
    }
    /* The event slot, as /metrics and /readyz read it: WAL not yet published. */
    struct metrics_slot slot;
    const char *relay = "Kafka relay: unknown";
    snprintf(v, sizeof(v), "?");
    if (metrics_event_slot(k->r->api, k->d->db, &slot)) {
        snprintf(v, sizeof(v), "%.1f MB", (double)slot.lag_bytes / 1e6);
        relay = !slot.exists  ? "Kafka relay: no event slot"
                : slot.active ? "behind, Kafka relay active"
                              : "behind, no Kafka relay";
    }
    stat(b, relay, v, NULL);
    snprintf(v, sizeof(v), "%lld",
             (long long)cs_db_int(res, 0, CSC_CONSOLE_COUNTS_DEAD_LETTERS_HOUR));
    stat(b, "dead letters, last hour", v, "/console/dead-letters");
    html_raw(b, "</div><div class=\"grid2\"><div class=\"card\"><h2>Oldest pending</h2>");
    if (cs_db_str(res, 0, CSC_CONSOLE_COUNTS_OLDEST_ID)) {
        html_raw(b, "<p><a class=\"mono\" href=\"/console/approvals/");
        html_esc(b, cs_db_str(res, 0, CSC_CONSOLE_COUNTS_OLDEST_ID));
        html_raw(b, "\">");
        html_esc(b, cs_db_str(res, 0, CSC_CONSOLE_COUNTS_OLDEST_ID));
        html_raw(b, "</a><br>created ");
        console_ago(b, cs_db_int(res, 0, CSC_CONSOLE_COUNTS_OLDEST_CREATED_MS));
        html_raw(b, "</p>");
    } else {
        html_raw(b, "<p class=\"muted\">Nothing is pending.</p>");
    }
    html_raw(b, "</div><div class=\"card\"><h2>Longest-running execution</h2>");
    if (cs_db_str(res, 0, CSC_CONSOLE_COUNTS_STUCK_ID)) {
        html_raw(b, "<p><a class=\"mono\" href=\"/console/approvals/");
        html_esc(b, cs_db_str(res, 0, CSC_CONSOLE_COUNTS_STUCK_ID));
        html_raw(b, "\">");
        html_esc(b, cs_db_str(res, 0, CSC_CONSOLE_COUNTS_STUCK_ID));
        html_raw(b, "</a><br>lease owner ");
        console_cell(b, res, 0, CSC_CONSOLE_COUNTS_LEASE_OWNER);
        html_raw(b, ", started ");
        console_ago(b, cs_db_int(res, 0, CSC_CONSOLE_COUNTS_STUCK_STARTED_MS));
        html_raw(b, "</p>");
    } else {
        html_raw(b, "<p class=\"muted\">Nothing is executing.</p>");
    }
    html_raw(b, "</div></div></section>");
}

struct series {
    int n;
    int64_t v[MAX_BUCKETS];
    int64_t v2[MAX_BUCKETS]; /* a second line (p99), or unused */
};

static void num(struct cs_buf *b, double x)
{
    char t[32];
    snprintf(t, sizeof(t), "%.1f", x);
    html_raw(b, t);
}

/* An SVG chart of s: bars (or lines p50 and p99 when `lines`), a y scale and time labels. */
static void chart(struct cs_buf *b, const char *title, const struct series *s, bool lines,
                  const char *color, const char *left, const char *right, const char *unit)
{
    int64_t max = 1;
    for (int i = 0; i < s->n; i++) {
        if (s->v[i] > max)
            max = s->v[i];
        if (lines && s->v2[i] > max)
            max = s->v2[i];
    }
    double w = (double)(CHART_W - PAD_L) / s->n, h = CHART_H - PAD_B - 6;
    char t[160];
    html_raw(b, "<div class=\"card\"><h2>");
    html_esc(b, title);
    html_raw(b, "</h2><svg viewBox=\"0 0 600 140\" role=\"img\" aria-label=\"");
    html_esc(b, title);
    html_raw(b, "\"><line x1=\"44\" y1=\"122\" x2=\"600\" y2=\"122\" stroke=\"#a8a29e\"/>");
    snprintf(t, sizeof(t),
             "<text x=\"40\" y=\"14\" font-size=\"11\" text-anchor=\"end\" "
             "fill=\"#57534e\">%lld%s</text>",
             (long long)max, unit);
    html_raw(b, t);
    html_raw(b, "<text x=\"40\" y=\"122\" font-size=\"11\" text-anchor=\"end\" "
                "fill=\"#57534e\">0</text>");
    if (!lines) {
        for (int i = 0; i < s->n; i++) {
            if (s->v[i] == 0)
                continue;
            double bh = h * (double)s->v[i] / (double)max;
            html_raw(b, "<rect x=\"");
            num(b, PAD_L + i * w + 0.5);
            html_raw(b, "\" y=\"");
            num(b, CHART_H - PAD_B - bh);
            html_raw(b, "\" width=\"");
            num(b, w > 2 ? w - 1 : w);
            html_raw(b, "\" height=\"");
            num(b, bh);
            html_raw(b, "\" fill=\"");
            html_raw(b, color);
            snprintf(t, sizeof(t), "\"><title>%lld</title></rect>", (long long)s->v[i]);
            html_raw(b, t);
        }
    } else {
        for (int line = 0; line < 2; line++) {
            const int64_t *v = line ? s->v2 : s->v;
            html_raw(b, "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"");
            html_raw(b, line ? "#b91c1c" : color);
            html_raw(b, "\" points=\"");
            for (int i = 0; i < s->n; i++) {
                num(b, PAD_L + i * w + w / 2);
                html_raw(b, ",");
                num(b, CHART_H - PAD_B - h * (double)v[i] / (double)max);
                html_raw(b, " ");
            }
            html_raw(b, "\"/>");
        }
        html_raw(b, "<text x=\"50\" y=\"14\" font-size=\"11\" fill=\"");
        html_raw(b, color);
        html_raw(b, "\">p50</text><text x=\"80\" y=\"14\" font-size=\"11\" fill=\"#b91c1c\">"
                    "p99</text>");
    }
    html_raw(b, "<text x=\"44\" y=\"136\" font-size=\"11\" fill=\"#57534e\">");
    html_esc(b, left);
    html_raw(b, "</text><text x=\"600\" y=\"136\" font-size=\"11\" text-anchor=\"end\" "
                "fill=\"#57534e\">");
    html_esc(b, right);
    html_raw(b, "</text></svg></div>");
}

static enum cs_err charts(struct console *k, bool day, char *err)
{
    struct cs_buf *b = &k->b;
    const char *p[] = {day ? "86400" : "3600", day ? "24" : "60"};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(k->d->db, CS_DB_Q(CONSOLE_SERIES, p), &res, err);
    if (rc)
        return rc;
    struct series in = {0}, dec = {0}, exe = {0}, fail = {0}, lat = {0};
    int n = PQntuples(res) < MAX_BUCKETS ? PQntuples(res) : MAX_BUCKETS;
    in.n = dec.n = exe.n = fail.n = lat.n = n;
    int64_t total_in = 0, total_exec = 0, total_fail = 0;
    for (int i = 0; i < n; i++) {
        in.v[i] = cs_db_int(res, i, CSC_CONSOLE_SERIES_RECEIVED);
        dec.v[i] = cs_db_int(res, i, CSC_CONSOLE_SERIES_DECIDED);
        exe.v[i] = cs_db_int(res, i, CSC_CONSOLE_SERIES_FINISHED);
        fail.v[i] = cs_db_int(res, i, CSC_CONSOLE_SERIES_FAILED);
        lat.v[i] = cs_db_int(res, i, CSC_CONSOLE_SERIES_P50_MS);
        lat.v2[i] = cs_db_int(res, i, CSC_CONSOLE_SERIES_P99_MS);
        total_in += in.v[i];
        total_exec += exe.v[i];
        total_fail += fail.v[i];
    }
    PQclear(res);
    const char *left = day ? "24 h ago" : "60 min ago";
    char line[200];
    snprintf(line, sizeof(line),
             "<p>Last %s: <b>%lld</b> requests in, <b>%lld</b> calls made, "
             "<b>%lld</b> failed.</p>",
             day ? "day" : "hour", (long long)total_in, (long long)total_exec,
             (long long)total_fail);
    html_raw(b, line);
    html_raw(b, "<div class=\"grid2\">");
    chart(b, day ? "Requests in, per hour" : "Requests in, per minute", &in, false, "#1d4ed8", left,
          "now", "");
    chart(b, "Decisions", &dec, false, "#7c3aed", left, "now", "");
    chart(b, "Executions", &exe, false, "#15803d", left, "now", "");
    chart(b, "Failures", &fail, false, "#b91c1c", left, "now", "");
    chart(b, "Decision \xe2\x86\x92 call latency", &lat, true, "#1d4ed8", left, "now", " ms");
    html_raw(b, "<div class=\"card\"><h2>Failures by code</h2>");
    const char *fp[] = {p[0]};
    if ((rc = cs_db_exec(k->d->db, CS_DB_Q(CONSOLE_FAILURES, fp), &res, err)))
        return rc;
    if (PQntuples(res) == 0)
        html_raw(b, "<p class=\"muted\">No failed call.</p>");
    else
        html_raw(b, "<div class=\"scroll\"><table><tr><th>error code</th><th>calls</th></tr>");
    for (int i = 0; i < PQntuples(res); i++) {
        html_raw(b, "<tr><td><a href=\"/console/approvals?status=failed\">");
        console_cell(b, res, i, CSC_CONSOLE_FAILURES_ERROR_CODE);
        html_raw(b, "</a></td><td>");
        console_cell(b, res, i, CSC_CONSOLE_FAILURES_N);
        html_raw(b, "</td></tr>");
    }
    if (PQntuples(res) > 0)
        html_raw(b, "</table></div>");
    PQclear(res);
    html_raw(b, "</div></div>");
    return CS_OK;
}

enum MHD_Result console_overview(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct console k;
    enum MHD_Result ret;
    char err[CS_ERRLEN];
    if (!console_open(r, c, d, &k, &ret))
        return ret;
    const char *period = console_arg(&k, "period");
    bool day = period && strcmp(period, "day") == 0;
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(k.d->db, CS_DB_Q0(CONSOLE_COUNTS), &res, err);
    if (rc)
        return console_fail(&k, rc, err);
    console_head(&k, "Overview", "overview");
    counts(&k, res);
    PQclear(res);
    html_raw(&k.b, "<h2>Throughput and latency</h2><p class=\"actions\">");
    html_raw(&k.b, day ? "<a href=\"/console\">last hour</a> <b>last day</b>"
                       : "<b>last hour</b> <a href=\"/console?period=day\">last day</a>");
    html_raw(&k.b, "</p><section id=\"charts\" data-live>");
    if ((rc = charts(&k, day, err)))
        return console_fail(&k, rc, err);
    html_raw(&k.b, "</section>");
    return console_page(&k);
}
