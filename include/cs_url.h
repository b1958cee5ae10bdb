/*
 * cs_url.h -- parsing provider URLs and deciding where a secret may go.
 *
 * URLs are parsed and normalised by libcurl's URL API (dot segments
 * removed, numeric IPv4 forms such as 0x7f000001 or 2130706433 rewritten
 * to dotted quads), then checked against a grant's allowed bases:
 * same scheme, same host (case-insensitive), same port, and the path under
 * the base's path on a segment boundary. Credentials in a URL, schemes
 * other than http(s), port 0, and encoded dots or slashes in the path are
 * refused, and so are dot segments with a ';' parameter ("..;") in the
 * path as written. A host is an IP literal in its standard form or a name
 * of ASCII letters, digits and ".-_~" (an international name is written in
 * punycode); a '%' anywhere in the authority is refused before curl
 * decodes it, as is a numeric IPv4 form curl left as it was.
 * Plain http is only ever allowed by a base that says http:// itself.
 *
 * At connect time the executor also refuses private, loopback and
 * link-local addresses (cs_addr_is_private) unless the matching base names
 * that address as an IP literal, so a public name that resolves to an
 * internal address never receives a secret.
 */
#ifndef CS_URL_H
#define CS_URL_H

#include <stdbool.h>

#include "cs_err.h"

/* Declared, not included: <sys/socket.h> would give every includer bind(), listen(), ... */
struct sockaddr;

#define CS_URL_MAX 8192

struct cs_url {
    char *scheme; /* "http" or "https" */
    char *host;   /* lower case; IPv6 without brackets */
    int port;     /* explicit or the scheme's default */
    char *path;   /* normalised, starts with '/' */
    char *query;  /* without '?', or NULL */
    char *full;   /* the normalised URL, without fragment */
    bool host_is_ip;
};

/* Parses and normalises s. On success u owns its strings (cs_url_free). */
enum cs_err cs_url_parse(const char *s, struct cs_url *u, char *err) CS_MUSTCHECK;
void cs_url_free(struct cs_url *u);

/* True when u is under base (scheme, host, port, path prefix by segment). */
bool cs_url_under_base(const struct cs_url *u, const struct cs_url *base);

/*
 * Finds the first of bases[n] (textual, as stored on the grant) that u is
 * under. CS_ERR_HOST_NOT_ALLOWED when none; *index set on success.
 */
enum cs_err cs_url_allowed(const struct cs_url *u, char *const *bases, int n, int *index,
                           char *err) CS_MUSTCHECK;

/* Validates one allowed-base entry (for grant creation). */
enum cs_err cs_url_base_valid(const char *base, char *err) CS_MUSTCHECK;

/* True for loopback, private, link-local, CGNAT, unspecified, multicast. */
bool cs_addr_is_private(const struct sockaddr *sa);

#endif
