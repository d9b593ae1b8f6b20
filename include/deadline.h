/* Millisecond clocks and absolute deadlines for timed waits. */
#ifndef SHORTENER_DEADLINE_H
#define SHORTENER_DEADLINE_H

#include <time.h>

/* Milliseconds on the monotonic clock: for timeouts and back-off, never for dates. */
long long deadline_now_ms(void);

/* The absolute time timeout_ms from now on clock (CLOCK_MONOTONIC for condition variables
 * set up with it, CLOCK_REALTIME for pthread_timedjoin_np and plain condition variables). */
void deadline_after(clockid_t clock, int timeout_ms, struct timespec *ts);

#endif
