/* Group admission: rate-limit checks of parked requests, batched like commits. Request
 * threads park a create (libmicrohttpd suspend) and queue its check; one thread takes all
 * queued checks, runs one Redis script per limit key for all of that key's requests (see
 * ratelimit_check_n: exactly what one script per request would admit, in order), and
 * resumes them. A busy key then costs one Redis round trip per batch instead of one per
 * request, and the limit stays exact across every server instance. */
#ifndef SHORTENER_ADMISSION_H
#define SHORTENER_ADMISSION_H

#include <stdbool.h>
#include <stdint.h>

#include "jobqueue.h"
#include "ratelimit.h"

struct admission;
struct cache_pending;
struct redis_target;

struct admission_job {
    char name[RATELIMIT_KEY_MAX]; /* the limit's key, e.g. "k:42" */
    struct ratelimit_policy policy;
    struct ratelimit_result result; /* set before done() */
    /* Called once, on the admission thread; the job lives inside its submitter, which gets
     * back to itself with container_of. */
    void (*done)(struct admission_job *job);
    struct jobq_node node;
};

/* The result of the request at position pos (0: first in queue order) of a group of
 * requests counted together, admitted of which were the first ones (ratelimit_check_n), the
 * group's result being group. */
void admission_split(const struct ratelimit_result *group, int64_t admitted, int64_t pos,
                     struct ratelimit_result *out);

/* Starts the thread with a Redis connection of its own to target, which drains pending (see
 * cache_pending_attach()). rl, target and pending must outlive it. */
struct admission *admission_start(struct ratelimit *rl, const struct redis_target *target,
                                  struct cache_pending *pending);

/* Queues job; done() follows exactly once, possibly before this returns. -ESHUTDOWN once
 * closing (done() is then not called). */
int admission_submit(struct admission *a, struct admission_job *job);

/* Refuses new jobs, answers every queued one and stops the thread. */
void admission_close(struct admission *a);

/* Closes if need be and frees everything. */
void admission_free(struct admission *a);

#endif
