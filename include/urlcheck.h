/* Validation of the long URLs users shorten, with libcurl's URL parser. */
#ifndef SHORTENER_URLCHECK_H
#define SHORTENER_URLCHECK_H

#include <stdbool.h>
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

/* The hosts that are this service: BASE_URL's, and those named in SELF_HOSTS (old names,
 * other names of the same servers). A URL on one of them, over http or https, with or
 * without "www.", on BASE_URL's port or a default one, points back at us. */
struct urlcheck_self {
    char **hosts; /* lower-case, without a trailing dot or a leading "www." */
    size_t n;
    long port; /* BASE_URL's */
};

/* From base_url (may be NULL or empty, or unparsable: then no host of its own) and a
 * comma-separated list of host names or IP addresses (may be NULL). Returns 0, or -1 with
 * the reason in err (a bad SELF_HOSTS item, out of memory); nothing to release then. */
int urlcheck_self_init(struct urlcheck_self *self, const char *base_url, const char *extra_hosts,
                       char *err, size_t errlen);
void urlcheck_self_release(struct urlcheck_self *self);

/* Checks that url[0..len-1] is an absolute http or https URL with a host, at most
 * URLCHECK_MAX_LEN bytes, free of control characters and spaces, with an authority of RFC
 * 3986's characters only, and not on base_url's host (see struct urlcheck_self). On URLCHECK_OK,
 * *normalized is libcurl's normalised form (lower-case scheme, default port dropped), owned by the
 * caller: free(). */
enum urlcheck_result urlcheck_validate(const char *url, size_t len, const char *base_url,
                                       char **normalized);

/* The same, against the hosts of self (NULL: none). */
enum urlcheck_result urlcheck_check(const char *url, size_t len, const struct urlcheck_self *self,
                                    char **normalized);

/* A sentence for the problem+json detail. */
const char *urlcheck_describe(enum urlcheck_result r);

#endif
