/* One HTTP request as the handlers see it, and the ways to answer it: JSON, problem+json
 * (RFC 9457), redirects. libmicrohttpd's types stay inside http.c and server.c.
 *
 * Every step of handling a request (a handler, an admission check, a send) says what it did
 * with one enum http_step: it answered (or parked the request to answer later), it sent
 * nothing and the caller goes on, or no answer could be queued at all. */
#ifndef SHORTENER_HTTP_H
#define SHORTENER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ratelimit.h"

struct MHD_Connection;
struct sockaddr;
struct server;
struct worker;

enum http_step {
    HTTP_BROKEN = -1, /* no answer could be queued: libmicrohttpd drops the connection */
    HTTP_GO_ON = 0,   /* nothing was sent: the caller goes on with the request */
    HTTP_ANSWERED = 1 /* an answer is queued, or the request is parked and will get one */
};

struct http_request {
    struct server *srv;
    struct worker *worker;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    const char *version; /* "HTTP/1.1", say */
    uint64_t id;
    /* The body, collected across calls; NUL-terminated. */
    char *body;
    size_t body_len, body_cap;
    size_t received;   /* body bytes seen, kept or not */
    size_t body_limit; /* the largest body this path takes */
    bool body_too_large;
    bool answered;
    unsigned status;
    /* What a handler keeps across calls of a parked request (a create, say), and how to
     * free it: owned by the request, freed with it when libmicrohttpd is done. */
    void *state;
    void (*state_free)(void *state);
    bool suspended;
    /* Access-Control-Allow-Origin for this answer (cors.h), or NULL: set for API paths when
     * the caller's Origin may use the API. */
    const char *cors_origin;
    /* Set once the request was counted against a rate limit: every answer that follows,
     * whenever it is sent, carries RateLimit-Policy and RateLimit, and a 429 its
     * Retry-After. */
    bool ratelimited;
    struct ratelimit_policy rl_policy;
    struct ratelimit_result rl_result;
    /* Where a redirect was answered, for the duration histograms (enum latency_tier). */
    unsigned char redirect_tier;
};

/* Parks the request: libmicrohttpd calls the handler again, with the same request, once
 * http_resume() is called on its connection, from any thread. */
void http_suspend(struct http_request *r);
void http_resume(struct MHD_Connection *conn);

/* A response written bit by bit (server-sent events): embedded in the object that writes it,
 * which gets back to itself with container_of. read fills buf with up to max bytes and returns
 * how many, HTTP_STREAM_END to end the response, or 0 after http_stream_park() when it has
 * nothing to say yet. release runs once libmicrohttpd is done with the response (the client
 * went, or the server stops), on one of its threads; after it, nothing may touch the stream. */
#define HTTP_STREAM_END (-1)
struct http_stream {
    long (*read)(struct http_stream *st, char *buf, size_t max);
    void (*release)(struct http_stream *st);
    struct MHD_Connection *conn; /* set by http_send_stream */
};

/* Answers status with a stream of content_type (and headers as for http_send). From here on
 * st belongs to the response: even when this fails, st->release has been called. The
 * connection keeps the daemon's timeout; a parked (suspended) one has none, so a streamer
 * that parks must drop stalled clients itself. */
enum http_step http_send_stream(struct http_request *r, unsigned status, const char *content_type,
                                struct http_stream *st, const char *const *headers);

/* Parks the stream's connection until http_stream_wake(). Only from within st->read, which
 * then returns 0. */
void http_stream_park(struct http_stream *st);

/* Resumes a parked stream, from any thread: st->read is called again. Exactly once per park. */
void http_stream_wake(struct http_stream *st);

/* A request header's value, or NULL. */
const char *http_header(struct http_request *r, const char *name);

/* Every line of a header that may come several times (X-Forwarded-For), joined with ", " in
 * the order they came, as one line would list them; NULL when there is none, or when they do
 * not fit in cap bytes (too long to be a header we believe). */
const char *http_header_all(struct http_request *r, const char *name, char *buf, size_t cap);

/* A query parameter's value (percent-decoded), or NULL; "" for "?name" without a value. */
const char *http_query(struct http_request *r, const char *name);

/* The same with its length in *len: a value decoded from "%00" holds NUL bytes. */
const char *http_query_n(struct http_request *r, const char *name, size_t *len);

/* How many times query parameter name was given. */
unsigned http_query_count(struct http_request *r, const char *name);

/* True when an If-None-Match value names tag: "*", or a list of entity tags of which one
 * matches it by the weak comparison of RFC 9110 (a W/ prefix is ignored). */
bool http_etag_listed(const char *list, const char *tag);

/* The request's If-None-Match names etag: the answer is 304. */
bool http_not_modified(struct http_request *r, const char *etag);

/* The client takes gzip-coded bodies (Accept-Encoding). */
bool http_accepts_gzip(struct http_request *r);

/* The connection's socket (libmicrohttpd's: never close it), or -1. */
int http_socket(struct http_request *r);

/* Whether libmicrohttpd frames a body of unknown length in chunks (an HTTP/1.1 client that
 * did not ask to close the connection) rather than sending it bare and closing. */
bool http_stream_chunked(struct http_request *r);

/* The client's socket address, or NULL when libmicrohttpd does not know it. */
const struct sockaddr *http_peer(struct http_request *r);

/* Sends status with body (may be empty) and extra headers given as name, value pairs ending
 * with NULL. Returns HTTP_ANSWERED, or HTTP_BROKEN when the response could not be queued
 * (the connection is then closed by libmicrohttpd). The http_* answers below return the
 * same. */
enum http_step http_send(struct http_request *r, unsigned status, const char *content_type,
                         const char *body, size_t len, const char *const *headers);

/* The same for a body that lives as long as the program (compiled in): sent without a copy. */
enum http_step http_send_static(struct http_request *r, unsigned status, const char *content_type,
                                const void *body, size_t len, const char *const *headers);

/* 503 naming what is unavailable, with a Retry-After. */
enum http_step http_unavailable(struct http_request *r, const char *what);

/* application/json, taking text (heap-allocated; freed here); NULL text is out of memory. */
enum http_step http_send_json(struct http_request *r, unsigned status, char *text,
                              const char *const *headers);

struct json_t;

/* The problem object of RFC 9457 ({"type","title","status","detail"}), for answers that carry
 * several (a bulk create's items). NULL when out of memory; json_decref() it. */
struct json_t *http_problem_object(unsigned status, const char *type_slug, const char *detail);

/* Sends an application/problem+json error. type_slug names the problem kind (e.g.
 * "invalid-url"); 503 and 429 get a Retry-After (a refused rate limit's own for 429). */
enum http_step http_problem(struct http_request *r, unsigned status, const char *type_slug,
                            const char *detail_fmt, ...) __attribute__((format(printf, 4, 5)));

/* 405 with an Allow header. */
enum http_step http_method_not_allowed(struct http_request *r, const char *allow);

/* A redirect (301, 302, 307 or 308) to location, cacheable by browsers for max_age seconds
 * (0: not at all, no-store). */
enum http_step http_redirect(struct http_request *r, unsigned status, const char *location,
                             long long max_age);

/* 404 for a short link: a small HTML page when the client prefers HTML, problem+json
 * otherwise. */
enum http_step http_link_not_found(struct http_request *r);

/* A short link that cannot be followed now (what: as http_unavailable()), or refused because
 * the caller's address looked up too many unknown keys (r->rl_result holds the limit's state,
 * which says when to come back): a page for browsers, the problem for everyone else, as
 * above. */
enum http_step http_link_unavailable(struct http_request *r, const char *what);
enum http_step http_link_limited(struct http_request *r);

#endif
