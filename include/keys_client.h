/* The server's side of kgs: a local buffer of generated keys, kept filled by a thread of its
 * own over the Unix socket, so that request threads never wait on kgs while keys remain.
 *
 * Several kgs may be named (KGS_SOCKET "a.sock,b.sock"): the refill thread keeps to the one
 * that last answered and moves on to the next when it is gone (connection refused, no such
 * socket, reset, or a kgs that says it has no keys). It refills once the buffer falls to its
 * low-water mark (one batch), so a busy server takes its next batch while it still holds one.
 *
 * A request thread waits only when the buffer is empty: for the refill in flight, at most
 * KGS_CLIENT_TIMEOUT_MS, and not at all while every kgs was found unavailable a moment ago,
 * so a dead kgs never makes creates wait. Thread-safe. */
#ifndef SHORTENER_KEYS_CLIENT_H
#define SHORTENER_KEYS_CLIENT_H

#include <stddef.h>

#include "keyspace.h"

struct keys_client;

/* Sockets named in KGS_SOCKET at most. */
#define KEYS_CLIENT_MAX_SOCKETS 8

/* Checks a KGS_SOCKET value: one or more socket paths separated by commas (blanks around
 * each are ignored), none empty or too long for a Unix socket. Returns 0 or -EINVAL with the
 * reason in err. */
int keys_client_check_sockets(const char *sockets, char *err, size_t errlen);

/* sockets: as keys_client_check_sockets() accepts; batch: keys asked for per round trip
 * (1..KGS_MAX_TAKE). Starts the refill thread. NULL when out of memory, the value is
 * invalid or the thread cannot start. */
struct keys_client *keys_client_new(const char *sockets, unsigned batch);

/* Stops and joins the refill thread; unused keys are dropped (never reissued by kgs). */
void keys_client_free(struct keys_client *kc);

/* Copies one unused key into out. Returns 0, or -EAGAIN when no kgs could give keys. A key
 * returned here is never returned again, whether or not the caller uses it. */
int keys_client_take(struct keys_client *kc, char out[GENERATED_KEY_LEN + 1]);

/* Asks for PONG on a fresh connection to each kgs in turn, the last one that answered
 * first. Returns 0 when one answers, or the last -errno. */
int keys_client_ping(struct keys_client *kc);

size_t keys_client_buffered(struct keys_client *kc);

#endif
