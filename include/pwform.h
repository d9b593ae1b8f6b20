/* The page that asks for a link's password (API.md: password-protected links): a small HTML
 * form that posts back to /{key}. Everything from the link is escaped, the page carries no
 * script at all and a Content-Security-Policy that would refuse one, and it is never cached.
 * The password travels only in the POST body, never in a URL. */
#ifndef SHORTENER_PWFORM_H
#define SHORTENER_PWFORM_H

#include "http.h"

enum pwform_note { PWFORM_ASK, PWFORM_WRONG, PWFORM_TOO_MANY };

/* Sends the form for key with status (401, or 429 after too many wrong tries). */
enum http_step pwform_send(struct http_request *r, const char *key, unsigned status,
                           enum pwform_note note);

/* The form with 429 after too many wrong passwords, and Retry-After (seconds, at least 1). */
enum http_step pwform_send_retry(struct http_request *r, const char *key, long long retry_after);

/* The security fields every HTML page of ours sends: PWFORM_HTML_FIELDS name, value pairs,
 * then NULL. */
#define PWFORM_HTML_FIELDS 5
extern const char *const pwform_html_headers[PWFORM_HTML_FIELDS * 2 + 1];

#endif
