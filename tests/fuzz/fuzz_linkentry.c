/* libFuzzer driver for the Redis link entry (linkentry.c): whatever a Redis value holds, it is
 * a hit, a negative or edited marker, or not ours; a hit's URL fits, and a hit written back
 * reads back the same. */
#include "linkentry.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char url[256], url2[256], *out;
    struct link_rules rules, rules2;
    size_t cap = size + 128;
    int rc = linkentry_parse((const char *)data, size, url, sizeof(url), &rules);

    if (rc != LINKENTRY_HIT && rc != LINKENTRY_NEGATIVE && rc != LINKENTRY_EDITED && rc != -ENOENT)
        __builtin_trap();
    if (rc != LINKENTRY_HIT || memchr(url, '\n', strlen(url)) || strlen(url) == 0)
        return 0;
    out = malloc(cap);
    if (!out)
        return 0;
    if (linkentry_format(url, &rules, out, cap) >= 0) {
        if (linkentry_parse(out, strlen(out), url2, sizeof(url2), &rules2) != LINKENTRY_HIT ||
            strcmp(url, url2) != 0 || rules.expires_at != rules2.expires_at ||
            rules.valid_from != rules2.valid_from || rules.max_visits != rules2.max_visits ||
            rules.password != rules2.password || (rules.redirect_status != rules2.redirect_status))
            __builtin_trap();
    }
    free(out);
    return 0;
}
