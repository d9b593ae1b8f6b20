/* The web page and its files, from memory (see web.h). */
#include "web.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "metrics.h"
#include "request.h"
#include "server.h"
#include "store.h"

/* A page is revalidated each time (it is small, and names the versions of its files); a file
 * asked for with its current version never changes. */
#define PAGE_CACHE      "no-cache"
#define IMMUTABLE_CACHE "public, max-age=31536000, immutable"

/* The file served at path. */
static const struct web_asset *find_path(const char *path)
{
    for (size_t i = 0; i < web_nassets; i++)
        if (web_assets[i].path[0] && strcmp(web_assets[i].path, path) == 0)
            return &web_assets[i];
    return NULL;
}

/* The file named name in web/. */
static const struct web_asset *find_name(const char *name)
{
    for (size_t i = 0; i < web_nassets; i++)
        if (strcmp(web_assets[i].name, name) == 0)
            return &web_assets[i];
    return NULL;
}

static enum http_step serve(struct http_request *r, const struct web_asset *a,
                            const char *cache_control)
{
    bool gz = a->gz && http_accepts_gzip(r);
    const char *etag = gz ? a->gz_etag : a->etag;
    const char *headers[] = {"ETag",
                             etag,
                             "Cache-Control",
                             cache_control,
                             "Vary",
                             "Accept-Encoding",
                             "Content-Security-Policy",
                             WEB_CSP,
                             "X-Content-Type-Options",
                             "nosniff",
                             "Referrer-Policy",
                             "no-referrer",
                             "X-Frame-Options",
                             "DENY",
                             gz ? "Content-Encoding" : NULL,
                             "gzip",
                             NULL};

    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
        return http_method_not_allowed(r, "GET, HEAD");
    if (http_not_modified(r, etag))
        return http_send(r, 304, NULL, "", 0, headers);
    return gz ? http_send_static(r, 200, a->type, a->gz, a->gz_len, headers)
              : http_send_static(r, 200, a->type, a->body, a->len, headers);
}

enum http_step web_handle(struct http_request *r)
{
    const struct web_asset *a = find_path(r->path);
    const char *v;

    if (!a)
        return http_problem(r, 404, "not-found", "no such page");
    if (!a->version[0])
        return serve(r, a, PAGE_CACHE);
    /* Only the version the page names is immutable: an old page asking for its old version
     * gets today's file, to be revalidated. */
    v = http_query(r, "v");
    return serve(r, a, v && strcmp(v, a->version) == 0 ? IMMUTABLE_CACHE : PAGE_CACHE);
}

enum http_step web_public_stats(struct http_request *r, const char *key, size_t len)
{
    char keyz[KEY_MAX_LEN + 1];
    struct link link = {0};
    bool public;
    int rc;

    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
        return http_method_not_allowed(r, "GET, HEAD");
    if (!request_is_key(key, len))
        return http_link_not_found(r);
    memcpy(keyz, key, len);
    keyz[len] = '\0';
    rc = store_get_link(r->worker->store, keyz, 0, &link);
    if (rc == -ENOENT)
        return http_link_not_found(r);
    if (rc < 0) {
        metrics_inc(&r->srv->metrics.db_errors);
        return http_unavailable(r, "the database");
    }
    public = link.a.public_stats;
    link_release(&link);
    if (!public)
        return http_link_not_found(r);
    return serve(r, find_name("stats.html"), PAGE_CACHE);
}
