/* Passwords in the connection strings we are given (REDIS_URL, DATABASE_URL) never reach a log
 * line or an error message. Whatever formats such a string, or a message a library made from
 * one, passes it through here first.
 *
 * Understood forms: URIs (scheme://[user[:password]@]host..., with password=... among the
 * query parameters too) and libpq conninfo strings (keyword=value pairs, values possibly
 * single-quoted). In a URI without a ':' in its user part the whole user part counts as the
 * password (REDIS_URL reads redis://secret@host so), except for postgres[ql]:// URIs, where it
 * is the user name. Masking errs on the side of hiding too much. */
#ifndef SHORTENER_SECRET_H
#define SHORTENER_SECRET_H

#include <stddef.h>

#define SECRET_MASK "***"

/* Copies url into out (cap bytes, always NUL-terminated, cut short if need be) with every
 * password in it replaced by SECRET_MASK. Returns out, to be used as a printf argument. */
const char *secret_mask_url(const char *url, char *out, size_t cap);

/* Replaces, in place, every occurrence in text of the len bytes at secret by SECRET_MASK (or,
 * for a secret shorter than the mask, by as many '*'). len 0 does nothing. */
void secret_scrub(char *text, const char *secret, size_t len);

/* secret_scrub() for every password url holds: for messages a library made from url (libpq
 * quotes the part of a URI it could not decode, for one). */
void secret_scrub_url(char *text, const char *url);

#endif
