/* CORS_ORIGINS and the origin check (see cors.h). */
#include "cors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool origin_well_formed(const char *s, size_t len)
{
    size_t scheme = strncmp(s, "https://", 8) == 0 ? 8 : strncmp(s, "http://", 7) == 0 ? 7 : 0;

    if (!scheme || len <= scheme || s[len - 1] == '/')
        return false;
    for (size_t i = scheme; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '/' || ch == '"' || ch == '\\')
            return false;
    }
    return true;
}

int cors_parse(const char *list, struct cors *out, char *err, size_t errlen)
{
    const char *p = list;

    memset(out, 0, sizeof(*out));
    while (*p == ' ')
        p++;
    if (strcmp(p, "*") == 0) {
        out->any = true;
        return 0;
    }
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *end = p + len;
        while (len && (p[0] == ' ' || p[0] == '\t'))
            p++, len--;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len && !origin_well_formed(p, len)) {
            snprintf(err, errlen,
                     "CORS_ORIGINS: '%.*s' is not an origin (scheme://host[:port], no path), "
                     "nor '*'",
                     (int)(len > 200 ? 200 : len), p);
            cors_release(out);
            return -EINVAL;
        }
        if (len) {
            char **grown = realloc(out->origins, (out->n + 1) * sizeof(*grown));
            char *copy = grown ? strndup(p, len) : NULL;
            if (grown)
                out->origins = grown;
            if (!copy) {
                snprintf(err, errlen, "out of memory");
                cors_release(out);
                return -ENOMEM;
            }
            out->origins[out->n++] = copy;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

void cors_release(struct cors *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->origins[i]);
    free(c->origins);
    memset(c, 0, sizeof(*c));
}

const char *cors_allow_origin(const struct cors *c, const char *origin)
{
    /* "*" is the same answer for every caller, with an Origin or without (a script, a
     * cache in between). */
    if (c->any)
        return "*";
    if (!origin)
        return NULL;
    /* Origins are ASCII serializations that browsers send lower-cased; an exact match is what
     * the Fetch standard's check does too. */
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->origins[i], origin) == 0)
            return origin;
    return NULL;
}
