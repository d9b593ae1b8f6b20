/* PostgreSQL, the source of truth: links, API keys and visit counts. One struct store is one
 * connection with its prepared statements, used by one thread at a time. It reconnects by
 * itself, at most once a second while PostgreSQL is down.
 *
 * Every function returns 0 on success or:
 *   -ENOENT  no such (live) row
 *   -EEXIST  the key is taken, now or ever before
 *   -EAGAIN  PostgreSQL is unreachable: answer 503
 *   -EIO     the statement failed otherwise (logged) */
#ifndef SHORTENER_STORE_H
#define SHORTENER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apikey.h"

struct store;

/* Connects lazily: creating a store never fails for want of a database. */
struct store *store_new(const char *conninfo, const char *application_name);
void store_free(struct store *st);

/* The last error, for logs and readiness detail. */
const char *store_error(const struct store *st);

int store_ping(struct store *st);

/* The statement behind store_lookup_redirect(): $1 the key; one row for a live link, with
 * its url, its expiry in seconds since the epoch (0: never) and its whole seconds of life
 * left (-1: never). Here rather than in store.c so that the benchmark's ceiling
 * (tests/bench/ceiling.c) makes PostgreSQL do exactly the work a redirect does. */
#define STORE_LOOKUP_REDIRECT_SQL                                                                  \
    "SELECT url, COALESCE(floor(extract(epoch FROM expires_at))::bigint, 0),"                      \
    " COALESCE(floor(extract(epoch FROM expires_at - now()))::bigint, -1)"                         \
    " FROM urls WHERE key = $1 AND (expires_at IS NULL OR expires_at > now())"

/* The live link under key. *url is heap-allocated (free()); *expires_at is seconds since
 * the epoch, or 0 when it never expires; *remaining is whole seconds of life left
 * (by the database's clock), or -1 when it never expires. */
int store_lookup_redirect(struct store *st, const char *key, char **url, int64_t *expires_at,
                          int64_t *remaining);

struct link {
    char *url; /* heap-allocated: link_release() */
    int64_t created_at;
    int64_t expires_at; /* 0: never */
    int64_t visits;
};

void link_release(struct link *l);

struct link_insert {
    const char *key;
    const char *url;
    int64_t owner;      /* 0: anonymous */
    int64_t expires_at; /* 0: never */
    int rc;             /* out: 0, or -EEXIST when the key was ever given to a link */
    int64_t created_at; /* out, when rc is 0 */
};

/* Inserts links[0..n) in one statement and so one commit, durable (synchronous_commit on)
 * when this returns 0; each link's own outcome is in its rc. Returns -EAGAIN, -EIO or
 * -ENOMEM when the statement failed as a whole (then no link was stored, unless the
 * connection broke after the commit). */
int store_insert_links(struct store *st, struct link_insert *links, size_t n);

/* The live link under key if owner (0: any owner) owns it. */
int store_get_link(struct store *st, const char *key, int64_t owner, struct link *out);

/* Deletes the link under key if owner (0: any owner) owns it and it is live. Committed
 * when this returns 0. */
int store_delete_link(struct store *st, const char *key, int64_t owner);

struct apikey_info {
    int64_t id;
    int rate_limit;
    int rate_window;
    int burst;
    bool is_admin; /* may read and delete any link */
};

/* Finds the unrevoked API key with this hash, compared in constant time, and records its
 * use (at most once a minute). -ENOENT when unknown or revoked. */
int store_authenticate(struct store *st, const unsigned char hash[APIKEY_HASH_LEN],
                       struct apikey_info *out);

/* Adds counts[i] visits to keys[i] for i < n, in one statement. */
int store_add_visits(struct store *st, const char *const *keys, const int64_t *counts, size_t n);

#endif
