/* GET /{key}/qr (see qr.h). */
#include "qr.h"

#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deadline.h"
#include "metrics.h"
#include "numparse.h"
#include "request.h"
#include "server.h"
#include "store.h"
#include "visitlimit.h"

/* A link that never expires: its code is as good in a year as today. */
#define QR_MAX_AGE (365LL * 86400)

int qr_params(const char *format, unsigned format_count, const char *size, unsigned size_count,
              enum qrcode_format *fmt, unsigned *px, char *err, size_t errlen)
{
    long long n = QRCODE_SIZE_DEFAULT;

    if (format_count > 1 || size_count > 1) {
        snprintf(err, errlen, "%s may be given once", format_count > 1 ? "format" : "size");
        return -EINVAL;
    }
    if (!format || strcmp(format, "svg") == 0) {
        *fmt = QRCODE_SVG;
    } else if (strcmp(format, "png") == 0) {
        *fmt = QRCODE_PNG;
    } else {
        snprintf(err, errlen, "format must be svg or png");
        return -EINVAL;
    }
    if (size && numparse_ll(size, QRCODE_SIZE_MIN, QRCODE_SIZE_MAX, NUMPARSE_CANONICAL, &n) < 0) {
        snprintf(err, errlen, "size must be a whole number of pixels from %d to %d",
                 QRCODE_SIZE_MIN, QRCODE_SIZE_MAX);
        return -EINVAL;
    }
    *px = (unsigned)n;
    return 0;
}

/* 0 when the link under key redirects now, with its remaining life (-1: no end) in *remaining;
 * else the answer already sent is returned through *step. */
static int live_link(struct http_request *r, const char *key, int64_t *remaining,
                     enum http_step *step)
{
    struct redirect_row row;
    int64_t now;
    int rc = store_lookup_redirect(r->worker->store, key, &row);

    if (rc == -ENOENT) {
        *step = http_link_not_found(r);
        return -1;
    }
    if (rc < 0) {
        metrics_inc(&r->srv->metrics.db_errors);
        *step = http_unavailable(r, "the database");
        return -1;
    }
    free(row.url);
    *remaining = row.remaining;
    now = deadline_now_s_up();
    if (row.a.valid_from >= now) {
        *step = http_link_not_found(r);
        return -1;
    }
    if (row.a.max_visits) {
        /* Only asks (take false): showing the code is not a visit. */
        int64_t ttl = row.a.expires_at ? row.a.expires_at - now + 60 : 0;
        rc = visitlimit_take(r->worker->redis, key, row.a.max_visits, row.visits, ttl, false);
        if (rc == VISITLIMIT_EXHAUSTED) {
            *step = http_link_not_found(r);
            return -1;
        }
        if (rc < 0) {
            metrics_inc(&r->srv->metrics.cache_errors);
            *step = http_unavailable(r, "the visit counter");
            return -1;
        }
    }
    return 0;
}

enum http_step qr_handle(struct http_request *r, const char *key, size_t len)
{
    const char *method = r->method;
    char err[128], keyz[KEY_MAX_LEN + 1], short_url[sizeof(r->srv->base_url) + KEY_MAX_LEN + 2];
    char etag[48], cache_control[80];
    unsigned char hash[16];
    enum qrcode_format fmt;
    struct qrcode_image img;
    enum http_step step;
    int64_t remaining;
    unsigned px;

    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return http_method_not_allowed(r, "GET, HEAD");
    size_t flen = 0, slen = 0;
    const char *format = http_query_n(r, "format", &flen), *size = http_query_n(r, "size", &slen);
    /* A value with a NUL byte in it is a value the C strings below would cut short. */
    if ((format && strlen(format) != flen) || (size && strlen(size) != slen))
        return http_problem(r, 400, "invalid-parameter", "format and size hold no NUL bytes");
    if (qr_params(format, http_query_count(r, "format"), size, http_query_count(r, "size"), &fmt,
                  &px, err, sizeof(err)) < 0)
        return http_problem(r, 400, "invalid-parameter", "%s", err);
    if (!request_is_key(key, len))
        return http_link_not_found(r);
    snprintf(keyz, sizeof(keyz), "%.*s", (int)len, key);
    if (live_link(r, keyz, &remaining, &step) < 0)
        return step;

    snprintf(short_url, sizeof(short_url), "%s/%s", r->srv->base_url, keyz);
    /* The image is a function of these three alone. */
    char what[sizeof(short_url) + 32];
    int n = snprintf(what, sizeof(what), "%s\n%d\n%u", short_url, (int)fmt, px);
    crypto_generichash(hash, sizeof(hash), (const unsigned char *)what, (size_t)n, NULL, 0);
    char hex[sizeof(hash) * 2 + 1];
    sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
    snprintf(etag, sizeof(etag), "\"qr-%s\"", hex);
    long long max_age = remaining < 0            ? QR_MAX_AGE
                        : remaining < QR_MAX_AGE ? remaining
                                                 : QR_MAX_AGE;
    if (max_age > 0)
        snprintf(cache_control, sizeof(cache_control), "public, max-age=%lld, immutable", max_age);
    else
        snprintf(cache_control, sizeof(cache_control), "no-store");
    const char *const headers[] = {
        "ETag", etag, "Cache-Control", cache_control, "X-Content-Type-Options", "nosniff", NULL};
    if (http_not_modified(r, etag))
        return http_send(r, 304, NULL, "", 0, headers);
    int rc = qrcode_render(short_url, fmt, px, &img);
    if (rc < 0)
        return http_problem(r, 500, "internal", "the QR code could not be drawn");
    step = http_send(r, 200, fmt == QRCODE_PNG ? "image/png" : "image/svg+xml", (char *)img.data,
                     img.len, headers);
    qrcode_image_release(&img);
    return step;
}
