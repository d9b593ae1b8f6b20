/* The job queue: a mutex, a condition variable and an intrusive FIFO. */
#include "jobqueue.h"

#include <errno.h>

int jobqueue_init(struct jobqueue *q)
{
    q->head = q->tail = NULL;
    q->count = 0;
    q->closed = false;
    if (pthread_mutex_init(&q->lock, NULL) != 0)
        return -ENOMEM;
    if (pthread_cond_init(&q->nonempty, NULL) != 0) {
        pthread_mutex_destroy(&q->lock);
        return -ENOMEM;
    }
    return 0;
}

void jobqueue_release(struct jobqueue *q)
{
    pthread_cond_destroy(&q->nonempty);
    pthread_mutex_destroy(&q->lock);
}

int jobqueue_push(struct jobqueue *q, struct jobq_node *n)
{
    n->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->closed) {
        pthread_mutex_unlock(&q->lock);
        return -ESHUTDOWN;
    }
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    q->count++;
    pthread_cond_signal(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
    return 0;
}

size_t jobqueue_take(struct jobqueue *q, struct jobq_node **out, size_t max)
{
    size_t n = 0;

    pthread_mutex_lock(&q->lock);
    while (!q->head && !q->closed)
        pthread_cond_wait(&q->nonempty, &q->lock);
    while (q->head && n < max) {
        out[n++] = q->head;
        q->head = q->head->next;
        q->count--;
    }
    if (!q->head)
        q->tail = NULL;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void jobqueue_close(struct jobqueue *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_cond_broadcast(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
}

size_t jobqueue_count(struct jobqueue *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->count;
    pthread_mutex_unlock(&q->lock);
    return n;
}
