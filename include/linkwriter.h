/* Durable creates with shared commits. Request threads hand each new link to the writer
 * instead of inserting it themselves; writer threads, each with a PostgreSQL connection of
 * its own, insert whatever has queued up in one statement and one commit
 * (synchronous_commit on), then evict the new keys' negative cache entries from Redis, then
 * report each link's fate. While one writer waits for its fsync the queue fills again for
 * the next, so concurrent creates share fsyncs instead of paying one each, and no create
 * is reported before its commit is durable.
 *
 * The request thread does not wait: it suspends its HTTP connection, and the job's done()
 * resumes it from the writer thread. */
#ifndef SHORTENER_LINKWRITER_H
#define SHORTENER_LINKWRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "jobqueue.h"
#include "link.h"

struct cache_pending;
struct linkwriter;
struct redis_target;

/* One link to store. It lives inside whatever submitted it (a create item), which gets back
 * to itself from done() with container_of, and which owns what the pointers point at. */
struct link_job {
    char key[KEY_MAX_LEN + 1];
    const char *url;
    int64_t owner; /* 0: anonymous */
    struct link_attrs a;
    const char *password_hash; /* NULL: none */
    int64_t created_us;
    const char *idem_key, *idem_response; /* an idempotent create's (store.h), else NULL */
    void (*done)(struct link_job *job);   /* called once, on a writer thread; last use of job */
    /* Set before done(): 0 when stored, -EEXIST when the key was ever used, -EAGAIN when
     * PostgreSQL is unreachable (the link may or may not be stored), -EIO otherwise. */
    int rc;
    struct jobq_node node; /* the writer's queue */
};

/* Starts nwriters writer threads, each with connections of its own to PostgreSQL (conninfo) and
 * to Redis (target, which must outlive the writer). pending is the server's list of deletions
 * Redis has yet to hear of, shared by its cache connections. Returns NULL (reason logged) on
 * failure. */
struct linkwriter *linkwriter_start(const char *conninfo, const struct redis_target *target,
                                    struct cache_pending *pending, unsigned nwriters);

/* Queues job; done() will be called exactly once, possibly before this returns. Returns 0, or
 * -ESHUTDOWN once stopping (done() is then not called). */
int linkwriter_submit(struct linkwriter *lw, struct link_job *job);

/* Links waiting for a writer. */
unsigned linkwriter_queued(struct linkwriter *lw);

/* Statements (so commits) run and links they carried, since the start. */
void linkwriter_counts(struct linkwriter *lw, unsigned long long *batches,
                       unsigned long long *links);

/* Refuses new jobs (linkwriter_submit() fails from now on), finishes every queued one and
 * stops the threads. */
void linkwriter_close(struct linkwriter *lw);

/* Closes if need be, then frees everything. No thread may submit any more. */
void linkwriter_free(struct linkwriter *lw);

#endif
