/* What a link key, an alias and a tag may be: the rules the server applies to creates and
 * shortenerctl applies to imports, in one place. Callers word their own messages from the
 * answers (an API problem detail, a skipped import line). */
#ifndef SHORTENER_LINKKEY_H
#define SHORTENER_LINKKEY_H

#include <stdbool.h>
#include <stddef.h>

enum linkkey_check {
    LINKKEY_OK = 0,
    LINKKEY_BAD_LENGTH, /* not ALIAS_MIN_LEN to ALIAS_MAX_LEN bytes */
    LINKKEY_BAD_CHARS,  /* a byte outside [0-9A-Za-z_-] */
    LINKKEY_RESERVED,   /* a path the service answers itself, in any case */
};

/* Paths an alias may not take, lower-case (compared case-insensitively). */
extern const char *const linkkey_reserved[];
extern const size_t linkkey_nreserved;

/* True when s[0..len-1] could be a link key at all: 3-64 of [0-9A-Za-z_-]. */
bool linkkey_is_key(const char *s, size_t len);

/* Checks s[0..len-1] as an alias: a possible key that is not reserved. */
enum linkkey_check linkkey_check_alias(const char *s, size_t len);

/* True when s[0..len-1] is a tag: 1-32 of [0-9A-Za-z_-]. */
bool linkkey_is_tag(const char *s, size_t len);

#endif
