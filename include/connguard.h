/* Guards the HTTP listener against clients that hold connections instead of using them
 * (slowloris): at most per_address connections from one address — an IPv4 address, or an
 * IPv6 /64, since one host has a whole /64 to pick from — and a deadline on receiving each
 * whole request (headers and body), counted from the connection's opening or the previous
 * answer, which an idle timeout alone does not give: one byte every few seconds keeps a
 * connection from ever being idle.
 *
 * libmicrohttpd has no call to close a connection from outside its own threads, so a thread
 * of this module shuts the socket down (shutdown(2)), and libmicrohttpd closes it as it
 * would one the client closed. Sockets are known here from libmicrohttpd's connection
 * notifications: it reports a close before it closes the descriptor, and both happen under
 * this module's lock, so a descriptor number is never shut down after it was reused. */
#ifndef SHORTENER_CONNGUARD_H
#define SHORTENER_CONNGUARD_H

#include <stdbool.h>

#include "clientip.h"
#include "metrics.h"

struct sockaddr;
struct connguard;
struct connguard_conn;

/* per_address 0: no limit per address. exempt: peers never limited per address (trusted
 * proxies carry many clients' connections); it must outlive the guard. request_timeout_ms
 * > 0. Counters go to m. NULL when out of memory. */
struct connguard *connguard_new(unsigned per_address, long long request_timeout_ms,
                                const struct clientip_trusted *exempt, struct metrics *m);

/* Starts the thread that enforces deadlines. Returns 0 or -errno. */
int connguard_start(struct connguard *g);

/* Stops the thread; call after the listener stopped. NULL is fine. */
void connguard_free(struct connguard *g);

/* A cheap first look before libmicrohttpd sets a connection up: false when the address is
 * already at its limit. */
bool connguard_admit(struct connguard *g, const struct sockaddr *peer);

/* A connection was set up on socket fd. Returns its record (for connguard_closed and the
 * request calls), or NULL when out of memory. A connection over its address's limit is shut
 * down at once, and still has a record. */
struct connguard_conn *connguard_opened(struct connguard *g, const struct sockaddr *peer, int fd);

/* The connection is about to be closed; its record is freed. NULL is fine. */
void connguard_closed(struct connguard *g, struct connguard_conn *c);

/* The whole request has arrived: its deadline no longer applies while it is answered. */
void connguard_request_received(struct connguard_conn *c);

/* Its answer was sent: the next request must arrive whole within the timeout. */
void connguard_request_done(struct connguard *g, struct connguard_conn *c);

/* Connections open now. */
unsigned long long connguard_open_count(struct connguard *g);

#endif
