/* Named background threads (see bgthread.h). */
#include "bgthread.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

int bgthread_start(pthread_t *thread, const char *name, void *(*fn)(void *), void *arg)
{
    char cut[16];
    int rc = pthread_create(thread, NULL, fn, arg);

    if (rc != 0)
        return -rc;
    snprintf(cut, sizeof(cut), "%s", name);
    if ((rc = pthread_setname_np(*thread, cut)) != 0)
        log_debug("thread %s: cannot name it: %s", cut, strerror(rc));
    return 0;
}
