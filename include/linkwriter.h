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
#include "keyspace.h"

struct cache_pending;
struct linkwriter;

struct link_job {
    /* Filled by the submitter. */
    char key[KEY_MAX_LEN + 1];
    char *url;                          /* owned by the job: link_job_free() */
    int64_t owner;                      /* 0: anonymous */
    int64_t expires_at;                 /* 0: never */
    void (*done)(struct link_job *job); /* called once, on a writer thread; last use of job */
    void *ctx;                          /* for done() */
    bool alias;   /* the submitter's own: a custom alias rather than a generated key */
    int attempts; /* the submitter's own: keys tried */
    int stage;    /* the submitter's own: where the request stands */
    /* Set before done(): 0 with created_at, -EEXIST when the key was ever used, -EAGAIN when
     * PostgreSQL is unreachable (the link may or may not be stored), -EIO otherwise. */
    int rc;
    int64_t created_at;
    struct jobq_node node; /* the writer's queue */
};

/* Frees the job and its url; NULL is fine. */
void link_job_free(struct link_job *job);

/* Starts nwriters writer threads. pending is the server's list of deletions Redis has yet to
 * hear of, shared by its cache connections. Returns NULL (reason logged) on failure. */
struct linkwriter *linkwriter_start(const char *conninfo, const char *redis_url,
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
