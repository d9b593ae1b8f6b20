/* Who may take keys from kgs: the peer's uid, as the kernel reports it for a Unix socket
 * (SO_PEERCRED), must be kgs's own, root's, or one named in KGS_ALLOWED_UIDS. Anyone else
 * who can reach the socket file could otherwise drain the key buffer or hold every client
 * slot. */
#ifndef SHORTENER_KGS_PEERS_H
#define SHORTENER_KGS_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PEERS_MAX 32

struct peers {
    uid_t uids[PEERS_MAX]; /* kgs's own uid first, then those of the list */
    size_t n;
};

/* Parses a comma-separated list of uids or user names (blanks around items allowed; an
 * empty list adds nobody) on top of self (kgs's own uid). Returns 0, or -EINVAL with the
 * reason in err. */
int peers_parse(const char *list, uid_t self, struct peers *out, char *err, size_t errlen);

/* True for root and every uid of p. */
bool peers_allowed(const struct peers *p, uid_t uid);

/* The uid of the process at the other end of Unix socket fd. Returns 0 or -errno. */
int peers_uid_of(int fd, uid_t *uid);

#endif
