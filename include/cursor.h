/* The list's cursor: where the next page starts (the last link's creation time and key), tied
 * to the list it came from. It opens nothing, since every page is the caller's own links; the
 * tag in it only tells a cursor from another list, or one typed by hand, so that those get a
 * clear 400 rather than a page of something else. */
#ifndef SHORTENER_CURSOR_H
#define SHORTENER_CURSOR_H

#include <stdint.h>

#include "link.h"

/* Room for an encoded cursor, with its NUL. */
#define CURSOR_MAX 128

/* The position (us, key) in owner's list filtered by tag and q (NULL: none), as text. */
void cursor_encode(int64_t owner, const char *tag, const char *q, int64_t us, const char *key,
                   char out[CURSOR_MAX]);

/* Reads a cursor back for the same owner, tag and q. Returns 0, or -EINVAL when it is
 * malformed or belongs to another list. */
int cursor_decode(const char *text, int64_t owner, const char *tag, const char *q, int64_t *us,
                  char key[KEY_MAX_LEN + 1]);

#endif
