/* Checks the long URLs users shorten before they are stored and later sent back as a
 * Location header, so that every stored URL is an absolute http(s) URL a browser can follow
 * and no link points back at this service (which would let short links chain or loop).
 *
 * libcurl parses; we are stricter than it on purpose. It accepts "http:/host" and
 * "http:///host" (one to three slashes) and takes a host from the path, so the "//" and a
 * non-empty authority are checked here first. Its output may also carry raw non-ASCII bytes,
 * which are unsafe in a Location header and invalid in JSON when they are not UTF-8: such
 * bytes are percent-encoded outside the host (as browsers do), and a non-ASCII host is refused
 * since libcurl's IDN conversion depends on the process locale: international names must
 * come in their xn-- form. */
#include "urlcheck.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":". Returns its length
 * without the colon, or 0 when url does not start with one. */
static size_t scheme_len(const char *url, size_t len)
{
    size_t i;

    if (len == 0 || !is_alpha((unsigned char)url[0]))
        return 0;
    for (i = 1; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c == ':')
            return i;
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.')
            return 0;
    }
    return 0;
}

/* The characters that end an authority; url never holds a NUL here. */
static bool ends_authority(char c)
{
    return c == '/' || c == '?' || c == '#';
}

/* RFC 3986's unreserved and sub-delims characters: with ':' and, escaped, '%', what a userinfo
 * or a host name may hold. */
static bool authority_char(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || (c && strchr("-._~!$&'()*+,;=:", c));
}

static bool is_hex(char c)
{
    return is_digit((unsigned char)c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Checks the authority (from auth, just after "//") against RFC 3986 before curl reads it:
 * browsers and curl disagree on where the host of "https://a.example\@b.example/" is (a
 * browser reads the backslash as a slash), so any character outside RFC 3986 is refused,
 * and so is a second '@'. Percent-escapes are refused in the host: curl decodes them only
 * after normalising numeric addresses, so "%33" would be host "3" now and "0.0.0.3" when
 * parsed again, and they serve mostly to disguise a host, such as ours. */
static bool authority_acceptable(const char *url, size_t len, size_t auth)
{
    size_t end = auth, host = auth, ats = 0;

    while (end < len && !ends_authority(url[end]))
        end++;
    for (size_t i = auth; i < end; i++)
        if (url[i] == '@') {
            host = i + 1;
            ats++;
        }
    if (ats > 1)
        return false;
    for (size_t i = auth; i < end; i++) {
        unsigned char c = (unsigned char)url[i];
        if (i < host) {
            if (c == '@')
                continue;
            if (c == '%') {
                if (i + 2 >= host || !is_hex(url[i + 1]) || !is_hex(url[i + 2]))
                    return false;
                i += 2;
                continue;
            }
        } else if (c == '[' || c == ']') {
            continue;
        }
        if (!authority_char(c))
            return false;
    }
    return true;
}

/* Copies url with every byte >= 0x80 percent-encoded, as browsers send them. */
static char *encode_non_ascii(const char *url, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    char *buf = malloc(len * 3 + 1);
    size_t o = 0;

    if (!buf)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c >= 0x80) {
            buf[o++] = '%';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 0xf];
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o] = '\0';
    return buf;
}

static enum urlcheck_result from_curl(CURLUcode rc)
{
    switch (rc) {
    case CURLUE_OUT_OF_MEMORY:
        return URLCHECK_NOMEM;
    case CURLUE_NO_HOST:
        return URLCHECK_NO_HOST;
    case CURLUE_UNSUPPORTED_SCHEME:
        return URLCHECK_BAD_SCHEME;
    default:
        return URLCHECK_UNPARSABLE;
    }
}

/* Host and effective port of a parsed URL. host is curl's; curl_free() it. */
static enum urlcheck_result host_port(CURLU *h, char **host, long *port)
{
    char *p = NULL;
    CURLUcode rc;

    rc = curl_url_get(h, CURLUPART_HOST, host, 0);
    if (rc != CURLUE_OK)
        return from_curl(rc);
    rc = curl_url_get(h, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT);
    if (rc != CURLUE_OK)
        return from_curl(rc);
    *port = strtol(p, NULL, 10);
    curl_free(p);
    return URLCHECK_OK;
}

/* The name a host is compared by: "sho.rt.", "www.sho.rt" and "WWW.Sho.Rt" all name the
 * service at sho.rt, so the trailing dot and one leading "www." are dropped (and the case,
 * by the caller). The dot stays in the stored URL, though: dropping it could turn "8." into
 * the numeric host "8", which curl rewrites as "0.0.0.8". */
static void host_core(const char *host, const char **start, size_t *len)
{
    size_t n = strlen(host);

    if (n > 1 && host[n - 1] == '.')
        n--;
    if (n > 4 && strncasecmp(host, "www.", 4) == 0) {
        host += 4;
        n -= 4;
    }
    *start = host;
    *len = n;
}

static int add_host(struct urlcheck_self *self, const char *host)
{
    const char *core;
    size_t n;
    char **hosts = realloc(self->hosts, (self->n + 1) * sizeof(*hosts));

    if (!hosts)
        return -1;
    self->hosts = hosts;
    host_core(host, &core, &n);
    hosts[self->n] = malloc(n + 1);
    if (!hosts[self->n])
        return -1;
    for (size_t i = 0; i < n; i++)
        hosts[self->n][i] =
            (char)(core[i] >= 'A' && core[i] <= 'Z' ? core[i] - 'A' + 'a' : core[i]);
    hosts[self->n][n] = '\0';
    self->n++;
    return 0;
}

/* One SELF_HOSTS item: a DNS name or an IP address, nothing else. */
static bool host_item_valid(const char *p, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    if (p[0] == '[')
        return n > 2 && p[n - 1] == ']' && strspn(p + 1, "0123456789abcdefABCDEF:.") == n - 2;
    for (size_t i = 0; i < n; i++)
        if (!is_alpha((unsigned char)p[i]) && !is_digit((unsigned char)p[i]) && p[i] != '.' &&
            p[i] != '-')
            return false;
    return true;
}

int urlcheck_self_init(struct urlcheck_self *self, const char *base_url, const char *extra_hosts,
                       char *err, size_t errlen)
{
    CURLU *b = NULL;
    char *bhost = NULL, item[256];
    int rc = -1;

    memset(self, 0, sizeof(*self));
    if (base_url && *base_url) {
        b = curl_url();
        if (!b) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        if (curl_url_set(b, CURLUPART_URL, base_url, 0) == CURLUE_OK &&
            host_port(b, &bhost, &self->port) == URLCHECK_OK && add_host(self, bhost) < 0) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    for (const char *p = extra_hosts ? extra_hosts : ""; *p;) {
        size_t n = strcspn(p, ",");
        const char *q = p;
        size_t m = n;
        while (m > 0 && (*q == ' ' || *q == '\t')) {
            q++;
            m--;
        }
        while (m > 0 && (q[m - 1] == ' ' || q[m - 1] == '\t'))
            m--;
        if (!host_item_valid(q, m) || m >= sizeof(item)) {
            snprintf(err, errlen, "SELF_HOSTS: '%.*s' is not a host name or IP address",
                     (int)(m < 64 ? m : 64), q);
            goto out;
        }
        memcpy(item, q, m);
        item[m] = '\0';
        if (add_host(self, item) < 0) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    rc = 0;
out:
    curl_free(bhost);
    curl_url_cleanup(b);
    if (rc < 0)
        urlcheck_self_release(self);
    return rc;
}

void urlcheck_self_release(struct urlcheck_self *self)
{
    for (size_t i = 0; i < self->n; i++)
        free(self->hosts[i]);
    free(self->hosts);
    self->hosts = NULL;
    self->n = 0;
}

/* True when host (lower-case) and port are one of ours: a self host on BASE_URL's port or
 * on the default ports, where a proxy in front of us would take http:// and https://. */
static bool is_self(const char *host, long port, const struct urlcheck_self *self)
{
    const char *core;
    size_t n;

    if (!self || (port != self->port && port != 80 && port != 443))
        return false;
    host_core(host, &core, &n);
    for (size_t i = 0; i < self->n; i++)
        if (strlen(self->hosts[i]) == n && memcmp(self->hosts[i], core, n) == 0)
            return true;
    return false;
}

enum urlcheck_result urlcheck_validate(const char *url, size_t len, const char *base_url,
                                       char **normalized)
{
    struct urlcheck_self self;
    char err[128];
    enum urlcheck_result res;

    *normalized = NULL;
    /* A broken base_url is a configuration matter checked at start-up; here it simply
     * matches nothing. */
    if (urlcheck_self_init(&self, base_url, NULL, err, sizeof(err)) < 0)
        return URLCHECK_NOMEM;
    res = urlcheck_check(url, len, &self, normalized);
    urlcheck_self_release(&self);
    return res;
}

enum urlcheck_result urlcheck_check(const char *url, size_t len, const struct urlcheck_self *self,
                                    char **normalized)
{
    enum urlcheck_result res;
    char *copy = NULL, *norm = NULL, *host = NULL, *scheme = NULL;
    CURLU *h = NULL;
    CURLUcode rc;
    size_t slen, norm_len;
    long port = 0;

    *normalized = NULL;
    if (!url || len == 0)
        return URLCHECK_EMPTY;
    if (len > URLCHECK_MAX_LEN)
        return URLCHECK_TOO_LONG;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c == 0x7f)
            return URLCHECK_CONTROL_CHARS;
        /* The C1 controls, U+0080..U+009F, in UTF-8 (NEL, U+0085, breaks lines in some
         * readers); percent-encoded they would pass as well-formed. */
        if (c == 0xc2 && i + 1 < len && (unsigned char)url[i + 1] >= 0x80 &&
            (unsigned char)url[i + 1] <= 0x9f)
            return URLCHECK_CONTROL_CHARS;
    }

    slen = scheme_len(url, len);
    if (slen == 0 || !((slen == 4 && strncasecmp(url, "http", 4) == 0) ||
                       (slen == 5 && strncasecmp(url, "https", 5) == 0)))
        return URLCHECK_BAD_SCHEME;
    if (len < slen + 3 || url[slen + 1] != '/' || url[slen + 2] != '/')
        return URLCHECK_UNPARSABLE;
    if (len == slen + 3 || ends_authority(url[slen + 3]))
        return URLCHECK_NO_HOST;

    if (!authority_acceptable(url, len, slen + 3))
        return URLCHECK_UNPARSABLE;
    copy = encode_non_ascii(url, len);
    if (!copy)
        return URLCHECK_NOMEM;
    h = curl_url();
    if (!h) {
        res = URLCHECK_NOMEM;
        goto out;
    }
    rc = curl_url_set(h, CURLUPART_URL, copy, 0);
    if (rc != CURLUE_OK) {
        res = from_curl(rc);
        goto out;
    }
    /* Ours was checked above; curl's lower-case view guards against the two disagreeing. */
    rc = curl_url_get(h, CURLUPART_SCHEME, &scheme, 0);
    if (rc != CURLUE_OK) {
        res = from_curl(rc);
        goto out;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        res = URLCHECK_BAD_SCHEME;
        goto out;
    }
    res = host_port(h, &host, &port);
    if (res != URLCHECK_OK)
        goto out;
    if (!*host) {
        res = URLCHECK_NO_HOST;
        goto out;
    }
    /* An empty label is no DNS name, and curl would drop a trailing one on the next parse
     * ("https://.../" becomes "https://../"), so the result would not be a fixed point. */
    if (host[0] == '.' || strstr(host, "..")) {
        res = URLCHECK_UNPARSABLE;
        goto out;
    }
    if (port <= 0 || port > 65535) {
        res = URLCHECK_UNPARSABLE;
        goto out;
    }
    /* Host names are case-insensitive but curl keeps the case it was given: lower-case it so
     * that equal links look equal (and compare equal with BASE_URL). */
    for (char *q = host; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
    rc = curl_url_set(h, CURLUPART_HOST, host, 0);
    if (rc != CURLUE_OK) {
        res = from_curl(rc);
        goto out;
    }
    if (is_self(host, port, self)) {
        res = URLCHECK_SELF;
        goto out;
    }

    rc = curl_url_get(h, CURLUPART_URL, &norm, CURLU_NO_DEFAULT_PORT);
    if (rc != CURLUE_OK) {
        res = from_curl(rc);
        goto out;
    }
    /* Percent-encoding may have grown it; the byte check is a last line of defence. */
    norm_len = strlen(norm);
    if (norm_len > URLCHECK_MAX_LEN) {
        res = URLCHECK_TOO_LONG;
        goto out;
    }
    for (size_t i = 0; i < norm_len; i++) {
        unsigned char c = (unsigned char)norm[i];
        if (c <= 0x20 || c >= 0x7f) {
            res = URLCHECK_UNPARSABLE;
            goto out;
        }
    }
    *normalized = malloc(norm_len + 1);
    if (!*normalized) {
        res = URLCHECK_NOMEM;
        goto out;
    }
    memcpy(*normalized, norm, norm_len + 1);
    res = URLCHECK_OK;
out:
    curl_free(norm);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(h);
    free(copy);
    return res;
}

const char *urlcheck_describe(enum urlcheck_result r)
{
    switch (r) {
    case URLCHECK_OK:
        return "the url is valid";
    case URLCHECK_EMPTY:
        return "the url is empty";
    case URLCHECK_TOO_LONG:
        return "the url is longer than 8192 bytes";
    case URLCHECK_CONTROL_CHARS:
        return "the url contains spaces or control characters";
    case URLCHECK_UNPARSABLE:
        return "the url is not a well-formed URL";
    case URLCHECK_BAD_SCHEME:
        return "the url must be absolute and start with http:// or https://";
    case URLCHECK_NO_HOST:
        return "the url has no host";
    case URLCHECK_SELF:
        return "the url points at this service's own short links";
    case URLCHECK_NOMEM:
        return "out of memory";
    }
    return "the url is invalid";
}
