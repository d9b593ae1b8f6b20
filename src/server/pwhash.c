/* The password hashing threads and their queue (see pwhash.h). */
#include "pwhash.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "bgthread.h"
#include "log.h"

_Static_assert(PWHASH_STR_MAX >= crypto_pwhash_STRBYTES, "room for a crypto_pwhash_str hash");

struct pwhash {
    struct jobqueue queue;
    bool queue_ready;
    unsigned nthreads, started;
    pthread_t *threads;
};

void pwhash_run(struct pwhash_job *job)
{
    if (job->verify_against) {
        job->rc = crypto_pwhash_str_verify(job->verify_against, job->password,
                                           (unsigned long long)job->len) == 0
                      ? 0
                      : -EACCES;
        return;
    }
    job->rc =
        crypto_pwhash_str_alg(job->hash, job->password, (unsigned long long)job->len,
                              PWHASH_OPSLIMIT, PWHASH_MEMLIMIT, crypto_pwhash_ALG_ARGON2ID13) == 0
            ? 0
            : -ENOMEM;
}

static void *pwhash_main(void *arg)
{
    struct pwhash *p = arg;
    struct jobq_node *node;

    /* One at a time: each job is long, and batching would gain nothing. */
    while (jobqueue_take(&p->queue, &node, 1) == 1) {
        struct pwhash_job *job = container_of(node, struct pwhash_job, node);
        pwhash_run(job);
        job->done(job);
    }
    return NULL;
}

struct pwhash *pwhash_start(unsigned nthreads)
{
    struct pwhash *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    if (jobqueue_init(&p->queue) < 0)
        goto fail;
    p->queue_ready = true;
    p->threads = calloc(nthreads, sizeof(*p->threads));
    if (!p->threads)
        goto fail;
    p->nthreads = nthreads;
    for (; p->started < nthreads; p->started++)
        if (bgthread_start(&p->threads[p->started], "pwhash", pwhash_main, p) < 0) {
            log_error("cannot start a password hashing thread");
            goto fail;
        }
    return p;
fail:
    pwhash_free(p);
    return NULL;
}

int pwhash_submit(struct pwhash *p, struct pwhash_job *job)
{
    return jobqueue_push(&p->queue, &job->node);
}

size_t pwhash_queued(struct pwhash *p)
{
    return jobqueue_count(&p->queue);
}

void pwhash_close(struct pwhash *p)
{
    if (!p || !p->queue_ready)
        return;
    jobqueue_close(&p->queue);
    for (unsigned i = 0; i < p->started; i++)
        pthread_join(p->threads[i], NULL);
    p->started = 0;
}

void pwhash_free(struct pwhash *p)
{
    if (!p)
        return;
    pwhash_close(p);
    free(p->threads);
    if (p->queue_ready)
        jobqueue_release(&p->queue);
    free(p);
}
