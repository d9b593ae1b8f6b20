/* The JSON description of a link (see linkjson.h). */
#include "linkjson.h"

#include <jansson.h>
#include <stdio.h>

#include "timefmt.h"

char *linkjson_format(const char *base_url, const char *key, const char *url, int64_t created_at,
                      int64_t expires_at, int64_t visits)
{
    char created[TIMEFMT_LEN], expires[TIMEFMT_LEN], short_url[700];
    json_t *obj;
    char *text;

    timefmt_format(created_at, created);
    timefmt_format(expires_at, expires);
    snprintf(short_url, sizeof(short_url), "%s/%s", base_url, key);
    obj = json_pack("{s:s, s:s, s:s, s:s, s:o}", "key", key, "short_url", short_url, "url", url,
                    "created_at", created, "expires_at",
                    expires_at ? json_string(expires) : json_null());
    if (obj && visits >= 0)
        json_object_set_new(obj, "visits", json_integer(visits));
    text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    return text;
}
