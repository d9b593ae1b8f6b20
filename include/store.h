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
#include "apikey_store.h"
#include "link.h"
#include "visitsql.h"

struct store;

/* Connects lazily: creating a store never fails for want of a database. */
struct store *store_new(const char *conninfo, const char *application_name);

/* A store on a read replica (DATABASE_READ_URL): only store_ping() and store_lookup_replica()
 * may be called on it. */
struct store *store_new_replica(const char *conninfo, const char *application_name);
void store_free(struct store *st);

/* The last error, for logs and readiness detail. */
const char *store_error(const struct store *st);

int store_ping(struct store *st);

/* The redirect lookup: what a redirect needs of a live link. In the header so that the
 * benchmark's ceiling program (tests/bench/ceiling.c) runs exactly what the server runs. */
#define STORE_LOOKUP_REDIRECT_SQL                                                                  \
    "SELECT url, COALESCE(floor(extract(epoch FROM expires_at))::bigint, 0),"                      \
    " COALESCE(floor(extract(epoch FROM expires_at - now()))::bigint, -1),"                        \
    " COALESCE(floor(extract(epoch FROM valid_from))::bigint, 0), COALESCE(max_visits, 0),"        \
    " COALESCE(redirect_status, 0), password_hash IS NOT NULL, " VISITSQL_LIMITED_VISITS           \
    " FROM urls WHERE key = $1 AND (expires_at IS NULL OR expires_at > now())"

/* What a redirect needs of a live link. */
struct redirect_row {
    char *url;         /* heap-allocated (free()) */
    int64_t remaining; /* whole seconds of life left by the database's clock; -1: never ends */
    int64_t visits;    /* as written so far (the durable count) */
    struct link_attrs a;
};

/* The live link under key (valid_from not judged: callers judge it by their clock, as every
 * cache tier does). */
int store_lookup_redirect(struct store *st, const char *key, struct redirect_row *out);

/* The same on a replica store, with the replica's replay age in *age_ms: how long ago (by
 * the replica's clock) the last transaction it replayed committed, -1 when unknown, 0 when
 * the server is no replica. A row found on a replica may be one the primary has since
 * changed or deleted: the caller decides whether the age makes it trustworthy. */
int store_lookup_replica(struct store *st, const char *key, struct redirect_row *out,
                         int64_t *age_ms);

struct link_insert {
    const char *key;
    const char *url;
    int64_t owner; /* 0: anonymous */
    const struct link_attrs *a;
    const char *password_hash; /* NULL: none */
    int64_t created_us;        /* when the link is made, by the server's clock */
    /* An idempotent create: its reserved key (see store_reserve_idempotency) and the answer
     * to record with the link; NULL for others. */
    const char *idem_key;
    const char *idem_response;
    int rc; /* out: 0, or -EEXIST when the key was ever given to a link */
};

/* Inserts links[0..n) in one statement and so one commit, durable (synchronous_commit on)
 * when this returns 0; each link's own outcome is in its rc. Returns -EAGAIN, -EIO or
 * -ENOMEM when the statement failed as a whole (then no link was stored, unless the
 * connection broke after the commit). */
int store_insert_links(struct store *st, struct link_insert *links, size_t n);

/* The live link under key if owner (0: any owner) owns it. */
int store_get_link(struct store *st, const char *key, int64_t owner, struct link *out);

/* The password hash of the live link under key (heap-allocated), or -ENOENT when it has
 * none or is not live. */
int store_password_hash(struct store *st, const char *key, char **hash);

/* One page of the list: owner's live links, newest first, after the position (after_us,
 * after_key) when after_key is not NULL; only those tagged tag and those whose key or URL
 * contains q (case-insensitively), when given. Fills out[0..*n) with at most limit links
 * (link_release each). */
int store_list_links(struct store *st, int64_t owner, const char *tag, const char *q,
                     int64_t after_us, const char *after_key, size_t limit, struct link *out,
                     size_t *n);

/* An edit: for each field whose bit (1u << enum request_field) is in change, its new value
 * from a (or url, password_hash); a field in change with the zero value clears it. */
struct link_edit {
    unsigned change;
    const char *url;
    const char *password_hash;
    struct link_attrs a;
};

/* Applies edit to the live link under key if owner (0: any owner) owns it, committed when
 * this returns 0, and fills out with the link as it is now. -ENOENT when there is no such
 * link, -EINVAL when the result would never be valid (valid_from not before expires_at). */
int store_update_link(struct store *st, const char *key, int64_t owner,
                      const struct link_edit *edit, struct link *out);

/* Deletes the link under key if owner (0: any owner) owns it and it is live. Committed
 * when this returns 0. */
int store_delete_link(struct store *st, const char *key, int64_t owner);

/* An idempotency key as found by store_reserve_idempotency(). */
struct idempotency_record {
    unsigned char body_hash[32];
    int status;     /* 0: in flight, else the answer's status */
    char *response; /* heap-allocated, NULL while in flight */
    char link_key[KEY_MAX_LEN + 1];
};

/* Reserves (owner, key) for a create whose body hashes to body_hash: 0 when reserved (also
 * when a reservation older than a minute, left by a server that died, was taken over);
 * -EEXIST with the record found in out (free out->response) when another create has it. */
int store_reserve_idempotency(struct store *st, int64_t owner, const char *key,
                              const unsigned char body_hash[32], struct idempotency_record *out);

/* Removes a reservation that never got its link (a create that failed). */
int store_release_idempotency(struct store *st, int64_t owner, const char *key);

/* Finds the unrevoked API key with this hash, compared in constant time, and records its
 * use (at most once a minute), through apikey_store on this store's connection. -ENOENT
 * when unknown or revoked. */
int store_authenticate(struct store *st, const unsigned char hash[APIKEY_HASH_LEN],
                       struct apikey_info *out);

/* The keys of links deleted or edited in the last seconds (by the database's clock), in the
 * order of the changes, after the change numbered *after (0: from the first), at most limit
 * into keys[0..*n); *after becomes the number of the last one, for the next call. A key
 * changed twice comes twice. */
int store_changes(struct store *st, double seconds, int64_t *after, size_t limit,
                  char (*keys)[KEY_MAX_LEN + 1], size_t *n);

/* Adds counts[i] visits to keys[i] for i < n, in one statement. The keys must be distinct;
 * the rows are locked in key order whatever order they come in. */
int store_add_visits(struct store *st, const char *const *keys, const int64_t *counts, size_t n);

#define STATS_DIMS 6 /* DIM_BOT .. DIM_DEVICE (analytics.h) */

/* What joins a profile's values, as visit_recent keeps them (0016_stats_profile_text.sql):
 * chr(31), which sorts below every character a value holds. */
#define STATS_PROFILE_SEP '\x1f'

/* One sum of visit analytics: visits to key in the UTC hour starting at hour (epoch seconds)
 * by visitors of one profile: the values of dimensions DIM_BOT .. DIM_DEVICE (enum
 * analytics_dim), in that order, joined by STATS_PROFILE_SEP (none of them holds it). */
struct stats_row {
    const char *key;
    int64_t hour;
    const char *profile;
    int64_t visits;
    int64_t uncounted; /* of those, the visits not counted into urls.visits elsewhere */
};

/* Adds rows[0..n) to the recent sums per profile in one statement. The rows must be distinct
 * (key, hour, profile). */
int store_add_stats(struct store *st, const struct stats_row *rows, size_t n);

/* Moves at most limit recent rows of hours before before (epoch seconds), of keys from from
 * on, taken in key order, into the hourly, daily and block sums per dimension value, and
 * their uncounted visits into urls.visits, in one statement; *rolled says how many it took
 * (fewer than limit: none is left from from on, but for rows a flush held just then). from
 * holds KEY_MAX_LEN + 1 bytes ("" to start) and becomes the last key taken, where the next
 * statement goes on (the rest of that key's rows, if the limit cut them). *busy: another
 * server was rolling just then, and this statement took nothing. */
int store_roll_stats(struct store *st, int64_t before, size_t limit, char *from, size_t *rolled,
                     bool *busy);

/* Visits to a key that does not exist, on a day counted since 1970-01-01. */
struct unknown_row {
    int64_t day;
    const char *key;
    int64_t visits;
};

/* Adds day_visits[i] to day days[i]'s total of visits to unknown keys, and keys' visits to
 * their own rows (bounded per day, see migrations/0007_visit_stats.sql), in one statement. */
int store_add_unknown(struct store *st, const int64_t *days, const int64_t *day_visits,
                      size_t ndays, const struct unknown_row *keys, size_t nkeys);

/* The owner (0: anonymous) and public_stats of the live link under key. */
int store_stats_link(struct store *st, const char *key, int64_t *owner, bool *public_stats);

#define STATS_TOP_MAX  10
#define STATS_NAME_MAX 253

struct stats_top {
    size_t n;
    char name[STATS_TOP_MAX][STATS_NAME_MAX + 1];
    int64_t visits[STATS_TOP_MAX]; /* largest first */
};

struct stats_point {
    int64_t t; /* the start of an hour or a day, whichever row it came from */
    int64_t visits;
};

struct stats_result {
    struct stats_top top[STATS_DIMS]; /* by dimension - 1 */
    struct stats_point *points;       /* heap: free() */
    size_t npoints;
};

/* A link's stats: range holds the first hour, the last hour, the first whole day, the end of
 * the whole days, the first whole block and the end of the whole blocks (statsquery.h) for the
 * top lists; series_range the first four for the series. Fills out (free out->points) in two
 * statements. */
int store_stats(struct store *st, const char *key, const int64_t range[6],
                const int64_t series_range[4], struct stats_result *out);

#endif
