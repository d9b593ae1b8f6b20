/* libFuzzer driver for the self-link and authority checks of lib/urlcheck.c: the input is a
 * SELF_HOSTS list, a newline, and a URL. A list either parses into lower-case host names or
 * is refused with a reason; a URL accepted has an authority of RFC 3986's characters only
 * (no backslash: browsers would read another host than curl does), is accepted again
 * unchanged, and is never on a self host over http or https at a default port. */
#include "urlcheck.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_authority(const char *norm)
{
    const char *auth = strstr(norm, "://");
    if (!auth)
        __builtin_trap();
    auth += 3;
    for (const char *p = auth; *p && *p != '/' && *p != '?' && *p != '#'; p++)
        if (*p == '\\' || *p == '"' || *p == '<' || *p == '>' || *p == '{' || *p == '}' ||
            *p == '|' || *p == '^' || *p == '`' || (unsigned char)*p >= 0x7f)
            __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl ? (size_t)(nl - data) : size;
    char *hosts = malloc(hlen + 1), err[160], *norm = NULL, *again = NULL;
    struct urlcheck_self self;

    if (!hosts)
        return 0;
    memcpy(hosts, data, hlen);
    hosts[hlen] = '\0';
    err[0] = '\0';
    if (urlcheck_self_init(&self, "https://sho.rt", hosts, err, sizeof(err)) != 0) {
        if (!strstr(err, "SELF_HOSTS") && !strstr(err, "memory"))
            __builtin_trap();
        free(hosts);
        return 0;
    }
    for (size_t i = 0; i < self.n; i++)
        for (const char *p = self.hosts[i]; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                __builtin_trap();
    if (nl) {
        const char *url = (const char *)nl + 1;
        size_t len = size - hlen - 1;
        enum urlcheck_result r = urlcheck_check(url, len, &self, &norm);
        if (r == URLCHECK_OK) {
            check_authority(norm);
            if (urlcheck_check(norm, strlen(norm), &self, &again) != URLCHECK_OK ||
                strcmp(norm, again) != 0)
                __builtin_trap();
            /* Our own host, whatever the scheme, is refused at the default ports. */
            if (strncmp(norm, "https://sho.rt/", 15) == 0 ||
                strncmp(norm, "http://sho.rt/", 14) == 0 ||
                strncmp(norm, "http://www.sho.rt/", 18) == 0)
                __builtin_trap();
        } else if (norm) {
            __builtin_trap();
        }
    }
    free(again);
    free(norm);
    urlcheck_self_release(&self);
    free(hosts);
    return 0;
}
