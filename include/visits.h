/* Visit counting off the redirect path: redirects add to an in-memory table; a background
 * thread writes the sums to PostgreSQL every flush interval in one statement. A crash loses
 * at most one interval of counts; a PostgreSQL outage keeps them until it is back. */
#ifndef SHORTENER_VISITS_H
#define SHORTENER_VISITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct visits;
struct store;

/* The table holds at most max_keys distinct keys between flushes; visits to further keys are
 * dropped (visits_record says so). Half full, it is flushed early. The store is owned by visits
 * from here on, even when this fails. */
struct visits *visits_new(struct store *store, unsigned flush_ms, size_t max_keys);

/* Starts the flush thread. Returns 0 or -errno. */
int visits_start(struct visits *v);

/* Counts one visit to key. Returns false when the visit had to be dropped. */
bool visits_record(struct visits *v, const char *key, size_t len);

/* Counts n visits to key, counted elsewhere first (the hot cache). */
bool visits_add(struct visits *v, const char *key, size_t len, uint32_t n);

/* harvest(ctx) runs at the start of every flush, to hand in visits counted elsewhere (with
 * visits_add). Set before visits_start(). */
void visits_set_harvest(struct visits *v, void (*harvest)(void *ctx), void *ctx);

size_t visits_pending(struct visits *v);

/* Stops the thread after a last flush, and frees everything. */
void visits_free(struct visits *v);

#endif
