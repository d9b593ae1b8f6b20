/* Finding the passwords in connection strings, to hide them (see secret.h). */
#include "secret.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* More passwords than this in one string: the last span runs to the end of it. */
#define MAX_SPANS 8

/* Where a password sits in a connection string: bytes [at, at + len). */
struct span {
    size_t at, len;
};

struct spans {
    struct span s[MAX_SPANS];
    size_t n;
    size_t total; /* the string's length */
};

static void add(struct spans *sp, size_t at, size_t len)
{
    if (len == 0)
        return;
    if (sp->n == MAX_SPANS) {
        /* Out of room: hide everything from the last one on rather than let one through. */
        struct span *last = &sp->s[MAX_SPANS - 1];
        if (at < last->at)
            last->at = at;
        last->len = sp->total - last->at;
        return;
    }
    sp->s[sp->n++] = (struct span){.at = at, .len = len};
}

static bool is_space(char c)
{
    return isspace((unsigned char)c) != 0;
}

/* The length of the scheme of a URI that starts s ("redis" for "redis://..."), or 0. */
static size_t scheme_len(const char *s)
{
    size_t i = 1;

    if (!isalpha((unsigned char)s[0]))
        return 0;
    while (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')
        i++;
    return strncmp(s + i, "://", 3) == 0 ? i : 0;
}

/* The user part runs to the last '@', not the first: a password with an unescaped '@' or '/'
 * is hidden whole, whichever way a parser would have split it. Query parameters named
 * password (libpq accepts them) are found wherever they are. */
static void uri_passwords(const char *s, size_t slen, struct spans *sp)
{
    size_t a = slen + 3;
    const char *at = s[a] == '/' ? NULL : strrchr(s + a, '@');

    if (at) {
        size_t end = (size_t)(at - s);
        const char *colon = memchr(s + a, ':', end - a);
        bool postgres = (slen == 8 && strncasecmp(s, "postgres", 8) == 0) ||
                        (slen == 10 && strncasecmp(s, "postgresql", 10) == 0);
        if (colon)
            add(sp, (size_t)(colon + 1 - s), end - (size_t)(colon + 1 - s));
        else if (!postgres)
            add(sp, a, end - a);
    }
    for (const char *p = s + a; (p = strstr(p, "password=")) != NULL; p += 9)
        if (p[-1] == '?' || p[-1] == '&')
            add(sp, (size_t)(p + 9 - s), strcspn(p + 9, "&#"));
}

/* keyword = value pairs as libpq reads them: values unquoted up to white space, or in single
 * quotes; a backslash escapes the next character in both. A value's span includes its quotes. */
static void conninfo_passwords(const char *s, struct spans *sp)
{
    size_t i = 0;

    for (;;) {
        while (is_space(s[i]))
            i++;
        if (!s[i])
            return;
        size_t kw = i;
        while (s[i] && s[i] != '=' && !is_space(s[i]))
            i++;
        size_t kwlen = i - kw;
        while (is_space(s[i]))
            i++;
        if (s[i] != '=')
            return; /* libpq refuses the string; there is no value to make out */
        i++;
        while (is_space(s[i]))
            i++;
        size_t v = i;
        bool quoted = s[i] == '\'';
        if (quoted)
            i++;
        while (s[i] && (quoted ? s[i] != '\'' : !is_space(s[i]))) {
            if (s[i] == '\\' && s[i + 1])
                i++;
            i++;
        }
        if (quoted && s[i])
            i++;
        if (kwlen == 8 && strncmp(s + kw, "password", 8) == 0)
            add(sp, v, i - v);
    }
}

static void find_passwords(const char *url, struct spans *sp)
{
    size_t slen = scheme_len(url);

    sp->n = 0;
    sp->total = strlen(url);
    if (slen)
        uri_passwords(url, slen, sp);
    else
        conninfo_passwords(url, sp);
}

/* Sorts the spans by position and merges those that overlap. */
static void sort_and_merge(struct spans *sp)
{
    for (size_t i = 1; i < sp->n; i++)
        for (size_t j = i; j > 0 && sp->s[j].at < sp->s[j - 1].at; j--) {
            struct span t = sp->s[j];
            sp->s[j] = sp->s[j - 1];
            sp->s[j - 1] = t;
        }
    size_t m = 0;
    for (size_t i = 0; i < sp->n; i++) {
        if (m > 0 && sp->s[i].at <= sp->s[m - 1].at + sp->s[m - 1].len) {
            size_t end = sp->s[i].at + sp->s[i].len;
            if (end > sp->s[m - 1].at + sp->s[m - 1].len)
                sp->s[m - 1].len = end - sp->s[m - 1].at;
        } else {
            sp->s[m++] = sp->s[i];
        }
    }
    sp->n = m;
}

static void append(char *out, size_t cap, size_t *o, const char *src, size_t len)
{
    if (*o + 1 >= cap)
        return;
    if (len > cap - 1 - *o)
        len = cap - 1 - *o;
    memcpy(out + *o, src, len);
    *o += len;
    out[*o] = '\0';
}

const char *secret_mask_url(const char *url, char *out, size_t cap)
{
    struct spans sp;
    size_t o = 0, from = 0;

    if (cap == 0)
        return out;
    out[0] = '\0';
    find_passwords(url, &sp);
    sort_and_merge(&sp);
    for (size_t i = 0; i < sp.n; i++) {
        append(out, cap, &o, url + from, sp.s[i].at - from);
        append(out, cap, &o, SECRET_MASK, sizeof(SECRET_MASK) - 1);
        from = sp.s[i].at + sp.s[i].len;
    }
    append(out, cap, &o, url + from, sp.total - from);
    return out;
}

void secret_scrub(char *text, const char *secret, size_t len)
{
    const size_t mlen = sizeof(SECRET_MASK) - 1;
    char *p = text;

    if (len == 0)
        return;
    while ((p = memmem(p, strlen(p), secret, len)) != NULL) {
        if (len >= mlen) {
            memcpy(p, SECRET_MASK, mlen);
            memmove(p + mlen, p + len, strlen(p + len) + 1);
            p += mlen;
        } else {
            memset(p, '*', len);
            p += len;
        }
    }
}

void secret_scrub_url(char *text, const char *url)
{
    struct spans sp;

    find_passwords(url, &sp);
    for (size_t i = 0; i < sp.n; i++) {
        const char *v = url + sp.s[i].at;
        size_t len = sp.s[i].len;
        /* A quoted conninfo value: libpq would quote what is inside. */
        if (v[0] == '\'') {
            v++;
            len--;
            if (len > 0 && v[len - 1] == '\'')
                len--;
        }
        secret_scrub(text, v, len);
    }
}
