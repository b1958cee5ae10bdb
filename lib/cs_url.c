/*
 * cs_url.c -- URL normalisation and allow-listing (see cs_url.h).
 */
#include "cs_url.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cs_mem.h"

static char *part(CURLU *h, CURLUPart p, unsigned flags)
{
    char *v = NULL;
    if (curl_url_get(h, p, &v, flags) != CURLUE_OK)
        return NULL;
    char *copy = cs_strdup(v);
    curl_free(v);
    return copy;
}

void cs_url_free(struct cs_url *u)
{
    if (!u)
        return;
    cs_free(u->scheme);
    cs_free(u->host);
    cs_free(u->path);
    cs_free(u->query);
    cs_free(u->full);
    memset(u, 0, sizeof(*u));
}

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/*
 * Why path p cannot be trusted as the provider will read it, or NULL. A
 * provider may decode or merge what curl keeps: percent-encoded unreserved
 * characters (%72 is 'r'), encoded '/', '.' or '\', empty segments ("//"
 * is merged by nginx and others), and dot segments hidden behind a ';'
 * parameter ("..;" resolves as ".." on Tomcat and Jetty). Each could move
 * the call outside the base it was allowed under, or past a policy rule.
 */
static const char *path_problem(const char *p)
{
    for (const char *c = p; *c; c++) {
        if (*c == '\\')
            return "a backslash";
        if (*c == '%') {
            int hi = hexval((unsigned char)c[1]), lo = hi < 0 ? -1 : hexval((unsigned char)c[2]);
            if (hi < 0 || lo < 0)
                return "a malformed percent escape";
            int v = hi << 4 | lo;
            if ((v >= 'a' && v <= 'z') || (v >= 'A' && v <= 'Z') || (v >= '0' && v <= '9') ||
                v == '-' || v == '.' || v == '_' || v == '~')
                return "a percent-encoded letter, digit or '-._~'";
            if (v == '/' || v == '\\')
                return "an encoded '/' or '\\'";
        }
        if (*c == '/' && c[1] == '/')
            return "an empty segment (\"//\")";
    }
    return NULL;
}

/* A dot segment carrying a ';' parameter ("..;" or ".;x") in the path p[n]. */
static bool dot_param_segment(const char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (p[i] == '/') {
            i++;
            continue;
        }
        size_t end = i, semi;
        while (end < n && p[end] != '/')
            end++;
        for (semi = i; semi < end && p[semi] != ';'; semi++)
            ;
        size_t base = semi - i;
        if (semi < end && ((base == 1 && p[i] == '.') || (base == 2 && !strncmp(p + i, "..", 2))))
            return true;
        i = end;
    }
    return false;
}

/*
 * Splits s as libcurl 7.88 reads it, before it decodes or resolves
 * anything: "scheme:" (1-40 of [A-Za-z0-9+.-]), the slashes, the
 * authority up to '/', '?' or '#', then the path up to '?' or '#'. Without
 * a scheme (curl refuses such a URL) there is no authority and the path is
 * everything before '?' or '#'.
 */
static void raw_split(const char *s, const char **auth, size_t *auth_len, const char **path,
                      size_t *path_len)
{
    size_t k = 0;
    while (k < 40 && (isalnum((unsigned char)s[k]) || s[k] == '+' || s[k] == '-' || s[k] == '.'))
        k++;
    const char *p = s;
    *auth = s;
    *auth_len = 0;
    if (k > 0 && s[k] == ':') {
        p = s + k + 1;
        while (*p == '/')
            p++;
        *auth = p;
        *auth_len = strcspn(p, "/?#");
        p += *auth_len;
    }
    *path = p;
    *path_len = strcspn(p, "?#");
}

/*
 * Why host h (lower case, IPv6 without brackets) is not one the executor
 * and the approvers can both take at face value, or NULL. An IP literal
 * must be in its standard form: a numeric IPv4 form that curl did not
 * rewrite (0x7f.1, 2130706433, 0177.0.0.1 reaching here) would still be
 * read as an address by the resolver. A name is ASCII letters, digits and
 * ".-_~": anything else would be shown to approvers as one host and
 * resolved as another.
 */
static const char *host_problem(const char *h, bool *is_ip)
{
    unsigned char addr[16];
    struct in_addr a4;
    *is_ip = inet_pton(AF_INET, h, addr) == 1 || inet_pton(AF_INET6, h, addr) == 1;
    if (*is_ip)
        return NULL;
    if (inet_aton(h, &a4))
        return "is a numeric IPv4 address that is not a dotted quad (write a.b.c.d)";
    for (const char *c = h; *c; c++) {
        if ((unsigned char)*c >= 0x80)
            return "is not ASCII (write an international name in punycode, xn--...)";
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || strchr(".-_~", *c)))
            return "holds a character other than letters, digits and \".-_~\"";
    }
    return NULL;
}

enum cs_err cs_url_parse(const char *s, struct cs_url *u, char *err)
{
    memset(u, 0, sizeof(*u));
    if (strlen(s) > CS_URL_MAX)
        return cs_err_set(err, CS_ERR_BAD_URL, "URL longer than %d bytes", CS_URL_MAX);
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return cs_err_set(err, CS_ERR_BAD_URL, "URL contains a space or control character");
    /*
     * Checked on the text as written, before curl decodes the host (after
     * its own checks: "0x7f%2e1" would become the loopback "0x7f.1") and
     * resolves dot segments ("/v1/.;/../x" would become "/v1/x").
     */
    const char *auth, *raw_path;
    size_t auth_len, raw_path_len;
    raw_split(s, &auth, &auth_len, &raw_path, &raw_path_len);
    if (memchr(auth, '%', auth_len))
        return cs_err_set(err, CS_ERR_BAD_URL,
                          "URL host must not be percent-encoded or carry an IPv6 zone");
    if (dot_param_segment(raw_path, raw_path_len))
        return cs_err_set(err, CS_ERR_BAD_URL,
                          "URL path must not contain a dot segment with a ';' parameter");
    CURLU *h = curl_url();
    cs_assert(h);
    enum cs_err rc = CS_OK;
    CURLUcode uc = curl_url_set(h, CURLUPART_URL, s, 0);
    if (uc != CURLUE_OK) {
        rc = cs_err_set(err, CS_ERR_BAD_URL, "invalid URL: %s", curl_url_strerror(uc));
        goto done;
    }
    char *user = part(h, CURLUPART_USER, 0), *pass = part(h, CURLUPART_PASSWORD, 0);
    bool creds = user || pass;
    cs_free(user);
    cs_free(pass);
    if (creds) {
        rc = cs_err_set(err, CS_ERR_BAD_URL, "URL must not carry credentials");
        goto done;
    }
    u->scheme = part(h, CURLUPART_SCHEME, 0);
    if (!u->scheme || (strcasecmp(u->scheme, "https") && strcasecmp(u->scheme, "http"))) {
        rc = cs_err_set(err, CS_ERR_BAD_URL, "URL scheme must be http or https");
        goto done;
    }
    for (char *c = u->scheme; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    u->host = part(h, CURLUPART_HOST, 0);
    if (!u->host || !*u->host) {
        rc = cs_err_set(err, CS_ERR_BAD_URL, "URL has no host");
        goto done;
    }
    for (char *c = u->host; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    char *zone = part(h, CURLUPART_ZONEID, 0);
    bool scoped = zone != NULL;
    cs_free(zone);
    /* The full URL carries the lower-case host too (curl keeps the case given). */
    curl_url_set(h, CURLUPART_HOST, u->host, 0);
    size_t hl = strlen(u->host);
    if (u->host[0] == '[' && hl > 2 && u->host[hl - 1] == ']') {
        memmove(u->host, u->host + 1, hl - 2);
        u->host[hl - 2] = '\0';
    }
    if (scoped || strchr(u->host, '%')) {
        rc = cs_err_set(err, CS_ERR_BAD_URL, "URL host must not be percent-encoded or scoped");
        goto done;
    }
    const char *bad_host = host_problem(u->host, &u->host_is_ip);
    if (bad_host) {
        rc = cs_err_set(err, CS_ERR_BAD_URL, "URL host %s", bad_host);
        goto done;
    }
    char *port = part(h, CURLUPART_PORT, CURLU_DEFAULT_PORT);
    u->port = port ? atoi(port) : 0;
    cs_free(port);
    if (u->port < 1 || u->port > 65535) {
        rc = cs_err_set(err, CS_ERR_BAD_URL, "URL port must be between 1 and 65535");
        goto done;
    }
    u->path = part(h, CURLUPART_PATH, 0);
    if (!u->path)
        u->path = cs_strdup("/");
    const char *why = dot_param_segment(u->path, strlen(u->path))
                          ? "a dot segment with a ';' parameter"
                          : path_problem(u->path);
    if (why) {
        rc = cs_err_set(err, CS_ERR_BAD_URL, "URL path must not contain %s", why);
        goto done;
    }
    u->query = part(h, CURLUPART_QUERY, 0);
    curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0);
    u->full = part(h, CURLUPART_URL, 0);
    if (!u->full)
        rc = cs_err_set(err, CS_ERR_BAD_URL, "invalid URL");
done:
    curl_url_cleanup(h);
    if (rc)
        cs_url_free(u);
    return rc;
}

bool cs_url_under_base(const struct cs_url *u, const struct cs_url *base)
{
    if (strcmp(u->scheme, base->scheme) || strcmp(u->host, base->host) || u->port != base->port)
        return false;
    size_t bl = strlen(base->path);
    while (bl > 0 && base->path[bl - 1] == '/')
        bl--; /* "/v1/" and "/v1" both mean the /v1 subtree; "/" means everything */
    if (bl == 0)
        return true;
    return strncmp(u->path, base->path, bl) == 0 && (u->path[bl] == '\0' || u->path[bl] == '/');
}

enum cs_err cs_url_allowed(const struct cs_url *u, char *const *bases, int n, int *index, char *err)
{
    for (int i = 0; i < n; i++) {
        struct cs_url b;
        if (cs_url_parse(bases[i], &b, NULL) != CS_OK)
            continue;
        bool ok = cs_url_under_base(u, &b);
        cs_url_free(&b);
        if (ok) {
            *index = i;
            return CS_OK;
        }
    }
    return cs_err_set(err, CS_ERR_HOST_NOT_ALLOWED,
                      "%s://%s:%d%s is not under any of the grant's allowed bases", u->scheme,
                      u->host, u->port, u->path);
}

enum cs_err cs_url_base_valid(const char *base, char *err)
{
    struct cs_url b;
    enum cs_err rc = cs_url_parse(base, &b, err);
    if (rc)
        return rc;
    if (b.query)
        rc = cs_err_set(err, CS_ERR_BAD_URL, "an allowed base must not have a query");
    cs_url_free(&b);
    return rc;
}

static bool v4_private(uint32_t a)
{
    return (a >> 24) == 0 ||               /* 0.0.0.0/8 */
           (a >> 24) == 10 ||              /* 10/8 */
           (a >> 24) == 127 ||             /* loopback */
           (a >> 16) == 0xa9fe ||          /* 169.254/16 link-local (metadata) */
           (a >> 20) == 0xac1 ||           /* 172.16/12 */
           (a >> 16) == 0xc0a8 ||          /* 192.168/16 */
           (a >> 22) == (100u << 2 | 1) || /* 100.64/10 CGNAT */
           (a >> 28) >= 0xe;               /* multicast, reserved, broadcast */
}

bool cs_addr_is_private(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return v4_private(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        const unsigned char *b = in6->sin6_addr.s6_addr;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        static const unsigned char zero[12] = {0};
        if (memcmp(b, mapped, 12) == 0) /* ::ffff:a.b.c.d is the IPv4 address */
            return v4_private((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 |
                              b[15]);
        if (memcmp(b, zero, 12) == 0) /* ::, ::1 and deprecated ::a.b.c.d */
            return true;
        return (b[0] & 0xfe) == 0xfc ||                   /* fc00::/7 unique local */
               (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || /* fe80::/10 link-local */
               b[0] == 0xff ||                            /* multicast */
               (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) || /* doc */
               (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b);   /* NAT64 */
    }
    return true; /* unknown families are never trusted */
}
