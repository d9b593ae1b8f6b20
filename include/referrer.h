/* The referring site of a visit, as stats name it: the host of a usable Referer (an absolute
 * http or https URL with a host), lower-cased, without user, port, path or query; "direct"
 * for a visit without one (none sent, an app's own scheme, or something unparsable). */
#ifndef SHORTENER_REFERRER_H
#define SHORTENER_REFERRER_H

#include <stddef.h>

/* The longest host name DNS allows. */
#define REFERRER_HOST_MAX 253

/* Writes the referring host of ref[0..len) (ref may be NULL) into out, NUL-terminated. */
void referrer_host(const char *ref, size_t len, char out[REFERRER_HOST_MAX + 1]);

#endif
