/* The admission thread and its queue. */
#include "admission.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bgthread.h"
#include "cache.h"
#include "log.h"
#include "redis.h"

#define ADMISSION_BATCH 1024

struct admission {
    struct ratelimit *rl;
    struct redis *redis;
    struct jobqueue queue;
    bool queue_ready;
    bool started;
    pthread_t thread;
    struct jobq_node *nodes[ADMISSION_BATCH];
    struct admission_job *batch[ADMISSION_BATCH];
    bool grouped[ADMISSION_BATCH];
};

static bool same_limit(const struct admission_job *x, const struct admission_job *y)
{
    return strcmp(x->name, y->name) == 0 && x->policy.limit == y->policy.limit &&
           x->policy.window == y->policy.window && x->policy.burst == y->policy.burst;
}

void admission_split(const struct ratelimit_result *group, int64_t admitted, int64_t pos,
                     struct ratelimit_result *out)
{
    *out = *group;
    out->allowed = pos < admitted;
    /* The group's remaining is what is left after its last admitted request; an earlier one
     * saw that many more left behind it. */
    out->remaining = out->allowed ? group->remaining + (admitted - 1 - pos) : 0;
    if (out->allowed)
        out->retry_us = 0;
}

/* One script per distinct limit in the batch; each job's result says whether it was among
 * the first ones admitted, in queue order. */
static void admit_batch(struct admission *a, struct admission_job **jobs, size_t n)
{
    bool *done = a->grouped;

    memset(done, 0, n * sizeof(*done));
    for (size_t i = 0; i < n; i++) {
        if (done[i])
            continue;
        int64_t count = 0, pos = 0;
        for (size_t j = i; j < n; j++)
            count += !done[j] && same_limit(jobs[i], jobs[j]);
        struct ratelimit_result res;
        int64_t admitted =
            ratelimit_check_n(a->rl, a->redis, jobs[i]->name, &jobs[i]->policy, count, true, &res);
        for (size_t j = i; j < n; j++) {
            if (done[j] || !same_limit(jobs[i], jobs[j]))
                continue;
            done[j] = true;
            admission_split(&res, admitted, pos++, &jobs[j]->result);
        }
    }
    for (size_t i = 0; i < n; i++)
        jobs[i]->done(jobs[i]);
}

static void *admission_main(void *arg)
{
    struct admission *a = arg;
    size_t n;

    while ((n = jobqueue_take(&a->queue, a->nodes, ADMISSION_BATCH)) > 0) {
        for (size_t i = 0; i < n; i++)
            a->batch[i] = container_of(a->nodes[i], struct admission_job, node);
        admit_batch(a, a->batch, n);
    }
    return NULL;
}

struct admission *admission_start(struct ratelimit *rl, const struct redis_target *target,
                                  struct cache_pending *pending)
{
    struct admission *a = calloc(1, sizeof(*a));

    if (!a)
        return NULL;
    a->rl = rl;
    if (jobqueue_init(&a->queue) < 0)
        goto fail;
    a->queue_ready = true;
    a->redis = redis_new(target);
    if (!a->redis)
        goto fail;
    cache_pending_attach(pending, a->redis);
    if (bgthread_start(&a->thread, "admission", admission_main, a) < 0) {
        log_error("cannot start the admission thread");
        goto fail;
    }
    a->started = true;
    return a;
fail:
    admission_free(a);
    return NULL;
}

int admission_submit(struct admission *a, struct admission_job *job)
{
    return jobqueue_push(&a->queue, &job->node);
}

void admission_close(struct admission *a)
{
    if (!a || !a->queue_ready)
        return;
    jobqueue_close(&a->queue);
    if (a->started) {
        pthread_join(a->thread, NULL);
        a->started = false;
    }
}

void admission_free(struct admission *a)
{
    if (!a)
        return;
    admission_close(a);
    redis_free(a->redis);
    if (a->queue_ready)
        jobqueue_release(&a->queue);
    free(a);
}
