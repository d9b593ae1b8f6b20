/* GET /api/v1/openapi.json: the document compiled in (see openapi.h). It changes only with the
 * binary, so caches may keep it for an hour and revalidate it by its ETag. */
#include "openapi.h"

#include <string.h>

#define CACHE_CONTROL "public, max-age=3600"

enum http_step openapi_handle(struct http_request *r)
{
    const char *const headers[] = {"ETag", openapi_etag, "Cache-Control", CACHE_CONTROL, NULL};

    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
        return http_method_not_allowed(r, "GET, HEAD");
    if (http_not_modified(r, openapi_etag))
        return http_send(r, 304, NULL, "", 0, headers);
    return http_send(r, 200, "application/json", openapi_json, openapi_json_len, headers);
}
