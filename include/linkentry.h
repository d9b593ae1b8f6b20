/* What Redis holds for each link: the entry "u:<key>", holding
 * "<expires_at> <valid_from> <max_visits> <redirect_status> <p|->\n<url>" (struct link_rules;
 * 0 for none, p for a password), "!" for a key known not to exist, or "~" for a link edited a
 * moment ago (read PostgreSQL, and do not fill). An entry of an older server,
 * "<expires_at>\n<url>", reads as a link with no other rules. The server reads through it;
 * shortenerctl cleanup drops the entries of the links it deletes.
 *
 * Every call is one round trip on the caller's connection and returns -EAGAIN when Redis is
 * unavailable (see redis.h). No entry outlives its link: a fill's ttl is bounded by the
 * caller. */
#ifndef SHORTENER_LINKENTRY_H
#define SHORTENER_LINKENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "keyspace.h"

struct redis;

/* The Redis key of a link's entry; a value fits in LINKENTRY_HEAD_MAX bytes plus its url.
 * Public for whatever else reads or writes entries as the server does (the benchmark's
 * ceiling, tests/bench/ceiling.c). */
#define LINKENTRY_KEY_FMT  "u:%s"
#define LINKENTRY_HEAD_MAX 96

enum { LINKENTRY_HIT = 0, LINKENTRY_NEGATIVE = 1, LINKENTRY_EDITED = 2 };

struct link_rules;

/* LINKENTRY_HIT with the URL copied into url (NUL-terminated, cap bytes at most) and its
 * rules, LINKENTRY_NEGATIVE, LINKENTRY_EDITED, -ENOENT on a miss (or an entry that is not
 * ours, or a URL longer than cap), -EAGAIN when Redis is unavailable. */
int linkentry_get(struct redis *r, const char *key, char *url, size_t cap,
                  struct link_rules *rules);

/* linkentry_get() of keys[0..n) in one round trip (MGET; n at most LINKENTRY_GET_MAX):
 * found(ctx, i, rc, url, rules) for each key in order, rc as linkentry_get()'s but -EAGAIN,
 * url (at most cap - 1 bytes) valid during the call only. Returns 0, -EAGAIN when Redis is
 * unavailable (found is not called), -EINVAL for too many keys, or -ENOMEM. */
#define LINKENTRY_GET_MAX 256
int linkentry_get_many(struct redis *r, const char *const *keys, size_t n, size_t cap,
                       void (*found)(void *ctx, size_t i, int rc, const char *url,
                                     const struct link_rules *rules),
                       void *ctx);

/* Writes the value of an entry for url under rules into out (cap bytes). Returns its length,
 * or -ENOSPC. */
int linkentry_format(const char *url, const struct link_rules *rules, char *out, size_t cap);

/* Parses an entry's value; the same results as linkentry_get() but -EAGAIN. */
int linkentry_parse(const char *value, size_t len, char *url, size_t cap, struct link_rules *rules);

/* Read-through fills. They never overwrite an entry (SET NX): a tombstone written by a delete
 * (or the mark of an edit) wins over a fill that raced with it. ttl in seconds, > 0. */
int linkentry_fill(struct redis *r, const char *key, const char *url,
                   const struct link_rules *rules, int64_t ttl);
int linkentry_fill_negative(struct redis *r, const char *key, int64_t ttl);

/* After a delete commits: replaces the entry with a negative one for ttl seconds, so that a
 * read-through fill which read the row before the delete cannot bring it back. */
int linkentry_tombstone(struct redis *r, const char *key, int64_t ttl);

/* After an edit commits: marks the entry "~" for ttl seconds (see above). */
int linkentry_mark_edited(struct redis *r, const char *key, int64_t ttl);

/* Drops key's entry (DEL). */
int linkentry_evict(struct redis *r, const char *key);

/* Drops the entries of keys[0..n) in one round trip (DEL commands of up to 1000 keys,
 * pipelined). -ENOMEM when out of memory. */
int linkentry_evict_many(struct redis *r, const char *const *keys, size_t n);

#endif
