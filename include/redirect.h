/* GET /{key}: the hot path. A link is looked for in the in-process hot cache, then Redis,
 * then PostgreSQL, and the tiers it was missing from are filled on the way back; each GET
 * answered with a redirect counts as a visit. */
#ifndef SHORTENER_REDIRECT_H
#define SHORTENER_REDIRECT_H

#include <stddef.h>

#include "http.h"

/* Answers the redirect for key[0..len) (the path without its '/'). */
enum http_step redirect_handle(struct http_request *r, const char *key, size_t len);

#endif
