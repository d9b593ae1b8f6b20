/* Starting the threads a program keeps beside its request threads, named for what they do.
 *
 * A process with a dozen threads all called "shortener" tells an operator nothing in
 * `top -H`, `perf top` or gdb; a name says which of them is spending the CPU. (Running the
 * off-request-path ones under SCHED_BATCH was measured and gained nothing, so the policy is
 * left alone.) */
#ifndef SHORTENER_BGTHREAD_H
#define SHORTENER_BGTHREAD_H

#include <pthread.h>

/* Starts fn(arg) in *thread, joinable, named name (cut to the 15 bytes Linux keeps). A name
 * the system refuses leaves the thread running unnamed. Returns 0 or -errno. */
int bgthread_start(pthread_t *thread, const char *name, void *(*fn)(void *), void *arg);

#endif
