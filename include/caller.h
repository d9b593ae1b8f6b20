/* Who is calling and may they: the API key (Authorization: Bearer or X-API-Key), anonymous
 * callers where allowed, and the caller's rate limit. Every answer sent after a request was
 * counted carries the RateLimit fields (the result lives on the request).
 *
 * Every failed authentication costs the client's address from its AUTH_FAILURE_RATE budget,
 * and an address that has spent it gets 429 instead of 401 for further failures; a key that
 * works is never charged nor refused for it (many clients may share one address). A key
 * confirmed in the last AUTHCACHE_TTL_MS is taken from the cache, unless the revocation
 * count that comes back with its rate limit has moved since: then it is looked up again,
 * which makes revocation immediate while Redis answers.
 *
 * A read or delete is admitted in one call (caller_admit). A create is admitted in two
 * halves around the admission thread, which counts parked creates in groups: caller_begin
 * before parking, caller_counted once the count is known. */
#ifndef SHORTENER_CALLER_H
#define SHORTENER_CALLER_H

#include <stdbool.h>
#include <stdint.h>

#include "admission.h"
#include "apikey.h"
#include "http.h"
#include "store.h"

struct caller {
    /* The count to make: its key ("k:<id>") and policy; the admission thread fills in its
     * result. */
    struct admission_job count;
    unsigned char hash[APIKEY_HASH_LEN];
    bool cached;    /* the key came from the authentication cache */
    bool uncounted; /* caller_begin left the count to be made */
    int64_t revocations;
    struct apikey_info key; /* id 0: anonymous */
};

/* Whether the request carries credentials at all (Authorization or X-API-Key): where anyone
 * may read (public stats), a caller that sends some is still authenticated and counted. */
bool caller_sent_credentials(struct http_request *r);

/* Before the body of a request that needs a key is read: 401 (or 429 once the address has
 * spent its failed-authentication budget) when the request carries no credentials or
 * credentials that cannot be a key, so that nobody without a key can make the server hold
 * a body. HTTP_GO_ON otherwise: the key is looked up once the body is there. */
enum http_step caller_refuse_early(struct http_request *r, bool anonymous_ok);

/* For an answer that refuses the request before it is counted (a body over the limit): the
 * caller authenticated as caller_begin() does (401, or 429 for an anonymous caller over its
 * limit), and for a key the state of its limit attached to r without spending any of it, so
 * that the answer carries the RateLimit fields. HTTP_GO_ON when the refusal may follow. */
enum http_step caller_peek(struct http_request *r, bool anonymous_ok);

/* After caller_begin(), for a refusal that costs nothing: attaches the state of the key's
 * limit to r, unspent, so that the answer carries the RateLimit fields. */
void caller_show_unspent(struct http_request *r, const struct caller *c);

/* The first half: everything up to counting the request against its key's limit. Returns
 * HTTP_GO_ON with c filled in — c->uncounted tells whether the count is still to be made
 * (caller_count_here() or the admission thread, then caller_counted()) — or HTTP_ANSWERED
 * (or HTTP_BROKEN) once a refusal (401, 429, 503) was sent. Anonymous callers are admitted
 * when anonymous_ok. */
enum http_step caller_begin(struct http_request *r, bool anonymous_ok, struct caller *c);

/* Makes the count of caller_begin on this thread, into c->count.result. */
void caller_count_here(struct http_request *r, struct caller *c);

/* The second half, with c->count.result known: re-checks a cached key when a revocation
 * happened meanwhile, caches a confirmed one, refuses over the limit. HTTP_GO_ON when
 * admitted. */
enum http_step caller_counted(struct http_request *r, struct caller *c);

/* True when a count made on the admission thread needs nothing more of caller_counted than
 * applying it: admitted, with a key confirmed recently and no revocation since. */
bool caller_count_settled(const struct caller *c);

/* Both halves at once, on this thread (reads and deletes). HTTP_GO_ON with c->key set when
 * admitted. */
enum http_step caller_admit(struct http_request *r, bool anonymous_ok, struct caller *c);

/* Counts n requests at once, all or none (a bulk create), on this thread, then as
 * caller_counted(); n over the key's burst is refused with a detail naming the burst. */
enum http_step caller_count_all_here(struct http_request *r, struct caller *c, int64_t n);

/* The limit key of the client's address (trusted proxies' X-Forwarded-For considered, see
 * clientip.h): prefix, then suffix and ':' when suffix is not NULL, then the address. */
void caller_client_key(struct http_request *r, const char *prefix, const char *suffix, char *out,
                       size_t cap);

/* The client's address as the limits above see it (clientip_resolve_addr), X-Forwarded-For
 * read only when the peer is a trusted proxy. Returns 0 or -1 (no IP peer). */
int caller_client_addr(struct http_request *r, unsigned char addr[16]);

/* True when the request comes from one of TRUSTED_PROXIES itself, not from a client behind it. */
bool caller_is_proxy(struct http_request *r);

/* The owner whose links a key may see: its own, or anybody's (0) for an admin key. */
int64_t caller_owner_filter(const struct caller *c);

#endif
