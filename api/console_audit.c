/*
 * console_audit.c -- dead letters and the audit chain.
 *
 *   GET /console/dead-letters [?before=ID]  what the ingest refused: reason, a safe
 *                                           preview, the original's size and SHA-256
 *   GET /console/audit [?verify=1]          the last seal and what no seal covers yet;
 *                                           with verify=1 the whole chain is recomputed
 *                                           (cs_audit_verify_cfg, as `countersign audit verify`)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cs_audit.h"

#define DEAD_PAGE 100

enum MHD_Result console_dead_letters(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct console k;
    enum MHD_Result ret;
    char err[CS_ERRLEN], limit[16];
    if (!console_open(r, c, d, &k, &ret))
        return ret;
    const char *before = console_arg(&k, "before");
    if (before && strspn(before, "0123456789") != strlen(before))
        return console_fail(&k, CS_ERR_INVALID, "before: a dead letter id");
    snprintf(limit, sizeof(limit), "%d", DEAD_PAGE + 1);
    const char *p[] = {before, limit};
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(k.d->db, CS_DB_Q(CONSOLE_DEAD_LETTERS, p), &res, err);
    if (rc)
        return console_fail(&k, rc, err);
    console_head(&k, "Dead letters", "dead-letters");
    struct cs_buf *b = &k.b;
    int n = PQntuples(res) > DEAD_PAGE ? DEAD_PAGE : PQntuples(res);
    html_raw(b, "<p class=\"muted\">Messages of the requests topic the ingest refused; each went "
                "to the dead-letter topic with its reason. The preview is printable ASCII only "
                "and at most 200 bytes; the size and SHA-256 are of the whole original.</p>"
                "<section id=\"list\"");
    html_raw(b, before ? ">" : " data-live>");
    html_raw(b, "<div class=\"card scroll\"><table><tr><th>at</th><th>reason</th><th>message</th>"
                "<th>from</th><th>size</th><th>sha256</th><th>preview</th></tr>");
    for (int i = 0; i < n; i++) {
        html_raw(b, "<tr><td>");
        console_time(b, cs_db_int(res, i, CSC_CONSOLE_DEAD_LETTERS_AT_MS));
        html_raw(b, "</td><td>");
        console_cell(b, res, i, CSC_CONSOLE_DEAD_LETTERS_REASON);
        html_raw(b, "</td><td>");
        console_cell(b, res, i, CSC_CONSOLE_DEAD_LETTERS_MESSAGE);
        html_raw(b, "</td><td class=\"mono\">");
        console_cell(b, res, i, CSC_CONSOLE_DEAD_LETTERS_TOPIC);
        html_raw(b, "[");
        console_cell(b, res, i, CSC_CONSOLE_DEAD_LETTERS_KPARTITION);
        html_raw(b, "]@");
        console_cell(b, res, i, CSC_CONSOLE_DEAD_LETTERS_KOFFSET);
        html_raw(b, "</td><td>");
        console_cell(b, res, i, CSC_CONSOLE_DEAD_LETTERS_SIZE);
        html_raw(b, "</td><td class=\"u\">");
        console_cell(b, res, i, CSC_CONSOLE_DEAD_LETTERS_SHA256_HEX);
        html_raw(b, "</td><td class=\"u\">");
        console_cell(b, res, i, CSC_CONSOLE_DEAD_LETTERS_PREVIEW);
        html_raw(b, "</td></tr>");
    }
    if (n == 0)
        html_raw(b, "<tr><td colspan=\"7\" class=\"muted\">No dead letter.</td></tr>");
    html_raw(b, "</table></div></section>");
    if (PQntuples(res) > DEAD_PAGE) {
        html_raw(b, "<p><a rel=\"next\" href=\"/console/dead-letters?before=");
        html_esc(b, cs_db_str(res, n - 1, CSC_CONSOLE_DEAD_LETTERS_ID));
        html_raw(b, "\">older &raquo;</a></p>");
    }
    PQclear(res);
    return console_page(&k);
}

static void verify(struct console *k)
{
    struct cs_buf *b = &k->b;
    struct cs_audit_report rep;
    char err[CS_ERRLEN], line[256];
    html_raw(b, "<div class=\"card\"><h2>Verification</h2>");
    enum cs_err rc = cs_audit_verify_cfg(k->d->db, k->r->api->cfg, &rep, err);
    if (rc) {
        html_raw(b, "<p>The chain could not be read: ");
        html_esc(b, err);
        html_raw(b, "</p></div>");
        return;
    }
    snprintf(line, sizeof(line),
             "<p id=\"verdict\"><b>%s</b>: %lld seals and %lld entries "
             "recomputed, %lld passkey-signed votes re-verified, %lld entries not sealed yet.</p>",
             rep.ok ? "The chain holds" : "The chain is BROKEN", (long long)rep.seals,
             (long long)rep.entries, (long long)rep.assertions, (long long)rep.unsealed_tail);
    html_raw(b, line);
    snprintf(line, sizeof(line),
             "<p>%lld seals signed, %lld from before signing (legacy); "
             "published head: %lld%s.</p>",
             (long long)rep.signed_seals, (long long)rep.legacy_seals,
             (long long)rep.published_head,
             rep.published_checked ? "" : " (no CS_AUDIT_HEAD_FILE: a cut chain goes unnoticed)");
    html_raw(b, line);
    if (!rep.ok) {
        snprintf(line, sizeof(line), "<p>First bad seal: #%lld (%s). ", (long long)rep.broken_seq,
                 rep.tamper);
        html_raw(b, line);
        html_esc(b, rep.problem);
        html_raw(b, "</p>");
    }
    html_raw(b, "</div>");
}

enum MHD_Result console_audit(struct api_req *r, struct MHD_Connection *c, struct api_db *d)
{
    struct console k;
    enum MHD_Result ret;
    char err[CS_ERRLEN];
    if (!console_open(r, c, d, &k, &ret))
        return ret;
    PGresult *res = NULL;
    enum cs_err rc = cs_db_exec(k.d->db, CS_DB_Q0(CONSOLE_AUDIT_HEAD), &res, err);
    if (rc)
        return console_fail(&k, rc, err);
    console_head(&k, "Audit", "audit");
    struct cs_buf *b = &k.b;
    html_raw(b, "<section id=\"head\" data-live><div class=\"card\"><h2>Last seal</h2>");
    if (cs_db_str(res, 0, CSC_CONSOLE_AUDIT_HEAD_SEQ)) {
        html_raw(b, "<dl><dt>Seal</dt><dd>#");
        console_cell(b, res, 0, CSC_CONSOLE_AUDIT_HEAD_SEQ);
        html_raw(b, "</dd><dt>Hash</dt><dd class=\"mono\">");
        console_cell(b, res, 0, CSC_CONSOLE_AUDIT_HEAD_HASH_HEX);
        html_raw(b, "</dd><dt>Sealed</dt><dd>");
        console_time(b, cs_db_int(res, 0, CSC_CONSOLE_AUDIT_HEAD_SEALED_MS));
        html_raw(b, " (");
        console_ago(b, cs_db_int(res, 0, CSC_CONSOLE_AUDIT_HEAD_SEALED_MS));
        html_raw(b, ")</dd><dt>Entries in it</dt><dd>");
        console_cell(b, res, 0, CSC_CONSOLE_AUDIT_HEAD_ENTRIES);
        html_raw(b, "</dd>");
    } else {
        html_raw(b, "<p class=\"muted\">No seal yet (the scheduler's sealer makes them).</p><dl>");
    }
    html_raw(b, "<dt>Not sealed yet</dt><dd>");
    console_cell(b, res, 0, CSC_CONSOLE_AUDIT_HEAD_UNSEALED);
    html_raw(b, " entries</dd><dt>Last entry</dt><dd>#");
    console_cell(b, res, 0, CSC_CONSOLE_AUDIT_HEAD_LAST_ID);
    html_raw(b, "</dd></dl></div></section>");
    PQclear(res);
    if (console_arg(&k, "verify"))
        verify(&k);
    else
        html_raw(b, "<p><a class=\"button\" href=\"/console/audit?verify=1\">Verify the whole "
                    "chain now</a> <span class=\"muted\">(recomputes every seal, like "
                    "<code>countersign audit verify</code>)</span></p>");
    return console_page(&k);
}
