/* The body of a create or an edit (JSON or form), parsed and checked field by field: the
 * type and form of each field here, what it means (is the URL acceptable, is the alias
 * free) in the handler. */
#ifndef SHORTENER_REQUEST_H
#define SHORTENER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyspace.h"

#define REQUEST_MAX_BODY (64 * 1024)

#define REQUEST_TAGS_MAX     10
#define REQUEST_TAG_MAX_LEN  32
#define REQUEST_PASSWORD_MIN 8
#define REQUEST_PASSWORD_MAX 128

enum body_type { BODY_JSON, BODY_FORM, BODY_UNSUPPORTED };

/* The fields of a link a body may name (API.md, create and edit). */
enum request_field {
    FIELD_URL,
    FIELD_ALIAS,
    FIELD_EXPIRES_AT,
    FIELD_TTL,
    FIELD_REDIRECT_STATUS,
    FIELD_MAX_VISITS,
    FIELD_VALID_FROM,
    FIELD_PASSWORD,
    FIELD_TAGS,
    FIELD_PUBLIC_STATS,
    FIELD_COUNT
};

/* What a create names creates; what an edit names changes, and a field named as null (JSON)
 * is cleared (nulls). */
enum request_mode { REQUEST_CREATE, REQUEST_EDIT };

struct create_request {
    char *url; /* NULL when absent; never contains NUL */
    size_t url_len;
    char *alias; /* NULL when absent */
    bool has_expires_at;
    int64_t expires_at; /* seconds since the epoch */
    bool has_ttl;
    int64_t ttl; /* seconds, > 0 */
    bool has_redirect_status;
    int redirect_status; /* 301, 302, 307 or 308 */
    bool has_max_visits;
    int64_t max_visits; /* > 0 */
    bool has_valid_from;
    int64_t valid_from; /* seconds since the epoch */
    char *password;     /* NULL when absent; 8-128 characters; wiped when released */
    size_t password_len;
    bool has_tags; /* an empty array is present, with no tags */
    int ntags;
    char tags[REQUEST_TAGS_MAX][REQUEST_TAG_MAX_LEN + 1]; /* distinct */
    bool has_public_stats;
    bool public_stats;
    unsigned nulls; /* 1u << field for each field given as null */
};

struct json_t;

/* Maps a Content-Type header value (parameters such as charset allowed) to a body type. */
enum body_type request_body_type(const char *content_type);

/* Parses a create body. Returns 0, or -EINVAL with a sentence for the client in err (and
 * nothing left allocated). Fields in out are heap copies: create_request_release(). */
int request_parse_create(enum body_type type, const char *body, size_t len,
                         struct create_request *out, char *err, size_t errlen);

/* The same for one JSON object already parsed (an item of a bulk create, mode
 * REQUEST_CREATE). Unknown fields are ignored in a create; an edit (REQUEST_EDIT) refuses
 * them, refuses key and alias (a link's key never changes) and refuses an empty object. */
int request_parse_object(const struct json_t *obj, enum request_mode mode,
                         struct create_request *out, char *err, size_t errlen);

/* Parses the JSON body of an edit (PATCH): as request_parse_object in REQUEST_EDIT mode,
 * and url may not be null. */
int request_parse_edit(const char *body, size_t len, struct create_request *out, char *err,
                       size_t errlen);

void create_request_release(struct create_request *req);

/* Checks an alias: 3-64 of [0-9A-Za-z_-], not a reserved path (the rules of linkkey.h).
 * Returns 0 or -EINVAL with the reason in err. */
int request_check_alias(const char *alias, char *err, size_t errlen);

/* Works out when the link expires: the request's expires_at or ttl, else now + default_ttl,
 * or 0 (never) when default_ttl is 0. Returns 0 or -EINVAL (expiry not in the future,
 * too far away) with the reason in err. */
int request_resolve_expiry(const struct create_request *req, int64_t now, int64_t default_ttl,
                           int64_t *expires_at, char *err, size_t errlen);

/* True when s[0..len-1] is a valid tag: 1-32 of [0-9A-Za-z_-]. */
bool request_is_tag(const char *s, size_t len);

/* True when s[0..len-1] could be a link key (generated or alias) at all. */
bool request_is_key(const char *s, size_t len);

#endif
