/* Cross-origin use of the API (API.md, "Cross-origin use"): which origins may call it from a
 * browser, and the fields a preflight and every API answer carry for them. Credentials travel
 * in headers, never cookies, so Access-Control-Allow-Credentials is never sent. */
#ifndef SHORTENER_CORS_H
#define SHORTENER_CORS_H

#include <stdbool.h>
#include <stddef.h>

#define CORS_METHODS        "GET, HEAD, POST, PATCH, DELETE, OPTIONS"
#define CORS_ALLOW_HEADERS  "Authorization, X-API-Key, Content-Type, Idempotency-Key"
#define CORS_EXPOSE_HEADERS "Location, RateLimit, RateLimit-Policy, Retry-After"
/* How long a browser may keep a preflight's answer, in seconds. */
#define CORS_MAX_AGE "600"

struct cors {
    bool any;       /* "*": every origin */
    char **origins; /* otherwise these, exactly (scheme://host[:port]) */
    size_t n;
};

/* Parses CORS_ORIGINS: "*", or origins separated by commas (blanks around them ignored).
 * Returns 0, or -EINVAL with the reason in err (and nothing to release). */
int cors_parse(const char *list, struct cors *out, char *err, size_t errlen);
void cors_release(struct cors *c);

/* The Access-Control-Allow-Origin to send for a request from origin (the Origin header,
 * NULL when absent): "*" (whatever the origin, when any is allowed), the origin itself, or
 * NULL for none. */
const char *cors_allow_origin(const struct cors *c, const char *origin);

#endif
