/* Link keys, aliases and tags. Kept apart from the request parser so that shortenerctl's
 * import refuses exactly the keys and tags a create would refuse. */
#include "linkkey.h"

#include <string.h>
#include <strings.h>

#include "request.h"

/* Paths the service itself answers, or may one day; an alias must not shadow them. */
const char *const linkkey_reserved[] = {
    "api",   "bulk",   "healthz", "readyz", "metrics",    "static", "admin", "assets", "docs",
    "login", "logout", "favicon", "robots", "well-known", "www",    "help",  "about",  "status",
};
const size_t linkkey_nreserved = sizeof(linkkey_reserved) / sizeof(linkkey_reserved[0]);

static bool is_key_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
           c == '-';
}

static bool all_key_chars(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_key_char(s[i]))
            return false;
    return true;
}

bool linkkey_is_key(const char *s, size_t len)
{
    return s && len >= ALIAS_MIN_LEN && len <= ALIAS_MAX_LEN && all_key_chars(s, len);
}

enum linkkey_check linkkey_check_alias(const char *s, size_t len)
{
    if (!s || len < ALIAS_MIN_LEN || len > ALIAS_MAX_LEN)
        return LINKKEY_BAD_LENGTH;
    if (!all_key_chars(s, len))
        return LINKKEY_BAD_CHARS;
    for (size_t i = 0; i < linkkey_nreserved; i++)
        if (strlen(linkkey_reserved[i]) == len && strncasecmp(s, linkkey_reserved[i], len) == 0)
            return LINKKEY_RESERVED;
    return LINKKEY_OK;
}

bool linkkey_is_tag(const char *s, size_t len)
{
    return s && len >= 1 && len <= REQUEST_TAG_MAX_LEN && all_key_chars(s, len);
}
