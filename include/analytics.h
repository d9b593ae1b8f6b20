/* Visit analytics off the request path (API.md, Stats).
 *
 * A redirect thread copies what a visit needs — the time, the key, the client's address,
 * Referer and User-Agent, each cut to a bound — into a buffer of its own (its own lock, which
 * only the analytics thread ever shares, a few times a second). The analytics thread takes the
 * buffers, classifies each visit (referring host, country through GEOIP_DB, browser, OS,
 * device, bot, with answers cached per User-Agent), drops the address, and sums visits per
 * link per UTC hour per dimension value. Every flush interval it writes those sums to
 * PostgreSQL in one statement: a kill -9 loses at most one interval. The same rows carry the
 * visits of links without a visit limit to the links' counts, which the visits thread then
 * leaves alone (migrations/0015_visits_in_stats.sql). Visits to unknown keys are summed per
 * day, with the most visited keys.
 *
 * Thread-safe as described: each slot is used by one request thread. */
#ifndef SHORTENER_ANALYTICS_H
#define SHORTENER_ANALYTICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct analytics;
struct store;
struct metrics;

/* Bounds of what a redirect thread copies. */
#define ANALYTICS_REFERER_MAX 512
#define ANALYTICS_UA_MAX      512

/* Dimensions as PostgreSQL stores them (migrations/0007_visit_stats.sql); a visitor profile
 * (migrations/0014_stats_recent.sql) holds the values of DIM_BOT .. DIM_DEVICE in order. */
enum analytics_dim {
    DIM_TOTAL = 0, /* value "": every visit, one row per hour, for the series */
    DIM_BOT = 1,
    DIM_REFERRER = 2,
    DIM_COUNTRY = 3,
    DIM_BROWSER = 4,
    DIM_OS = 5,
    DIM_DEVICE = 6,
};

/* nslots: one per request thread. geoip_db: a MaxMind-format database, or "" for none
 * (countries are then "unknown"). The store is owned from here on, even on failure. Returns
 * NULL with the reason in err. */
struct analytics *analytics_new(struct store *store, unsigned nslots, unsigned flush_ms,
                                const char *geoip_db, struct metrics *metrics, char *err,
                                size_t errlen);

/* Starts the analytics thread. Returns 0 or -errno. */
int analytics_start(struct analytics *a);

/* Records a visit of key answered with a redirect at time now, from the request thread owning
 * slot. addr: the client (IPv4-mapped IPv6), or NULL when unknown. referer and ua may be
 * NULL; they are cut to the bounds above. count: the visit is counted nowhere else, so it
 * goes to the link's visits too, through the same rows (migrations/0015_visits_in_stats.sql).
 * Never blocks on anything but the slot's lock. */
void analytics_visit(struct analytics *a, unsigned slot, int64_t now, const char *key,
                     size_t keylen, const unsigned char *addr, const char *referer, const char *ua,
                     bool count);

/* Records a look-up of a key that does not exist (a GET answered 404). */
void analytics_unknown(struct analytics *a, unsigned slot, int64_t now, const char *key,
                       size_t keylen);

/* Stops the thread after a last flush, and frees everything. */
void analytics_free(struct analytics *a);

#endif
