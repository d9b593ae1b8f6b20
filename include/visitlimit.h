/* max_visits, exact across every server: the visits of a link that has a maximum are counted
 * in Redis, one atomic script per redirect of such a link (other links never come here), the
 * counter starting from the durable count in PostgreSQL when Redis has none (a new link, or a
 * Redis that lost it).
 *
 * When Redis cannot be reached the visit is refused (503): a link limited to 100 visits must
 * never be followed 101 times, and refusing a click that would have been allowed is the
 * lesser wrong. What Redis can still lose is said in README (a failover to a replica that had
 * not yet received the last increments). */
#ifndef SHORTENER_VISITLIMIT_H
#define SHORTENER_VISITLIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct redis;

enum visitlimit_result {
    VISITLIMIT_NEED_COUNT = -1, /* Redis has no counter: call again with the durable count */
    VISITLIMIT_EXHAUSTED = 0,   /* max visits made: answer 404 */
    VISITLIMIT_ALLOWED = 1
};

/* Takes one visit of key's max (take false only asks, for HEAD). durable: the count written to
 * PostgreSQL, or -1 when the caller has not read it. ttl: seconds the counter may live (the
 * link's remaining life), 0 for no end. Returns an enum visitlimit_result, or -EAGAIN when
 * Redis is unavailable. */
int visitlimit_take(struct redis *r, const char *key, int64_t max, int64_t durable, int64_t ttl,
                    bool take);

#endif
