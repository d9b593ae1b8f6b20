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

/* A request header's value, or NULL. */
const char *http_header(struct http_request *r, const char *name);

/* Every line of a header that may come several times (X-Forwarded-For), joined with ", " in
 * the order they came, as one line would list them; NULL when there is none, or when they do
 * not fit in cap bytes (too long to be a header we believe). */
const char *http_header_all(struct http_request *r, const char *name, char *buf, size_t cap);

/* A query parameter's value (percent-decoded), or NULL; "" for "?name" without a value. */
const char *http_query(struct http_request *r, const char *name);

/* The client's socket address, or NULL when libmicrohttpd does not know it. */
const struct sockaddr *http_peer(struct http_request *r);

/* Sends status with body (may be empty) and extra headers given as name, value pairs ending
 * with NULL. Returns HTTP_ANSWERED, or HTTP_BROKEN when the response could not be queued
 * (the connection is then closed by libmicrohttpd). The http_* answers below return the
 * same. */
enum http_step http_send(struct http_request *r, unsigned status, const char *content_type,
                         const char *body, size_t len, const char *const *headers);

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

#endif
