/* The web page (API.md, "Web page"): GET / and its static files under /static/, and the
 * public stats page GET /{key}+. The files (web/) are compiled in at build time by
 * deploy/embed-web.sh, each with its ETag and, where it pays, a gzip copy made then; they are
 * served from memory without a copy. Every answer carries the page's security fields: a
 * Content-Security-Policy that allows scripts, styles and connections to this origin only
 * (no inline script or style), nosniff, no referrer, no framing. */
#ifndef SHORTENER_WEB_H
#define SHORTENER_WEB_H

#include <stddef.h>

#include "http.h"

struct web_asset {
    const char *path; /* the URL path it is served at; "" for pages web.c serves elsewhere */
    const char *name; /* its file name in web/ */
    const char *type; /* Content-Type */
    const unsigned char *body;
    size_t len;
    const unsigned char *gz; /* NULL when gzip would not save a tenth */
    size_t gz_len;
    const char *gz_etag;
    const char *etag;
    const char *version; /* the ?v= the page links it with; "" for pages */
};

/* Generated into $(BUILD)/gen/web_data.c. */
extern const struct web_asset web_assets[];
extern const size_t web_nassets;
/* The stylesheet's versioned path, for the pages made in C (password form, 404). */
extern const char web_css_href[];

/* The page's Content-Security-Policy. */
#define WEB_CSP                                                                                    \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "        \
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

/* GET or HEAD of / or /static/NAME. */
enum http_step web_handle(struct http_request *r);

/* GET or HEAD /{key}+: the stats page for a live link with public_stats, else 404. */
enum http_step web_public_stats(struct http_request *r, const char *key, size_t len);

#endif
