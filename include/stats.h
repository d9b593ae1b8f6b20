/* GET /api/v1/urls/{key}/stats (API.md, Stats): a link's visits over a range, answered from
 * the hourly and daily sums that analytics.c writes; for the link's owner (or an admin key),
 * and for anyone, without credentials, when the link has public_stats. Reads of others'
 * links answer 404 as links.c's do; a caller without credentials gets 401 unless the stats
 * are public. Anonymous reads of public stats are not rate limited: they cost two indexed
 * reads of at most a few thousand rows. */
#ifndef SHORTENER_STATS_H
#define SHORTENER_STATS_H

#include "http.h"

enum http_step stats_handle(struct http_request *r, const char *key);

#endif
