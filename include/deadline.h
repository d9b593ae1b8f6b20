/* Millisecond clocks and absolute deadlines for timed waits. */
#ifndef SHORTENER_DEADLINE_H
#define SHORTENER_DEADLINE_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on the monotonic clock: for timeouts and back-off, never for dates. */
long long deadline_now_ms(void);

/* Now on the wall clock, in whole seconds rounded up: time() reads a coarse clock that can lag
 * a second boundary by a few milliseconds, and a max-age counted from a second already past
 * would outlive the link. Rounding up errs the other way: a link is treated as a moment older.
 * Every judgement of a link's times (expiry, valid_from, the hot cache's ages) uses it. */
int64_t deadline_now_s_up(void);

/* The absolute time timeout_ms from now on clock (CLOCK_MONOTONIC for condition variables
 * set up with it, CLOCK_REALTIME for pthread_timedjoin_np and plain condition variables). */
void deadline_after(clockid_t clock, int timeout_ms, struct timespec *ts);

#endif
