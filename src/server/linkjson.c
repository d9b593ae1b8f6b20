/* The JSON description of a link (see linkjson.h). */
#include "linkjson.h"

#include <jansson.h>
#include <stdio.h>

#include "link.h"
#include "timefmt.h"

struct json_t *linkjson_object(const char *base_url, const struct link *l)
{
    char created[TIMEFMT_LEN], expires[TIMEFMT_LEN], valid[TIMEFMT_LEN], short_url[700];
    const struct link_attrs *a = &l->a;
    json_t *obj, *tags;

    timefmt_format(l->created_us / 1000000, created);
    timefmt_format(a->expires_at, expires);
    snprintf(short_url, sizeof(short_url), "%s/%s", base_url, l->key);
    obj = json_pack("{s:s, s:s, s:s, s:s, s:o}", "key", l->key, "short_url", short_url, "url",
                    l->url, "created_at", created, "expires_at",
                    a->expires_at ? json_string(expires) : json_null());
    if (!obj)
        return NULL;
    if (l->visits >= 0)
        json_object_set_new(obj, "visits", json_integer(l->visits));
    if (a->redirect_status)
        json_object_set_new(obj, "redirect_status", json_integer(a->redirect_status));
    if (a->max_visits)
        json_object_set_new(obj, "max_visits", json_integer(a->max_visits));
    if (a->valid_from) {
        timefmt_format(a->valid_from, valid);
        json_object_set_new(obj, "valid_from", json_string(valid));
    }
    if (a->ntags) {
        tags = json_array();
        for (int i = 0; tags && i < a->ntags; i++)
            json_array_append_new(tags, json_string(a->tags[i]));
        json_object_set_new(obj, "tags", tags);
    }
    if (a->public_stats)
        json_object_set_new(obj, "public_stats", json_true());
    if (a->password_protected)
        json_object_set_new(obj, "password_protected", json_true());
    return (struct json_t *)obj;
}

char *linkjson_format(const char *base_url, const struct link *l)
{
    json_t *obj = (json_t *)linkjson_object(base_url, l);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    return text;
}
