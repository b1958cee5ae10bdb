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
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
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

/* A dot segment carrying a ';' parameter anywhere in text ("..;" or ".;"). */
static bool dot_param_segment(const char *p)
{
    for (const char *seg = p; *seg;) {
        if (*seg == '/')
            seg++;
        size_t n = strcspn(seg, "/"), base = strcspn(seg, ";/");
        if (base < n && ((base == 1 && seg[0] == '.') || (base == 2 && !strncmp(seg, "..", 2))))
            return true;
        seg += n;
    }
    return false;
}

enum cs_err cs_url_parse(const char *s, struct cs_url *u, char *err)
{
    memset(u, 0, sizeof(*u));
    if (strlen(s) > CS_URL_MAX)
        return cs_err_set(err, CS_ERR_BAD_URL, "URL longer than %d bytes", CS_URL_MAX);
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return cs_err_set(err, CS_ERR_BAD_URL, "URL contains a space or control character");
    /* Checked before curl resolves dot segments: "/v1/.;/../x" must not slip through. */
    const char *path = strstr(s, "://");
    path = path ? path + 3 + strcspn(path + 3, "/?#") : s;
    if (dot_param_segment(path))
        return cs_err_set(err, CS_ERR_BAD_URL, "URL path must not contain a dot segment with a ';' parameter");
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
    unsigned char addr[16];
    u->host_is_ip = inet_pton(AF_INET, u->host, addr) == 1 || inet_pton(AF_INET6, u->host, addr) == 1;
    char *port = part(h, CURLUPART_PORT, CURLU_DEFAULT_PORT);
    u->port = port ? atoi(port) : 0;
    cs_free(port);
    u->path = part(h, CURLUPART_PATH, 0);
    if (!u->path)
        u->path = cs_strdup("/");
    const char *why = dot_param_segment(u->path) ? "a dot segment with a ';' parameter"
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

enum cs_err cs_url_allowed(const struct cs_url *u, char *const *bases, int n, int *index,
                           char *err)
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
    return (a >> 24) == 0 ||                  /* 0.0.0.0/8 */
           (a >> 24) == 10 ||                 /* 10/8 */
           (a >> 24) == 127 ||                /* loopback */
           (a >> 16) == 0xa9fe ||             /* 169.254/16 link-local (metadata) */
           (a >> 20) == 0xac1 ||              /* 172.16/12 */
           (a >> 16) == 0xc0a8 ||             /* 192.168/16 */
           (a >> 22) == (100u << 2 | 1) ||    /* 100.64/10 CGNAT */
           (a >> 28) >= 0xe;                  /* multicast, reserved, broadcast */
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
            return v4_private((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
                              (uint32_t)b[14] << 8 | b[15]);
        if (memcmp(b, zero, 12) == 0) /* ::, ::1 and deprecated ::a.b.c.d */
            return true;
        return (b[0] & 0xfe) == 0xfc ||                 /* fc00::/7 unique local */
               (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || /* fe80::/10 link-local */
               b[0] == 0xff ||                          /* multicast */
               (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) || /* doc */
               (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b);   /* NAT64 */
    }
    return true; /* unknown families are never trusted */
}
