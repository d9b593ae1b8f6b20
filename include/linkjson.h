/* A link as the API shows it: the JSON object that create, read and list return. */
#ifndef SHORTENER_LINKJSON_H
#define SHORTENER_LINKJSON_H

#include <stdint.h>

/* {"key","short_url","url","created_at","expires_at"[,"visits"]}: expires_at 0 is null
 * (never), visits < 0 leaves the field out. Returns compact JSON text that the caller frees,
 * or NULL when out of memory. */
char *linkjson_format(const char *base_url, const char *key, const char *url, int64_t created_at,
                      int64_t expires_at, int64_t visits);

#endif
