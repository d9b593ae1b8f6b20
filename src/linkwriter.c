/* The writer threads and their queue. */
#include "linkwriter.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "log.h"
#include "store.h"

/* Links per statement: enough to absorb any burst the connection limit allows between two
 * commits, small enough that one statement stays a few milliseconds. */
#define WRITER_BATCH 512

struct writer {
    struct linkwriter *lw;
    pthread_t thread;
    bool started;
    struct store *store;
    struct cache *cache;
    struct link_insert *batch;
    struct link_job **jobs;
};

struct linkwriter {
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    struct link_job *head, *tail;
    unsigned queued;
    unsigned long long batches, links; /* under lock */
    bool stopping;
    unsigned nwriters;
    struct writer *writers;
};

void link_job_free(struct link_job *job)
{
    if (!job)
        return;
    free(job->url);
    free(job);
}

/* Takes up to WRITER_BATCH jobs, oldest first, waiting for one. Returns how many; 0 only when
 * stopping with nothing left. */
static size_t take(struct linkwriter *lw, struct link_job **out)
{
    size_t n = 0;

    pthread_mutex_lock(&lw->lock);
    while (!lw->head && !lw->stopping)
        pthread_cond_wait(&lw->nonempty, &lw->lock);
    while (lw->head && n < WRITER_BATCH) {
        out[n++] = lw->head;
        lw->head = lw->head->next;
        lw->queued--;
    }
    if (!lw->head)
        lw->tail = NULL;
    if (n) {
        lw->batches++;
        lw->links += n;
    }
    pthread_mutex_unlock(&lw->lock);
    return n;
}

static void write_batch(struct writer *w, struct link_job **jobs, size_t n)
{
    const char *keys[WRITER_BATCH];
    size_t stored = 0;
    int rc;

    for (size_t i = 0; i < n; i++)
        w->batch[i] = (struct link_insert){.key = jobs[i]->key,
                                           .url = jobs[i]->url,
                                           .owner = jobs[i]->owner,
                                           .expires_at = jobs[i]->expires_at};
    rc = store_insert_links(w->store, w->batch, n);
    for (size_t i = 0; i < n; i++) {
        jobs[i]->rc = rc < 0 ? rc : w->batch[i].rc;
        jobs[i]->created_at = w->batch[i].created_at;
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

    while ((n = take(w->lw, w->jobs)) > 0)
        write_batch(w, w->jobs, n);
    return NULL;
}

struct linkwriter *linkwriter_start(const char *conninfo, const char *redis_url,
                                    struct cache_pending *pending, unsigned nwriters)
{
    struct linkwriter *lw = calloc(1, sizeof(*lw));

    if (!lw)
        return NULL;
    pthread_mutex_init(&lw->lock, NULL);
    pthread_cond_init(&lw->nonempty, NULL);
    lw->writers = calloc(nwriters, sizeof(*lw->writers));
    if (!lw->writers)
        goto fail;
    lw->nwriters = nwriters;
    for (unsigned i = 0; i < nwriters; i++) {
        struct writer *w = &lw->writers[i];
        w->lw = lw;
        w->store = store_new(conninfo, "shortener-writer");
        w->cache = cache_new(redis_url, pending);
        w->batch = calloc(WRITER_BATCH, sizeof(*w->batch));
        w->jobs = calloc(WRITER_BATCH, sizeof(*w->jobs));
        if (!w->store || !w->cache || !w->batch || !w->jobs)
            goto fail;
    }
    for (unsigned i = 0; i < nwriters; i++) {
        if (pthread_create(&lw->writers[i].thread, NULL, writer_main, &lw->writers[i]) != 0) {
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
    job->next = NULL;
    pthread_mutex_lock(&lw->lock);
    if (lw->stopping) {
        pthread_mutex_unlock(&lw->lock);
        return -ESHUTDOWN;
    }
    if (lw->tail)
        lw->tail->next = job;
    else
        lw->head = job;
    lw->tail = job;
    lw->queued++;
    pthread_cond_signal(&lw->nonempty);
    pthread_mutex_unlock(&lw->lock);
    return 0;
}

unsigned linkwriter_queued(struct linkwriter *lw)
{
    pthread_mutex_lock(&lw->lock);
    unsigned n = lw->queued;
    pthread_mutex_unlock(&lw->lock);
    return n;
}

void linkwriter_counts(struct linkwriter *lw, unsigned long long *batches,
                       unsigned long long *links)
{
    pthread_mutex_lock(&lw->lock);
    *batches = lw->batches;
    *links = lw->links;
    pthread_mutex_unlock(&lw->lock);
}

void linkwriter_close(struct linkwriter *lw)
{
    if (!lw)
        return;
    pthread_mutex_lock(&lw->lock);
    lw->stopping = true;
    pthread_cond_broadcast(&lw->nonempty);
    pthread_mutex_unlock(&lw->lock);
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
        free(lw->writers[i].batch);
        free(lw->writers[i].jobs);
    }
    free(lw->writers);
    pthread_cond_destroy(&lw->nonempty);
    pthread_mutex_destroy(&lw->lock);
    free(lw);
}
