/* The writer threads and their queue. */
#include "linkwriter.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bgthread.h"
#include "cache.h"
#include "log.h"
#include "redis.h"
#include "store.h"

/* Links per statement: enough to absorb any burst the connection limit allows between two
 * commits, small enough that one statement stays a few milliseconds. */
#define WRITER_BATCH 512

struct writer {
    struct linkwriter *lw;
    pthread_t thread;
    bool started;
    struct store *store;
    struct redis *redis;
    struct cache *cache;
    struct link_insert *batch;
    struct jobq_node **nodes;
    struct link_job **jobs;
};

struct linkwriter {
    struct jobqueue queue;
    bool queue_ready;
    atomic_ullong batches, links;
    unsigned nwriters;
    struct writer *writers;
};

static void write_batch(struct writer *w, struct link_job **jobs, size_t n)
{
    const char *keys[WRITER_BATCH];
    size_t stored = 0;
    int rc;

    for (size_t i = 0; i < n; i++)
        w->batch[i] = (struct link_insert){.key = jobs[i]->key,
                                           .url = jobs[i]->url,
                                           .owner = jobs[i]->owner,
                                           .a = &jobs[i]->a,
                                           .password_hash = jobs[i]->password_hash,
                                           .created_us = jobs[i]->created_us,
                                           .idem_key = jobs[i]->idem_key,
                                           .idem_response = jobs[i]->idem_response};
    rc = store_insert_links(w->store, w->batch, n);
    for (size_t i = 0; i < n; i++) {
        jobs[i]->rc = rc < 0 ? rc : w->batch[i].rc;
        if (jobs[i]->rc == 0)
            keys[stored++] = jobs[i]->key;
    }
    /* Committed: now drop the negative entries lookups of these keys may have left. */
    if (stored && cache_evict_many(w->cache, keys, stored) < 0)
        for (size_t i = 0; i < stored; i++)
            cache_evict(w->cache, keys[i]); /* fails fast and remembers the key for later */
    for (size_t i = 0; i < n; i++)
        jobs[i]->done(jobs[i]);
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    size_t n;

    while ((n = jobqueue_take(&w->lw->queue, w->nodes, WRITER_BATCH)) > 0) {
        for (size_t i = 0; i < n; i++)
            w->jobs[i] = container_of(w->nodes[i], struct link_job, node);
        atomic_fetch_add_explicit(&w->lw->batches, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&w->lw->links, n, memory_order_relaxed);
        write_batch(w, w->jobs, n);
    }
    return NULL;
}

struct linkwriter *linkwriter_start(const char *conninfo, const struct redis_target *target,
                                    struct cache_pending *pending, unsigned nwriters)
{
    struct linkwriter *lw = calloc(1, sizeof(*lw));

    if (!lw)
        return NULL;
    atomic_init(&lw->batches, 0);
    atomic_init(&lw->links, 0);
    if (jobqueue_init(&lw->queue) < 0)
        goto fail;
    lw->queue_ready = true;
    lw->writers = calloc(nwriters, sizeof(*lw->writers));
    if (!lw->writers)
        goto fail;
    lw->nwriters = nwriters;
    for (unsigned i = 0; i < nwriters; i++) {
        struct writer *w = &lw->writers[i];
        w->lw = lw;
        w->store = store_new(conninfo, "shortener-writer");
        w->redis = redis_new(target);
        w->cache = w->redis ? cache_new(w->redis, pending) : NULL;
        w->batch = calloc(WRITER_BATCH, sizeof(*w->batch));
        w->nodes = calloc(WRITER_BATCH, sizeof(*w->nodes));
        w->jobs = calloc(WRITER_BATCH, sizeof(*w->jobs));
        if (!w->store || !w->cache || !w->batch || !w->nodes || !w->jobs)
            goto fail;
    }
    for (unsigned i = 0; i < nwriters; i++) {
        if (bgthread_start(&lw->writers[i].thread, "link-writer", writer_main, &lw->writers[i]) <
            0) {
            log_error("cannot start a link writer thread");
            goto fail;
        }
        lw->writers[i].started = true;
    }
    return lw;
fail:
    linkwriter_free(lw);
    return NULL;
}

int linkwriter_submit(struct linkwriter *lw, struct link_job *job)
{
    return jobqueue_push(&lw->queue, &job->node);
}

unsigned linkwriter_queued(struct linkwriter *lw)
{
    return (unsigned)jobqueue_count(&lw->queue);
}

void linkwriter_counts(struct linkwriter *lw, unsigned long long *batches,
                       unsigned long long *links)
{
    *batches = atomic_load_explicit(&lw->batches, memory_order_relaxed);
    *links = atomic_load_explicit(&lw->links, memory_order_relaxed);
}

void linkwriter_close(struct linkwriter *lw)
{
    if (!lw || !lw->queue_ready)
        return;
    jobqueue_close(&lw->queue);
    /* Writers leave only with the queue empty: every submitted job gets its done(). */
    for (unsigned i = 0; i < lw->nwriters; i++)
        if (lw->writers[i].started) {
            pthread_join(lw->writers[i].thread, NULL);
            lw->writers[i].started = false;
        }
}

void linkwriter_free(struct linkwriter *lw)
{
    if (!lw)
        return;
    linkwriter_close(lw);
    for (unsigned i = 0; lw->writers && i < lw->nwriters; i++) {
        store_free(lw->writers[i].store);
        cache_free(lw->writers[i].cache);
        redis_free(lw->writers[i].redis);
        free(lw->writers[i].batch);
        free(lw->writers[i].nodes);
        free(lw->writers[i].jobs);
    }
    free(lw->writers);
    if (lw->queue_ready)
        jobqueue_release(&lw->queue);
    free(lw);
}
