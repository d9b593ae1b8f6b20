/* The one parser of bounded decimal integers: settings, flags, form fields, rate specifications,
 * prefix lengths and the kgs protocol all read their numbers through it, so that "12x", " 12",
 * "+12" and a number past the bounds are refused the same way everywhere.
 *
 * What it takes: one or more ASCII digits, with a '-' in front only when the range admits
 * negative numbers (lo < 0). No blanks, no '+', no other base, nothing after the digits. */
#ifndef SHORTENER_NUMPARSE_H
#define SHORTENER_NUMPARSE_H

#include <stddef.h>

/* Refuse leading zeros ("007", "-0"): every number then has exactly one spelling, as a wire
 * protocol or a stored specification wants. Without it "007" reads as 7. */
#define NUMPARSE_CANONICAL 0x1u

/* Parses the NUL-terminated text (NULL is refused) into *out, which is written only on
 * success. Returns 0; -EINVAL when the text is not a number of the accepted form; -ERANGE when
 * it is one but lies outside [lo, hi] (so also when it would overflow a long long). */
int numparse_ll(const char *text, long long lo, long long hi, unsigned flags, long long *out);

/* The same for the len bytes at text, which need not be NUL-terminated. */
int numparse_ll_n(const char *text, size_t len, long long lo, long long hi, unsigned flags,
                  long long *out);

#endif
