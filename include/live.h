/* The live counter (GET /api/v1/urls/{key}/live): server-sent events of a link's all-time
 * visit count, pushed to the watchers of that link only.
 *
 * No thread per watcher: a watcher is a libmicrohttpd callback response whose connection is
 * parked (suspended) whenever it has nothing to say, and resumed by the one live thread when
 * its link's total changed or a keep-alive comment is due.
 *
 * Across servers, through Redis pub/sub on one channel: every server announces the links it
 * has watchers of, once a second (and at once when a link gets its first watcher); the others
 * keep those keys in a small local set for a few seconds after each announcement. The
 * redirect path counts a visit here only when its key is in that set (a lock-free check of
 * an empty set, else one read-locked lookup); once per LIVE_INTERVAL_MS the live thread
 * publishes one message with the counts of every watched link this server saw visits of, and
 * nothing when there were none. */
#ifndef SHORTENER_LIVE_H
#define SHORTENER_LIVE_H

#include <stddef.h>

#include "http.h"

struct live;
struct redis_target;

struct live_config {
    const char *database_url;
    unsigned interval_ms;     /* at most one event per link per interval */
    unsigned keepalive_ms;    /* a comment line after this long without a write */
    unsigned flush_ms;        /* VISITS_FLUSH_MS: how long PostgreSQL may lag the visits */
    unsigned max_per_address; /* watchers one client address may hold */
    unsigned stream_timeout;  /* seconds a watcher's connection may stall before it is dropped */
};

/* Prepares the module; nothing runs until live_start(). target must outlive it. NULL when out
 * of memory. */
struct live *live_new(const struct redis_target *target, const struct live_config *cfg);

/* Starts the live thread. Returns 0 or -errno. */
int live_start(struct live *l);

/* Counts one visit of key for its watchers, wherever they are. Cheap when nothing is watched;
 * called on the redirect path next to the visit count. l may be NULL. */
void live_visit(struct live *l, const char *key, size_t len);

/* GET /api/v1/urls/{key}/live. */
enum http_step live_handle(struct http_request *r, const char *key);

/* Ends every stream and resumes every parked watcher, so that libmicrohttpd can be stopped;
 * refuses new watchers from now on. Call before MHD_stop_daemon, live_free() after it. */
void live_close(struct live *l);

/* Stops the thread and frees everything. Every watcher must be gone (the daemon stopped). */
void live_free(struct live *l);

/* For /metrics: watchers attached here, and links watched anywhere that this server knows
 * of. */
size_t live_watchers(struct live *l);
size_t live_links(struct live *l);

#endif
