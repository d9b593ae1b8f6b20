/* Escaping text for HTML, in element content and in quoted attribute values alike: & < > " '
 * become character references, so nothing from a link can end an attribute or start a tag. */
#ifndef SHORTENER_HTMLESC_H
#define SHORTENER_HTMLESC_H

#include <stddef.h>

/* Room for n bytes escaped (the longest reference is 6 bytes), with the NUL. */
#define HTMLESC_MAX(n) ((n)*6 + 1)

/* Escapes s into out (cap bytes); cut short, never mid-reference, when it does not fit.
 * Returns the length written. */
size_t htmlesc(const char *s, char *out, size_t cap);

#endif
