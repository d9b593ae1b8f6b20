/* The body of a create request (JSON or form), parsed and checked field by field. */
#ifndef SHORTENER_REQUEST_H
#define SHORTENER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyspace.h"

#define REQUEST_MAX_BODY (64 * 1024)

enum body_type { BODY_JSON, BODY_FORM, BODY_UNSUPPORTED };

struct create_request {
    char *url; /* NULL when absent; never contains NUL */
    size_t url_len;
    char *alias; /* NULL when absent */
    bool has_expires_at;
    int64_t expires_at; /* seconds since the epoch */
    bool has_ttl;
    int64_t ttl; /* seconds, > 0 */
};

/* Maps a Content-Type header value (parameters such as charset allowed) to a body type. */
enum body_type request_body_type(const char *content_type);

/* Parses a create body. Returns 0, or -EINVAL with a sentence for the client in err (and
 * nothing left allocated). Fields in out are heap copies: create_request_release(). */
int request_parse_create(enum body_type type, const char *body, size_t len,
                         struct create_request *out, char *err, size_t errlen);

void create_request_release(struct create_request *req);

/* Checks an alias: 3-64 of [0-9A-Za-z_-], not a reserved path. Returns 0 or -EINVAL with
 * the reason in err. */
int request_check_alias(const char *alias, char *err, size_t errlen);

/* Works out when the link expires: the request's expires_at or ttl, else now + default_ttl,
 * or 0 (never) when default_ttl is 0. Returns 0 or -EINVAL (expiry not in the future,
 * too far away) with the reason in err. */
int request_resolve_expiry(const struct create_request *req, int64_t now, int64_t default_ttl,
                           int64_t *expires_at, char *err, size_t errlen);

/* True when s[0..len-1] could be a link key (generated or alias) at all. */
bool request_is_key(const char *s, size_t len);

#endif
