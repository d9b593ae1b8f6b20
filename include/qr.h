/* GET /{key}/qr: a QR code of a link's short_url (API.md, Redirect). SVG by default,
 * ?format=png for a PNG; ?size=N pixels per side (64-2048, default 512). Anything else in
 * format or size, or either given twice, is 400; a link that does not redirect (unknown,
 * deleted, expired, not yet valid, out of visits) is 404. The image never changes while the
 * link lives, so it is cacheable as immutable until the link expires, with an ETag.
 *
 * Off the redirect path: routed only for paths with a second segment, and it reads the link
 * from PostgreSQL itself instead of touching the redirect's caches. */
#ifndef SHORTENER_QR_H
#define SHORTENER_QR_H

#include <stddef.h>

#include "http.h"
#include "qrcode.h"

/* Checks the query of a QR request: format (NULL: svg) and size (NULL: the default), each
 * given count times. Returns 0 with *fmt and *size set, or -EINVAL with the reason in err. */
int qr_params(const char *format, unsigned format_count, const char *size, unsigned size_count,
              enum qrcode_format *fmt, unsigned *px, char *err, size_t errlen);

/* Answers GET or HEAD /{key}/qr for key[0..len). */
enum http_step qr_handle(struct http_request *r, const char *key, size_t len);

#endif
