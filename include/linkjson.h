/* A link as the API shows it: the JSON object that create, read and list return. */
#ifndef SHORTENER_LINKJSON_H
#define SHORTENER_LINKJSON_H

struct link;
struct json_t;

/* {"key","short_url","url","created_at","expires_at"} and every optional field that is set
 * (API.md: redirect_status, max_visits, valid_from, tags, public_stats, password_protected),
 * and "visits" unless it is < 0. expires_at 0 is null (never). NULL when out of memory;
 * json_decref() it. */
struct json_t *linkjson_object(const char *base_url, const struct link *l);

/* The same as compact JSON text that the caller frees, or NULL. */
char *linkjson_format(const char *base_url, const struct link *l);

#endif
