/* Who the client is, for per-address limits: the socket peer, unless the peer is one of our
 * own proxies (TRUSTED_PROXIES), in which case X-Forwarded-For is read from the right,
 * skipping the proxies, and the first address that is not one of them is the client.
 * Addresses anyone could write into the header are never believed: a peer we do not trust
 * is the client, whatever it sends. */
#ifndef SHORTENER_CLIENTIP_H
#define SHORTENER_CLIENTIP_H

#include <stdbool.h>
#include <stddef.h>

struct sockaddr;

/* An address or network; IPv4 is held as IPv4-mapped IPv6 (::ffff:a.b.c.d). */
struct clientip_net {
    unsigned char addr[16];
    unsigned prefix; /* bits, 0-128 */
};

struct clientip_trusted {
    struct clientip_net *nets; /* heap: clientip_trusted_release() */
    size_t n;
};

/* Parses a comma-separated list of IPv4/IPv6 addresses and CIDR networks ("10.0.0.0/8,
 * ::1"); blanks around items are allowed, an empty list trusts nobody. Returns 0, or -EINVAL
 * with the reason in err, or -ENOMEM. */
int clientip_parse_trusted(const char *list, struct clientip_trusted *out, char *err,
                           size_t errlen);
void clientip_trusted_release(struct clientip_trusted *t);

/* Parses one address, IPv4 or IPv6 (brackets allowed), into 16 bytes. Returns 0 or -EINVAL. */
int clientip_parse_addr(const char *text, size_t len, unsigned char addr[16]);

bool clientip_is_trusted(const struct clientip_trusted *t, const unsigned char addr[16]);

/* Enough for "ffff:ffff:ffff:ffff::/64" and any IPv4 address. */
#define CLIENTIP_TEXT_MAX 48

/* The client's identity as text: "a.b.c.d" for IPv4; for IPv6 its /64 ("2001:db8:1:2::/64"),
 * since one host usually has a whole /64 to pick from. peer may be NULL (unknown), xff the
 * X-Forwarded-For header or NULL. An X-Forwarded-For that cannot be parsed is ignored. */
void clientip_resolve(const struct clientip_trusted *t, const struct sockaddr *peer,
                      const char *xff, char out[CLIENTIP_TEXT_MAX]);

/* The client's full address as clientip_resolve() finds it (IPv4 as IPv4-mapped IPv6), for
 * looking up its country; never stored. Returns 0, or -1 when the peer is not an IP address. */
int clientip_resolve_addr(const struct clientip_trusted *t, const struct sockaddr *peer,
                          const char *xff, unsigned char addr[16]);
/* The network a peer is counted by, for per-address budgets of connections: an IPv4
 * address whole (also when it comes as ::ffff:a.b.c.d on a dual-stack socket), an IPv6
 * address's /64 with the rest zeroed. Returns 0, or -1 (net zeroed) when the peer is not an
 * IP address. */
int clientip_peer_net(const struct sockaddr *peer, unsigned char net[16]);

/* True when the request comes from one of our proxies itself (a health check, say) rather
 * than from a client behind it: limits per client address do not apply to it. */
bool clientip_is_proxy(const struct clientip_trusted *t, const struct sockaddr *peer,
                       const char *xff);

#endif
