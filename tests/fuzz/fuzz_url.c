/*
 * fuzz_url.c -- libFuzzer target: provider URLs and the allow-list
 * (lib/cs_url.c: cs_url_parse, cs_url_under_base, cs_url_allowed,
 * cs_url_base_valid, cs_addr_is_private).
 *
 * Input: the first line is the URL a caller asks for; each further line
 * (up to four) is an allowed base of a grant, tried after fixed bases
 * with an IPv4 literal, an IPv6 literal, a path prefix and a bare host.
 *
 * A parsed URL must be what the executor will call: scheme http(s), a
 * host that is an IP literal in standard form (IPv6 without brackets or
 * zone) or a name of [a-z0-9._~-] -- never a numeric IPv4 form other than
 * a dotted quad --, a port from 1 to 65535, a path that starts with '/'
 * and has no dot segment (with or without a ';' parameter) and no encoded
 * separator, and a normalised form that parses to itself (the executor
 * re-parses the stored URL). It is under itself; cs_url_allowed
 * names the first base it is under and refuses when there is none; a
 * base is valid exactly when it parses without a query. For an IPv4
 * literal host, the private-address check answers the same for the
 * address and for its IPv4-mapped IPv6 form.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "cs_url.h"
#include "fuzz.h"

#define MAX_BASES 8

static const char *const fixed_bases[] = {"https://api.example.com/v1", "http://127.0.0.1:8080/",
                                          "https://[2001:db8::1]:8443/x/",
                                          "https://api.stripe.com"};

/* An empty query ("x?") is no query: the normalised URL drops the '?'. */
static const char *query(const struct cs_url *u)
{
    return u->query ? u->query : "";
}

static bool same_url(const struct cs_url *a, const struct cs_url *b)
{
    return strcmp(a->scheme, b->scheme) == 0 && strcmp(a->host, b->host) == 0 &&
           a->port == b->port && strcmp(a->path, b->path) == 0 && strcmp(query(a), query(b)) == 0 &&
           strcmp(a->full, b->full) == 0 && a->host_is_ip == b->host_is_ip;
}

static void show(const char *what, const struct cs_url *u)
{
    fprintf(stderr, "%s: scheme=%s host=[%s] port=%d path=[%s] query=[%s] full=[%s] ip=%d\n", what,
            u->scheme, u->host, u->port, u->path, query(u), u->full, u->host_is_ip);
}

static void check_parsed(const struct cs_url *u)
{
    FUZZ_CHECK(strcmp(u->scheme, "http") == 0 || strcmp(u->scheme, "https") == 0);
    FUZZ_CHECK(u->host[0] != '\0');
    unsigned char a[16];
    struct in_addr aton;
    bool v4 = inet_pton(AF_INET, u->host, a) == 1, v6 = inet_pton(AF_INET6, u->host, a) == 1;
    FUZZ_CHECK(u->host_is_ip == (v4 || v6));
    if (!v6)
        for (const char *c = u->host; *c; c++)
            FUZZ_CHECK((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                       (*c && strchr("._~-", *c)));
    /* What a resolver would read as an IPv4 address is written as one. */
    FUZZ_CHECK(v4 || v6 || !inet_aton(u->host, &aton));
    FUZZ_CHECK(u->port >= 1 && u->port <= 65535);
    FUZZ_CHECK(u->path[0] == '/');
    for (const char *s = u->path; *s; s++) {
        if (*s != '/')
            continue;
        /* No "." or ".." segment is left for a server to resolve, nor one behind a ';'. */
        FUZZ_CHECK(!(s[1] == '.' && (s[2] == '/' || s[2] == '\0' || s[2] == ';')));
        FUZZ_CHECK(!(s[1] == '.' && s[2] == '.' && (s[3] == '/' || s[3] == '\0' || s[3] == ';')));
    }
    FUZZ_CHECK(cs_url_under_base(u, u));

    struct cs_url again;
    char err[CS_ERRLEN];
    enum cs_err rc = cs_url_parse(u->full, &again, err);
    if (rc != CS_OK)
        fprintf(stderr, "normalised URL refused: %s: %s\n", u->full, err);
    FUZZ_CHECK(rc == CS_OK);
    if (!same_url(u, &again)) {
        show("parsed  ", u);
        show("reparsed", &again);
    }
    FUZZ_CHECK(same_url(u, &again));
    cs_url_free(&again);

    unsigned char a4[4];
    if (inet_pton(AF_INET, u->host, a4) == 1) {
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        memset(&in, 0, sizeof(in));
        memset(&in6, 0, sizeof(in6));
        in.sin_family = AF_INET;
        memcpy(&in.sin_addr, a4, 4);
        in6.sin6_family = AF_INET6;
        in6.sin6_addr.s6_addr[10] = 0xff;
        in6.sin6_addr.s6_addr[11] = 0xff;
        memcpy(in6.sin6_addr.s6_addr + 12, a4, 4);
        FUZZ_CHECK(cs_addr_is_private((struct sockaddr *)&in) ==
                   cs_addr_is_private((struct sockaddr *)&in6));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    char *bases[MAX_BASES];
    int nbases = 0;
    for (size_t i = 0; i < sizeof(fixed_bases) / sizeof(fixed_bases[0]); i++)
        bases[nbases++] = cs_strdup(fixed_bases[i]);
    char *nl = strchr(text, '\n');
    if (nl)
        *nl++ = '\0';
    while (nl && nbases < MAX_BASES) {
        char *line = nl;
        nl = strchr(line, '\n');
        if (nl)
            *nl++ = '\0';
        bases[nbases++] = cs_strdup(line);
    }

    char err[CS_ERRLEN] = "";
    struct cs_url u;
    enum cs_err rc = cs_url_parse(text, &u, err);
    if (rc != CS_OK) {
        FUZZ_CHECK(rc == CS_ERR_BAD_URL && err[0]);
        FUZZ_CHECK(!u.scheme && !u.host && !u.path && !u.query && !u.full);
    } else {
        check_parsed(&u);
    }

    int first = -1;
    for (int i = 0; i < nbases; i++) {
        struct cs_url b;
        enum cs_err brc = cs_url_parse(bases[i], &b, err);
        FUZZ_CHECK((cs_url_base_valid(bases[i], err) == CS_OK) == (brc == CS_OK && !b.query));
        if (brc != CS_OK)
            continue;
        check_parsed(&b);
        if (rc == CS_OK && first < 0 && cs_url_under_base(&u, &b)) {
            first = i;
            /* Same origin, and the path is inside the base's path. */
            FUZZ_CHECK(strcmp(u.host, b.host) == 0 && u.port == b.port &&
                       strcmp(u.scheme, b.scheme) == 0);
            size_t bl = strlen(b.path);
            while (bl && b.path[bl - 1] == '/')
                bl--;
            FUZZ_CHECK(strncmp(u.path, b.path, bl) == 0);
        }
        cs_url_free(&b);
    }
    if (rc == CS_OK) {
        int idx = -1;
        enum cs_err arc = cs_url_allowed(&u, bases, nbases, &idx, err);
        FUZZ_CHECK(first >= 0 ? arc == CS_OK && idx == first : arc == CS_ERR_HOST_NOT_ALLOWED);
        cs_url_free(&u);
    }
    for (int i = 0; i < nbases; i++)
        cs_free(bases[i]);
    cs_free(text);
    return 0;
}
