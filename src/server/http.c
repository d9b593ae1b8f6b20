/* Building and queueing libmicrohttpd responses for the handlers. */
#include "http.h"

#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cors.h"
#include "log.h"
#include "pwform.h"
#include "server.h"
#include "web.h"

void http_suspend(struct http_request *r)
{
    r->suspended = true;
    MHD_suspend_connection(r->conn);
}

void http_resume(struct MHD_Connection *conn)
{
    MHD_resume_connection(conn);
}

const char *http_header(struct http_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

struct header_join {
    const char *name;
    char *buf;
    size_t cap, len;
    bool any, overflow;
};

static enum MHD_Result join_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct header_join *j = cls;
    (void)kind;
    if (strcasecmp(key, j->name) != 0 || !value)
        return MHD_YES;
    int n = snprintf(j->buf + j->len, j->cap - j->len, "%s%s", j->any ? ", " : "", value);
    if (n < 0 || (size_t)n >= j->cap - j->len) {
        j->overflow = true;
        return MHD_NO;
    }
    j->len += (size_t)n;
    j->any = true;
    return MHD_YES;
}

const char *http_header_all(struct http_request *r, const char *name, char *buf, size_t cap)
{
    struct header_join j = {.name = name, .buf = buf, .cap = cap};

    if (cap == 0)
        return NULL;
    buf[0] = '\0';
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, join_header, &j);
    return j.any && !j.overflow ? buf : NULL;
}

const char *http_query(struct http_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_query_n(struct http_request *r, const char *name, size_t *len)
{
    const char *value = NULL;
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &value,
                                      len) != MHD_YES)
        return NULL;
    return value;
}

struct query_count {
    const char *name;
    unsigned n;
};

static enum MHD_Result count_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct query_count *c = cls;
    (void)kind;
    (void)value;
    if (strcmp(key, c->name) == 0)
        c->n++;
    return MHD_YES;
}

unsigned http_query_count(struct http_request *r, const char *name)
{
    struct query_count c = {.name = name};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, count_query, &c);
    return c.n;
}

bool http_etag_listed(const char *list, const char *tag)
{
    size_t tag_len = strlen(tag);
    const char *p = list;

    while (*p) {
        p += strspn(p, " \t,");
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        size_t n = strcspn(p, " \t,");
        if (n == tag_len && memcmp(p, tag, n) == 0)
            return true;
        p += n;
    }
    return false;
}

bool http_not_modified(struct http_request *r, const char *etag)
{
    const char *inm = http_header(r, "If-None-Match");
    return inm && http_etag_listed(inm, etag);
}

/* Accept-Encoding names gzip with a q-value other than 0 (RFC 9110, 12.5.3). */
bool http_accepts_gzip(struct http_request *r)
{
    const char *p = http_header(r, "Accept-Encoding");

    while (p && *p) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, " \t,;");
        bool gzip = (n == 4 && strncasecmp(p, "gzip", 4) == 0) ||
                    (n == 6 && strncasecmp(p, "x-gzip", 6) == 0);
        p += n;
        p += strspn(p, " \t");
        bool zero = false;
        if (*p == ';') {
            size_t plen = strcspn(p, ",");
            const char *q = strstr(p, "q=");
            if (q && q < p + plen)
                zero = strtod(q + 2, NULL) == 0.0;
            p += plen;
        }
        if (gzip)
            return !zero;
    }
    return false;
}

int http_socket(struct http_request *r)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info ? info->connect_fd : -1;
}

bool http_stream_chunked(struct http_request *r)
{
    bool close = false;

    if (!r->version || strcasecmp(r->version, "HTTP/1.1") != 0)
        return false;
    /* 0.9.75 (Debian 12's) chunks every such body of an HTTP/1.1 request, even when the
     * client asked to close (measured); later versions send it bare then (their
     * build_header_response). */
    if (MHD_VERSION <= 0x00097500)
        return true;
    for (const char *p = http_header(r, "Connection"); p && *p;) {
        size_t n;
        p += strspn(p, " \t,");
        n = strcspn(p, " \t,");
        if (n == 5 && strncasecmp(p, "close", 5) == 0)
            close = true;
        p += n;
    }
    return !close;
}

const struct sockaddr *http_peer(struct http_request *r)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return info ? info->client_addr : NULL;
}

static enum MHD_Result add_ratelimit_headers(struct http_request *r, struct MHD_Response *resp)
{
    char policy[96], state[96];

    ratelimit_format_policy(&r->rl_policy, policy, sizeof(policy));
    ratelimit_format_state(&r->rl_result, state, sizeof(state));
    if (MHD_add_response_header(resp, "RateLimit-Policy", policy) != MHD_YES)
        return MHD_NO;
    return MHD_add_response_header(resp, "RateLimit", state);
}

static enum MHD_Result add_cors_headers(struct http_request *r, struct MHD_Response *resp)
{
    enum MHD_Result ok =
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->cors_origin);
    if (ok == MHD_YES)
        ok = MHD_add_response_header(resp, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
    /* An answer that names one origin differs by origin: shared caches must keep them apart. */
    if (ok == MHD_YES && strcmp(r->cors_origin, "*") != 0)
        ok = MHD_add_response_header(resp, "Vary", "Origin");
    return ok;
}

/* Adds the fields of every answer, then queues it; the response is released either way. */
static enum http_step queue(struct http_request *r, unsigned status, struct MHD_Response *resp,
                            const char *content_type, const char *const *headers)
{
    enum MHD_Result ok = MHD_YES;

    if (content_type)
        ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    for (size_t i = 0; ok == MHD_YES && headers && headers[i]; i += 2)
        ok = MHD_add_response_header(resp, headers[i], headers[i + 1]);
    if (ok == MHD_YES && r->ratelimited)
        ok = add_ratelimit_headers(r, resp);
    if (ok == MHD_YES && r->cors_origin)
        ok = add_cors_headers(r, resp);
    if (ok == MHD_YES)
        ok = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    if (ok != MHD_YES) {
        log_error("request %llu: cannot queue a %u response", (unsigned long long)r->id, status);
        return HTTP_BROKEN;
    }
    r->answered = true;
    r->status = status;
    return HTTP_ANSWERED;
}

enum http_step http_send(struct http_request *r, unsigned status, const char *content_type,
                         const char *body, size_t len, const char *const *headers)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    return resp ? queue(r, status, resp, content_type, headers) : HTTP_BROKEN;
}

enum http_step http_send_static(struct http_request *r, unsigned status, const char *content_type,
                                const void *body, size_t len, const char *const *headers)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT);
    return resp ? queue(r, status, resp, content_type, headers) : HTTP_BROKEN;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct http_stream *st = cls;
    long n = st->read(st, buf, max);
    (void)pos;
    return n == HTTP_STREAM_END ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void stream_release(void *cls)
{
    struct http_stream *st = cls;
    st->release(st);
}

/* libmicrohttpd hands the reader as much of the connection's pool as is free; this is only
 * the least it asks for. */
#define STREAM_BLOCK 1024

enum http_step http_send_stream(struct http_request *r, unsigned status, const char *content_type,
                                struct http_stream *st, const char *const *headers)
{
    struct MHD_Response *resp;

    st->conn = r->conn;
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, st,
                                             stream_release);
    if (!resp) {
        st->release(st);
        return HTTP_BROKEN;
    }
    return queue(r, status, resp, content_type, headers);
}

void http_stream_park(struct http_stream *st)
{
    MHD_suspend_connection(st->conn);
}

void http_stream_wake(struct http_stream *st)
{
    MHD_resume_connection(st->conn);
}

enum http_step http_send_json(struct http_request *r, unsigned status, char *text,
                              const char *const *headers)
{
    enum http_step step;

    if (!text)
        return http_problem(r, 500, "internal", "out of memory");
    step = http_send(r, status, "application/json", text, strlen(text), headers);
    free(text);
    return step;
}

enum http_step http_unavailable(struct http_request *r, const char *what)
{
    return http_problem(r, 503, "unavailable", "%s is unavailable; try again shortly", what);
}

static const char *reason(unsigned status)
{
    const char *p = MHD_get_reason_phrase_for(status);
    return p && *p ? p : "Error";
}

struct json_t *http_problem_object(unsigned status, const char *type_slug, const char *detail)
{
    char type[128];

    snprintf(type, sizeof(type), "https://shortener.invalid/problems/%s", type_slug);
    return (struct json_t *)json_pack("{s:s, s:s, s:i, s:s}", "type", type, "title", reason(status),
                                      "status", (int)status, "detail", detail);
}

/* The problem+json body of RFC 9457, sent with extra headers (name, value, ..., NULL). */
static enum http_step send_problem(struct http_request *r, unsigned status, const char *type_slug,
                                   const char *detail, const char *const *headers)
{
    json_t *obj = (json_t *)http_problem_object(status, type_slug, detail);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    enum http_step step;

    json_decref(obj);
    if (!text)
        return HTTP_BROKEN;
    step = http_send(r, status, "application/problem+json", text, strlen(text), headers);
    free(text);
    return step;
}

enum http_step http_problem(struct http_request *r, unsigned status, const char *type_slug,
                            const char *detail_fmt, ...)
{
    char detail[1024], seconds[24] = "1";
    const char *const retry[] = {"Retry-After", seconds, NULL};
    /* RFC 9110: a 401 says how to authenticate; an API key is a bearer token (RFC 6750). */
    static const char *const challenge[] = {"WWW-Authenticate", "Bearer", NULL};
    va_list ap;

    va_start(ap, detail_fmt);
    vsnprintf(detail, sizeof(detail), detail_fmt, ap);
    va_end(ap);
    if (status == 429 && r->ratelimited && !r->rl_result.allowed)
        snprintf(seconds, sizeof(seconds), "%lld", (long long)ratelimit_retry_after(&r->rl_result));
    return send_problem(r, status, type_slug, detail,
                        status == 503 || status == 429 ? retry
                        : status == 401                ? challenge
                                                       : NULL);
}

enum http_step http_method_not_allowed(struct http_request *r, const char *allow)
{
    const char *headers[] = {"Allow", allow, NULL};
    char detail[128];

    snprintf(detail, sizeof(detail), "%s is not allowed here; allowed: %s", r->method, allow);
    return send_problem(r, 405, "method-not-allowed", detail, headers);
}

enum http_step http_redirect(struct http_request *r, unsigned status, const char *location,
                             long long max_age)
{
    char cache_control[64];
    if (max_age > 0)
        snprintf(cache_control, sizeof(cache_control), "private, max-age=%lld", max_age);
    else
        snprintf(cache_control, sizeof(cache_control), "no-store");
    const char *headers[] = {"Location", location, "Cache-Control", cache_control, NULL};
    return http_send(r, status, NULL, "", 0, headers);
}

/* The page a browser gets when a short link it followed cannot take it anywhere: the heading
 * and text (plain, no markup) say why. retry_after: a Retry-After value, or NULL. Never kept
 * by a cache, and varying by Accept, as the other answer is the problem. HTTP_GO_ON when the
 * client does not take HTML or the page could not be made: the caller sends the problem. */
static enum http_step link_page(struct http_request *r, unsigned status, const char *heading,
                                const char *text, const char *retry_after)
{
    const char *accept = http_header(r, "Accept");
    const char *headers[PWFORM_HTML_FIELDS * 2 + 5] = {"Vary", "Accept"};
    size_t n = 2 + PWFORM_HTML_FIELDS * 2;
    char page[1024];

    if (!accept || !strstr(accept, "text/html"))
        return HTTP_GO_ON;
    int len = snprintf(
        page, sizeof(page),
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta name=\"color-scheme\" content=\"light dark\">"
        "<title>%s</title><link rel=\"icon\" href=\"data:,\">"
        "<link rel=\"stylesheet\" href=\"%s\"></head>\n<body class=\"plain\">"
        "<header class=\"top\"><a class=\"brand\" href=\"/\">shortener</a></header>"
        "<main><section class=\"card\"><h1>%s</h1>\n"
        "<p>%s</p><p><a href=\"/\">Make a short link</a></p></section></main></body></html>\n",
        heading, web_css_href, heading, text);

    if (len < 0 || (size_t)len >= sizeof(page))
        return HTTP_GO_ON;
    memcpy(headers + 2, pwform_html_headers, sizeof(pwform_html_headers));
    if (retry_after) {
        headers[n++] = "Retry-After";
        headers[n++] = retry_after;
    }
    headers[n] = NULL;
    return http_send(r, status, "text/html; charset=utf-8", page, (size_t)len, headers);
}

/* The page for browsers, the problem for everyone else: either answer depends on Accept, and
 * neither may be kept, as the key may be made (an alias) a moment later. */
enum http_step http_link_not_found(struct http_request *r)
{
    static const char *const json_headers[] = {"Cache-Control", "no-store", "Vary", "Accept", NULL};
    enum http_step step =
        link_page(r, 404, "Link not found",
                  "This short link does not exist, has expired or was deleted.", NULL);

    return step != HTTP_GO_ON
               ? step
               : send_problem(r, 404, "not-found", "no link with this key", json_headers);
}

enum http_step http_link_unavailable(struct http_request *r, const char *what)
{
    enum http_step step =
        link_page(r, 503, "Try again in a moment",
                  "This short link cannot be followed just now. Please try again shortly.", "1");

    return step != HTTP_GO_ON ? step : http_unavailable(r, what);
}

enum http_step http_link_limited(struct http_request *r)
{
    long long retry = (long long)ratelimit_retry_after(&r->rl_result);
    char seconds[24], text[160];

    snprintf(seconds, sizeof(seconds), "%lld", retry);
    snprintf(text, sizeof(text),
             "This address has asked for too many links that do not exist. Please try again in "
             "%lld s.",
             retry);
    enum http_step step = link_page(r, 429, "Too many requests", text, seconds);
    return step != HTTP_GO_ON
               ? step
               : http_problem(r, 429, "rate-limited",
                              "too many look-ups of links that do not exist from this address; "
                              "retry in %lld s",
                              retry);
}
