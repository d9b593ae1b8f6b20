/* Validation of the long URLs users shorten, with libcurl's URL parser. */
#ifndef SHORTENER_URLCHECK_H
#define SHORTENER_URLCHECK_H

#include <stddef.h>

#define URLCHECK_MAX_LEN 8192

enum urlcheck_result {
    URLCHECK_OK = 0,
    URLCHECK_EMPTY,
    URLCHECK_TOO_LONG,
    URLCHECK_CONTROL_CHARS,
    URLCHECK_UNPARSABLE,
    URLCHECK_BAD_SCHEME,
    URLCHECK_NO_HOST,
    URLCHECK_SELF,
    URLCHECK_NOMEM,
};

/* Checks that url[0..len-1] is an absolute http or https URL with a host, at most
 * URLCHECK_MAX_LEN bytes, free of control characters and spaces, and not on the host and
 * port of base_url (this service's own short links). On URLCHECK_OK, *normalized is libcurl's
 * normalised form (lower-case scheme, default port dropped), owned by the caller: free(). */
enum urlcheck_result urlcheck_validate(const char *url, size_t len, const char *base_url,
                                       char **normalized);

/* A sentence for the problem+json detail. */
const char *urlcheck_describe(enum urlcheck_result r);

#endif
