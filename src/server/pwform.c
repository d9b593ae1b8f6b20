/* The password form (see pwform.h). */
#include "pwform.h"

#include <stdio.h>
#include <string.h>

#include "htmlesc.h"
#include "web.h"

const char *const pwform_html_headers[PWFORM_HTML_FIELDS * 2 + 1] = {
    /* No form-action: browsers apply it to the redirect that answers the right password too,
     * and the link's target is on another site. The form's action is ours, escaped, and no
     * script can run to change it. */
    "Content-Security-Policy",
    "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Content-Type-Options",
    "nosniff",
    "Referrer-Policy",
    "no-referrer",
    "X-Frame-Options",
    "DENY",
    "Cache-Control",
    "no-store",
    NULL};

static enum http_step send_form(struct http_request *r, const char *key, unsigned status,
                                enum pwform_note note, long long retry_after)
{
    static const char *const notes[] = {
        [PWFORM_ASK] = "This link is protected by a password.",
        [PWFORM_WRONG] = "That password is not right. Try again.",
        [PWFORM_TOO_MANY] = "Too many wrong passwords. Wait a few minutes, then try again.",
    };
    char esc[HTMLESC_MAX(64)], page[3072];
    int n;

    htmlesc(key, esc, sizeof(esc));
    n = snprintf(page, sizeof(page),
                 "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                 "<meta name=\"color-scheme\" content=\"light dark\">"
                 "<title>Password required</title><link rel=\"icon\" href=\"data:,\">"
                 "<link rel=\"stylesheet\" href=\"%s\"></head>\n<body class=\"plain\">"
                 "<header class=\"top\"><a class=\"brand\" href=\"/\">shortener</a></header>"
                 "<main><section class=\"card\">"
                 "<h1>Password required</h1>\n<p role=\"%s\" class=\"%s\">%s</p>\n"
                 "<form method=\"post\" action=\"/%s\">"
                 "<label for=\"password\">Password</label> "
                 "<input id=\"password\" name=\"password\" type=\"password\" required "
                 "minlength=\"8\" maxlength=\"128\" autocomplete=\"current-password\" autofocus> "
                 "<button type=\"submit\" class=\"primary\">Open link</button></form>"
                 "</section></main></body></html>\n",
                 web_css_href, note == PWFORM_ASK ? "status" : "alert",
                 note == PWFORM_ASK ? "note" : "error", notes[note], esc);
    if (n < 0 || (size_t)n >= sizeof(page))
        return http_problem(r, 500, "internal", "the form does not fit its buffer");
    if (retry_after <= 0)
        return http_send(r, status, "text/html; charset=utf-8", page, (size_t)n,
                         pwform_html_headers);
    char seconds[24];
    const char *headers[PWFORM_HTML_FIELDS * 2 + 3];
    snprintf(seconds, sizeof(seconds), "%lld", retry_after);
    memcpy(headers, pwform_html_headers, sizeof(pwform_html_headers));
    headers[PWFORM_HTML_FIELDS * 2] = "Retry-After";
    headers[PWFORM_HTML_FIELDS * 2 + 1] = seconds;
    headers[PWFORM_HTML_FIELDS * 2 + 2] = NULL;
    return http_send(r, status, "text/html; charset=utf-8", page, (size_t)n, headers);
}

enum http_step pwform_send(struct http_request *r, const char *key, unsigned status,
                           enum pwform_note note)
{
    return send_form(r, key, status, note, 0);
}

enum http_step pwform_send_retry(struct http_request *r, const char *key, long long retry_after)
{
    return send_form(r, key, 429, PWFORM_TOO_MANY, retry_after > 0 ? retry_after : 1);
}
