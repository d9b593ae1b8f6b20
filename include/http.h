/* One HTTP request as the handlers see it, and the ways to answer it: JSON, problem+json
 * (RFC 9457), redirects. libmicrohttpd's types stay inside http.c and server.c. */
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
struct link_job;
struct admit_state;

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
    size_t received; /* body bytes seen, kept or not */
    bool body_too_large;
    bool answered;
    unsigned status;
    /* A create waiting for the link writer: owned here, freed when the request ends. */
    struct link_job *job;
    /* A create whose rate limit is being counted (api.c): freed when the request ends. */
    struct admit_state *admit;
    bool suspended;
    /* Set once the request was counted against a rate limit: every answer that follows,
     * whenever it is sent, carries RateLimit-Policy and RateLimit, and a 429 its
     * Retry-After. */
    bool ratelimited;
    struct ratelimit_policy rl_policy;
    struct ratelimit_result rl_result;
};

/* Parks the request: libmicrohttpd calls the handler again, with the same request, once
 * http_resume() is called on its connection, from any thread. */
void http_suspend(struct http_request *r);
void http_resume(struct MHD_Connection *conn);

/* A request header's value, or NULL. */
const char *http_header(struct http_request *r, const char *name);

/* The client's socket address, or NULL when libmicrohttpd does not know it. */
const struct sockaddr *http_peer(struct http_request *r);

/* Sends status with body (may be empty) and extra headers given as name, value pairs ending
 * with NULL. Returns 0, or -EIO when the response could not be queued (the connection is
 * then closed by libmicrohttpd). */
int http_send(struct http_request *r, unsigned status, const char *content_type, const char *body,
              size_t len, const char *const *headers);

/* Sends an application/problem+json error. type_slug names the problem kind (e.g.
 * "invalid-url"); 503 and 429 get a Retry-After (a refused rate limit's own for 429). */
int http_problem(struct http_request *r, unsigned status, const char *type_slug,
                 const char *detail_fmt, ...) __attribute__((format(printf, 4, 5)));

/* 405 with an Allow header. */
int http_method_not_allowed(struct http_request *r, const char *allow);

/* 301 to location, cacheable by browsers for max_age seconds (0: not at all). */
int http_redirect(struct http_request *r, const char *location, long long max_age);

/* 404 for a short link: a small HTML page when the client prefers HTML, problem+json
 * otherwise. */
int http_link_not_found(struct http_request *r);

#endif
