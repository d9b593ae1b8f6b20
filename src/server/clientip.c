/* The client's address behind trusted proxies (see clientip.h). */
#include "clientip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "numparse.h"

#define ITEM_MAX 64

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool is_v4(const unsigned char addr[16])
{
    return memcmp(addr, v4_mapped, sizeof(v4_mapped)) == 0;
}

int clientip_parse_addr(const char *text, size_t len, unsigned char addr[16])
{
    char buf[ITEM_MAX];
    struct in_addr a4;

    if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
        text++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        memcpy(addr, v4_mapped, sizeof(v4_mapped));
        memcpy(addr + 12, &a4, 4);
        return 0;
    }
    return inet_pton(AF_INET6, buf, addr) == 1 ? 0 : -EINVAL;
}

static bool net_contains(const struct clientip_net *n, const unsigned char addr[16])
{
    unsigned full = n->prefix / 8, rest = n->prefix % 8;

    if (memcmp(n->addr, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (n->addr[full] & mask) == (addr[full] & mask);
}

bool clientip_is_trusted(const struct clientip_trusted *t, const unsigned char addr[16])
{
    for (size_t i = 0; i < t->n; i++)
        if (net_contains(&t->nets[i], addr))
            return true;
    return false;
}

static const char *trim(const char *p, const char *end, size_t *len)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *len = (size_t)(end - p);
    return p;
}

static int parse_net(const char *item, size_t len, struct clientip_net *out)
{
    const char *slash = memchr(item, '/', len);
    size_t alen = slash ? (size_t)(slash - item) : len;
    long long prefix = -1;

    if (clientip_parse_addr(item, alen, out->addr) < 0)
        return -EINVAL;
    unsigned max = is_v4(out->addr) ? 32 : 128;
    if (slash) {
        size_t plen = len - alen - 1;
        /* Three digits at most: "/0008" is a typo, not /8. */
        if (plen > 3 || numparse_ll_n(slash + 1, plen, 0, max, 0, &prefix) < 0)
            return -EINVAL;
    }
    out->prefix = (unsigned)(prefix < 0 ? max : prefix) + (max == 32 ? 96 : 0);
    /* Bits beyond the prefix do not matter; clear them so 10.1.2.3/8 means 10.0.0.0/8. */
    for (unsigned bit = out->prefix; bit < 128; bit++)
        out->addr[bit / 8] &= (unsigned char)~(0x80 >> (bit % 8));
    return 0;
}

int clientip_parse_trusted(const char *list, struct clientip_trusted *out, char *err, size_t errlen)
{
    const char *all = list ? list : "", *p = all;
    size_t cap = 1, len;

    out->nets = NULL;
    out->n = 0;
    for (const char *q = p; *q; q++)
        cap += *q == ',';
    out->nets = calloc(cap, sizeof(*out->nets));
    if (!out->nets)
        return -ENOMEM;
    trim(p, p + strlen(p), &len);
    if (len == 0)
        return 0;
    for (;;) {
        const char *end = p + strcspn(p, ",");
        const char *item = trim(p, end, &len);
        if (len > 0) {
            if (parse_net(item, len, &out->nets[out->n]) < 0) {
                snprintf(err, errlen,
                         "TRUSTED_PROXIES: '%.*s' is not an IPv4 or IPv6 address or network",
                         (int)(len < ITEM_MAX ? len : ITEM_MAX), item);
                clientip_trusted_release(out);
                return -EINVAL;
            }
            out->n++;
        } else {
            snprintf(err, errlen, "TRUSTED_PROXIES: empty item in '%s'", all);
            clientip_trusted_release(out);
            return -EINVAL;
        }
        if (!*end)
            break;
        p = end + 1;
    }
    return 0;
}

void clientip_trusted_release(struct clientip_trusted *t)
{
    free(t->nets);
    t->nets = NULL;
    t->n = 0;
}

static void format(const unsigned char addr[16], char out[CLIENTIP_TEXT_MAX])
{
    unsigned char net[16];

    if (is_v4(addr)) {
        inet_ntop(AF_INET, addr + 12, out, CLIENTIP_TEXT_MAX);
        return;
    }
    memcpy(net, addr, 8);
    memset(net + 8, 0, 8);
    inet_ntop(AF_INET6, net, out, CLIENTIP_TEXT_MAX - 3);
    size_t n = strlen(out);
    snprintf(out + n, CLIENTIP_TEXT_MAX - n, "/64");
}

/* The length of an X-Forwarded-For item without the port some proxies add: "[v6]:port" keeps
 * "[v6]", "a.b.c.d:port" keeps "a.b.c.d". A bare IPv6 address has several colons and is left
 * whole; what remains is parsed as an address or refused. */
static size_t without_port(const char *item, size_t len)
{
    const char *colon = len ? memrchr(item, ':', len) : NULL;
    size_t at, colons = 0;

    if (!colon)
        return len;
    at = (size_t)(colon - item);
    if (at + 1 == len)
        return len;
    for (size_t i = at + 1; i < len; i++)
        if (item[i] < '0' || item[i] > '9')
            return len;
    if (item[0] == '[')
        return at > 0 && item[at - 1] == ']' ? at : len;
    for (size_t i = 0; i < len; i++)
        colons += item[i] == ':';
    return colons == 1 ? at : len;
}

/* The client according to X-Forwarded-For as seen from a trusted peer; -EINVAL when the
 * header cannot be parsed. */
static int from_xff(const struct clientip_trusted *t, const char *xff, unsigned char addr[16])
{
    const char *end = xff + strlen(xff);
    bool any = false;

    while (end > xff) {
        const char *start = end;
        while (start > xff && start[-1] != ',')
            start--;
        size_t len;
        const char *item = trim(start, end, &len);
        len = without_port(item, len);
        if (clientip_parse_addr(item, len, addr) < 0)
            return -EINVAL;
        any = true;
        if (!clientip_is_trusted(t, addr))
            return 0;
        end = start > xff ? start - 1 : xff;
    }
    /* Every hop is ours: the furthest one is as close to the client as we can tell. */
    return any ? 0 : -EINVAL;
}

int clientip_peer_net(const struct sockaddr *peer, unsigned char net[16])
{
    memset(net, 0, 16);
    if (!peer)
        return -1;
    if (peer->sa_family == AF_INET) {
        memcpy(net, v4_mapped, sizeof(v4_mapped));
        memcpy(net + 12, &((const struct sockaddr_in *)(const void *)peer)->sin_addr, 4);
        return 0;
    }
    if (peer->sa_family != AF_INET6)
        return -1;
    memcpy(net, &((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr, 16);
    /* An IPv4 client of a dual-stack socket is the IPv4 address it is, whole. */
    if (!is_v4(net))
        memset(net + 8, 0, 8);
    return 0;
}

/* The client's address; -1 when the peer is not an IP address (unknown, or local). */
static int resolve_addr(const struct clientip_trusted *t, const struct sockaddr *peer,
                        const char *xff, unsigned char addr[16])
{
    unsigned char fwd[16];

    memset(addr, 0, 16);
    if (!peer)
        return -1;
    if (peer->sa_family == AF_INET) {
        memcpy(addr, v4_mapped, sizeof(v4_mapped));
        memcpy(addr + 12, &((const struct sockaddr_in *)(const void *)peer)->sin_addr, 4);
    } else if (peer->sa_family == AF_INET6) {
        memcpy(addr, &((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr, 16);
    } else {
        return -1;
    }
    if (xff && t->n > 0 && clientip_is_trusted(t, addr) && from_xff(t, xff, fwd) == 0)
        memcpy(addr, fwd, 16);
    return 0;
}

void clientip_resolve(const struct clientip_trusted *t, const struct sockaddr *peer,
                      const char *xff, char out[CLIENTIP_TEXT_MAX])
{
    unsigned char addr[16];

    if (resolve_addr(t, peer, xff, addr) < 0) {
        snprintf(out, CLIENTIP_TEXT_MAX, "%s", peer ? "local" : "unknown");
        return;
    }
    format(addr, out);
}

int clientip_resolve_addr(const struct clientip_trusted *t, const struct sockaddr *peer,
                          const char *xff, unsigned char addr[16])
{
    return resolve_addr(t, peer, xff, addr);
}

bool clientip_is_proxy(const struct clientip_trusted *t, const struct sockaddr *peer,
                       const char *xff)
{
    unsigned char addr[16];
    return resolve_addr(t, peer, xff, addr) == 0 && clientip_is_trusted(t, addr);
}
