/* A stats answer's recent rows (visit_recent: one per link, hour and visitor profile, not yet
 * rolled) summed per dimension value in the server, and merged into the top lists read from
 * the rolled sums.
 *
 * PostgreSQL split the profiles itself before: for a busy link's hour of 5,000 profiles that
 * was 10-13 ms of a 20 ms statement, where reading the rows takes 1 ms and splitting them
 * here well under that. The rolled sums are then ranked without them, and the two are merged
 * exactly: a value whose total is in the top ten either has recent visits (and its rolled sum
 * is read by name, see stats_recent_value) or is in the top ten of the rolled sums alone
 * (every value ranked before it there is ranked before it in the totals too). */
#ifndef SHORTENER_STATSRECENT_H
#define SHORTENER_STATSRECENT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct stats_recent;

struct stats_recent *stats_recent_new(void);
void stats_recent_free(struct stats_recent *r);

/* Adds visits of one recent row; profile is its STATS_DIMS values joined by
 * STATS_PROFILE_SEP (store.h), len bytes. A profile with another number of values is a row
 * no build writes: it is skipped and -EINVAL returned. -ENOMEM when out of memory. */
int stats_recent_add(struct stats_recent *r, const char *profile, size_t len, int64_t visits);

/* The distinct values summed so far: 0 <= i < stats_recent_count(). Returns value i (NUL-
 * terminated) and puts its dimension (1 .. STATS_DIMS) in *dim. */
size_t stats_recent_count(const struct stats_recent *r);
const char *stats_recent_value(const struct stats_recent *r, size_t i, int *dim);

/* Builds out, dimension dim's top list: the rolled sums of that dimension (n values in names,
 * their sums in sums: at least the top STATS_TOP_MAX of the rolled sums, and every value that
 * has recent visits and a rolled sum), each plus its recent visits, and the values with only
 * recent visits; the STATS_TOP_MAX largest, ties in bytewise order of the name (as
 * PostgreSQL's "C" collation orders them). Returns 0 or -ENOMEM. */
int stats_recent_top(const struct stats_recent *r, int dim, const char *const *names,
                     const int64_t *sums, size_t n, struct stats_top *out);

#endif
