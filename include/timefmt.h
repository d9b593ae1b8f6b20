/* RFC 3339 timestamps, as the API reads and writes them. */
#ifndef SHORTENER_TIMEFMT_H
#define SHORTENER_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#define TIMEFMT_LEN 21 /* "2026-11-23T13:47:17Z" and its NUL */

/* Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" ('t', 'z' and a space for 'T'
 * accepted as RFC 3339 allows) into seconds since the epoch; a fraction is dropped.
 * Returns 0 or -EINVAL. */
int timefmt_parse(const char *s, size_t len, int64_t *epoch);

/* Writes "YYYY-MM-DDTHH:MM:SSZ" (UTC) into buf, which holds at least TIMEFMT_LEN bytes. */
void timefmt_format(int64_t epoch, char buf[TIMEFMT_LEN]);

#endif
