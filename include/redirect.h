/* GET /{key}: the hot path. A link is looked for in the in-process hot cache, then Redis,
 * then PostgreSQL, and the tiers it was missing from are filled on the way back; each GET
 * answered with a redirect counts as a visit. */
#ifndef SHORTENER_REDIRECT_H
#define SHORTENER_REDIRECT_H

#include <stddef.h>

#include "http.h"

/* Answers the redirect for key[0..len) (the path without its '/'), under the link's rules:
 * not before valid_from, within max_visits, its own redirect status, and the password form
 * instead of the redirect for a link with a password. */
enum http_step redirect_handle(struct http_request *r, const char *key, size_t len);

/* POST /{key}: the password form's answer. The password is checked off the request thread,
 * so this parks the request and is called again when it is resumed. Wrong passwords are
 * limited per client address and link. */
enum http_step redirect_unlock(struct http_request *r, const char *key, size_t len);

#endif
