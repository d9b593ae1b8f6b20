/* A short link as the server keeps and shows it: its key, target and the attributes a caller
 * may set (API.md, create fields). The same struct travels from the request to the link
 * writer, out of PostgreSQL and into the JSON answers. */
#ifndef SHORTENER_LINK_H
#define SHORTENER_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include "keyspace.h"

#define LINK_TAGS_MAX    10
#define LINK_TAG_MAX_LEN 32

/* What a redirect applies: every cache tier keeps this much of a link. */
struct link_rules {
    int64_t expires_at;  /* seconds since the epoch; 0: never */
    int64_t valid_from;  /* 0: from the start */
    int64_t max_visits;  /* 0: no limit */
    int redirect_status; /* 0: the server's DEFAULT_REDIRECT_STATUS */
    bool password;       /* opens only with its password */
};

struct link_attrs {
    int64_t expires_at;      /* seconds since the epoch; 0: never */
    int64_t valid_from;      /* 0: from the start */
    int64_t max_visits;      /* 0: no limit */
    int redirect_status;     /* 301, 302, 307, 308; 0: the server's DEFAULT_REDIRECT_STATUS */
    bool public_stats;       /* anyone may read its stats and live counter */
    bool password_protected; /* a password hash is stored (the hash itself is not here) */
    int ntags;
    char tags[LINK_TAGS_MAX][LINK_TAG_MAX_LEN + 1];
};

struct link {
    char key[KEY_MAX_LEN + 1];
    char *url;          /* heap-allocated: link_release() */
    int64_t created_us; /* microseconds since the epoch: the list's order */
    int64_t visits;     /* < 0: not known (left out of the JSON) */
    struct link_attrs a;
};

void link_release(struct link *l);

/* The rules of a link with attributes a. */
static inline struct link_rules link_rules_of(const struct link_attrs *a)
{
    return (struct link_rules){.expires_at = a->expires_at,
                               .valid_from = a->valid_from,
                               .max_visits = a->max_visits,
                               .redirect_status = a->redirect_status,
                               .password = a->password_protected};
}

/* A link whose every click may be answered from memory: the hot cache holds only these.
 * now is rounded up, so valid_from must be a whole second behind it. */
static inline bool link_rules_plain(const struct link_rules *ru, int64_t now)
{
    return !ru->max_visits && !ru->password && ru->valid_from < now;
}

#endif
