/* A queue of parked requests' jobs, from the request threads to a thread that works through
 * them in batches (the link writer, the admission thread). Jobs embed a struct jobq_node and
 * are owned by their submitter throughout; the queue only links them. Thread-safe. */
#ifndef SHORTENER_JOBQUEUE_H
#define SHORTENER_JOBQUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "container_of.h"

struct jobq_node {
    struct jobq_node *next;
};

struct jobqueue {
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    struct jobq_node *head, *tail;
    size_t count;
    bool closed;
};

int jobqueue_init(struct jobqueue *q);
void jobqueue_release(struct jobqueue *q);

/* Appends n. Returns 0, or -ESHUTDOWN once the queue is closed (n is not queued). */
int jobqueue_push(struct jobqueue *q, struct jobq_node *n);

/* Waits for jobs, then moves up to max of them, oldest first, into out. Returns how many;
 * 0 only once the queue is closed and empty. */
size_t jobqueue_take(struct jobqueue *q, struct jobq_node **out, size_t max);

/* From now on pushes fail; takers drain what is queued, then get 0. */
void jobqueue_close(struct jobqueue *q);

size_t jobqueue_count(struct jobqueue *q);

#endif
