/* Rate limits by GCRA (the generic cell rate algorithm): a limit of N requests per W seconds
 * with a burst B admits a request when the key's theoretical arrival time (TAT) is no more
 * than B-1 emission intervals (W/N) ahead of now, and then moves the TAT one interval on.
 * Over any span E no more than B + E*N/W requests get through.
 *
 * The state lives in Redis, updated by a Lua script with Redis's own clock, so every server
 * instance shares one limit and one clock: one script per request for reads and deletes, one
 * per key for a group of parked creates (ratelimit_check_n, admission.c). While Redis cannot be
 * reached each instance limits by itself with the same algorithm in memory (struct
 * ratelimit_local), logs the change once and shows it in /metrics. */
#ifndef SHORTENER_RATELIMIT_H
#define SHORTENER_RATELIMIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct metrics;
struct redis;

/* limit requests per window seconds, up to burst of them at once. */
struct ratelimit_policy {
    int64_t limit;
    int64_t window;
    int64_t burst;
};

/* What one admission decided; the answer's header fields are made from it. */
struct ratelimit_result {
    bool allowed;
    int64_t remaining; /* requests that may follow at once */
    int64_t reset_us;  /* until the whole burst is available again */
    int64_t retry_us;  /* refused: until a request would be admitted */
    /* How many API-key revocations Redis has been told of (RATELIMIT_REVOCATIONS_KEY), read
     * in the same round trip; -1 when Redis did not answer. */
    int64_t revocations;
};

/* Counter that shortenerctl increments after each revocation, so servers know at once that
 * the keys they confirmed before may no longer be valid. */
#define RATELIMIT_REVOCATIONS_KEY "apikeys:revoked"

/* The emission interval W/N in microseconds, rounded up so the limit is never exceeded. */
int64_t ratelimit_interval_us(const struct ratelimit_policy *p);

/* One GCRA step at now_us on the state *tat (0: none yet). Updates *tat only when the
 * request is admitted and commit is true; commit false asks without counting. The Lua
 * script in ratelimit.c does exactly this in Redis. */
void ratelimit_gcra(int64_t *tat, int64_t now_us, int64_t interval_us, int64_t burst, bool commit,
                    struct ratelimit_result *out);

/* n requests arriving together: admits as many as n sequential GCRA steps would, in order,
 * and returns how many (0..n). out describes the state after them: allowed when at least
 * one was admitted, remaining after the last admitted, retry_us (when fewer than n were
 * admitted) until the next would be. */
int64_t ratelimit_gcra_n(int64_t *tat, int64_t now_us, int64_t interval_us, int64_t burst,
                         int64_t n, bool commit, struct ratelimit_result *out);

/* n requests that must all be admitted or none (a bulk create): as ratelimit_gcra_n when all n
 * fit, else nothing counted, remaining how many would fit now, and retry_us until all n would
 * (never, when n is over the burst). Returns n or 0. */
int64_t ratelimit_gcra_all(int64_t *tat, int64_t now_us, int64_t interval_us, int64_t burst,
                           int64_t n, struct ratelimit_result *out);

/* Parses a rate "N/s", "N/min" or "N/h"; the burst is N. Returns 0 or -EINVAL. */
int ratelimit_parse_policy(const char *spec, struct ratelimit_policy *out);

/* The header fields of draft-ietf-httpapi-ratelimit-headers (structured-field lists):
 * RateLimit-Policy: "default";q=<limit>;w=<window>
 * RateLimit: "default";r=<remaining>;t=<seconds>
 * t is the Retry-After of a refusal, else the seconds until the whole burst is back. */
void ratelimit_format_policy(const struct ratelimit_policy *p, char *buf, size_t cap);
void ratelimit_format_state(const struct ratelimit_result *r, char *buf, size_t cap);

/* Whole seconds a refused client should wait: at least 1. */
int64_t ratelimit_retry_after(const struct ratelimit_result *r);

#define RATELIMIT_KEY_MAX 64

/* The in-memory limiter used while Redis is away: a bounded table of TATs shared by the
 * server's threads. When it is full the entry nearest to its full burst is forgotten, which
 * errs on the side of the client. */
struct ratelimit_slot {
    char key[RATELIMIT_KEY_MAX];
    int64_t tat;
};

struct ratelimit_local {
    pthread_mutex_t lock;
    struct ratelimit_slot *slots;
    size_t nslots; /* a power of two */
};

int ratelimit_local_init(struct ratelimit_local *l, size_t nslots);
void ratelimit_local_release(struct ratelimit_local *l);
void ratelimit_local_check(struct ratelimit_local *l, const char *key, int64_t now_us,
                           const struct ratelimit_policy *p, bool commit,
                           struct ratelimit_result *out);
int64_t ratelimit_local_check_n(struct ratelimit_local *l, const char *key, int64_t now_us,
                                const struct ratelimit_policy *p, int64_t n, bool commit,
                                struct ratelimit_result *out);

int64_t ratelimit_local_check_all(struct ratelimit_local *l, const char *key, int64_t now_us,
                                  const struct ratelimit_policy *p, int64_t n,
                                  struct ratelimit_result *out);

struct ratelimit {
    struct ratelimit_local local;
    struct metrics *metrics;
    atomic_bool fallback; /* Redis was unreachable at the last admission */
    bool ready;
};

int ratelimit_init(struct ratelimit *rl, struct metrics *m);
void ratelimit_release(struct ratelimit *rl);

/* Admits one request under key (e.g. "k:42": API key 42) by policy p, in Redis through the
 * calling thread's connection r, else in this process. commit false only asks. */
void ratelimit_check(struct ratelimit *rl, struct redis *r, const char *key,
                     const struct ratelimit_policy *p, bool commit, struct ratelimit_result *out);

/* n requests under one key at once, in one round trip (see ratelimit_gcra_n). Returns how
 * many were admitted; the first that many, in order, are. */
int64_t ratelimit_check_n(struct ratelimit *rl, struct redis *r, const char *key,
                          const struct ratelimit_policy *p, int64_t n, bool commit,
                          struct ratelimit_result *out);

/* n requests under one key, all admitted or none (see ratelimit_gcra_all). Returns n or 0. */
int64_t ratelimit_check_all(struct ratelimit *rl, struct redis *r, const char *key,
                            const struct ratelimit_policy *p, int64_t n,
                            struct ratelimit_result *out);

#endif
