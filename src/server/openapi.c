/* GET /api/v1/openapi.json: the document compiled in (see openapi.h). It changes only with the
 * binary, so caches may keep it for an hour and revalidate it by its ETag. */
#include "openapi.h"

#include <stdbool.h>
#include <string.h>

#define CACHE_CONTROL "public, max-age=3600"

/* True when an If-None-Match value names tag: "*", or a list of entity tags of which one
 * matches it by the weak comparison of RFC 9110 (a W/ prefix is ignored). */
static bool etag_listed(const char *list, const char *tag)
{
    size_t tag_len = strlen(tag);
    const char *p = list;

    while (*p) {
        p += strspn(p, " \t,");
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        size_t n = strcspn(p, " \t,");
        if (n == tag_len && memcmp(p, tag, n) == 0)
            return true;
        p += n;
    }
    return false;
}

enum http_step openapi_handle(struct http_request *r)
{
    const char *const headers[] = {"ETag", openapi_etag, "Cache-Control", CACHE_CONTROL, NULL};
    const char *inm;

    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
        return http_method_not_allowed(r, "GET, HEAD");
    inm = http_header(r, "If-None-Match");
    if (inm && etag_listed(inm, openapi_etag))
        return http_send(r, 304, NULL, "", 0, headers);
    return http_send(r, 200, "application/json", openapi_json, openapi_json_len, headers);
}
