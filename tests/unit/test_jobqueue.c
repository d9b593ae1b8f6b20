/* Unit tests of the job queue: order, batches, closing with jobs still queued, and a
 * producer racing a consumer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "jobqueue.c"

struct job {
    int id;
    struct jobq_node node;
};

static void test_fifo_in_batches(void **state)
{
    struct jobqueue q;
    struct job jobs[10];
    struct jobq_node *out[4];
    int next = 0;
    (void)state;

    assert_int_equal(jobqueue_init(&q), 0);
    for (int i = 0; i < 10; i++) {
        jobs[i].id = i;
        assert_int_equal(jobqueue_push(&q, &jobs[i].node), 0);
    }
    assert_int_equal(jobqueue_count(&q), 10);
    while (next < 10) {
        size_t n = jobqueue_take(&q, out, 4);
        assert_true(n >= 1 && n <= 4);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(container_of(out[i], struct job, node)->id, next++);
    }
    assert_int_equal(jobqueue_count(&q), 0);
    jobqueue_release(&q);
}

static void test_close_drains_then_ends(void **state)
{
    struct jobqueue q;
    struct job a = {.id = 1}, b = {.id = 2};
    struct jobq_node *out[4];
    (void)state;

    assert_int_equal(jobqueue_init(&q), 0);
    assert_int_equal(jobqueue_push(&q, &a.node), 0);
    jobqueue_close(&q);
    assert_int_equal(jobqueue_push(&q, &b.node), -ESHUTDOWN);
    assert_int_equal(jobqueue_take(&q, out, 4), 1);
    assert_ptr_equal(out[0], &a.node);
    assert_int_equal(jobqueue_take(&q, out, 4), 0); /* closed and empty: no waiting */
    jobqueue_release(&q);
}

enum { RACE_JOBS = 20000 };

static void *producer(void *arg)
{
    struct jobqueue *q = arg;
    static struct job jobs[RACE_JOBS];
    for (int i = 0; i < RACE_JOBS; i++) {
        jobs[i].id = i;
        if (jobqueue_push(q, &jobs[i].node) != 0)
            return (void *)1;
    }
    jobqueue_close(q);
    return NULL;
}

static void test_producer_and_consumer(void **state)
{
    struct jobqueue q;
    struct jobq_node *out[64];
    pthread_t t;
    int next = 0;
    size_t n;
    void *ret;
    (void)state;

    assert_int_equal(jobqueue_init(&q), 0);
    assert_int_equal(pthread_create(&t, NULL, producer, &q), 0);
    while ((n = jobqueue_take(&q, out, 64)) > 0)
        for (size_t i = 0; i < n; i++)
            assert_int_equal(container_of(out[i], struct job, node)->id, next++);
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_null(ret);
    assert_int_equal(next, RACE_JOBS);
    jobqueue_release(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_in_batches),
        cmocka_unit_test(test_close_drains_then_ends),
        cmocka_unit_test(test_producer_and_consumer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
