/* libFuzzer driver for the header parsers of analytics: any bytes as a User-Agent
 * (uaclass.c, with the generated crawler table) give known families and a device class that
 * agrees with the bot flag; as a Referer (referrer.c), a host of [a-z0-9._-] (or a bracketed
 * IPv6 literal) of at most 253 characters, or "direct". */
#include "crawlers_data.c"
#include "referrer.c"
#include "uaclass.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct uaclass *classifier;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ua_info info;
    char host[REFERRER_HOST_MAX + 1];

    if (!classifier && !(classifier = uaclass_new(NULL)))
        return 0;
    uaclass_classify(classifier, (const char *)data, size, &info);
    if (!info.browser || !info.os || info.bot != (info.device == UA_BOT))
        __builtin_trap();
    if (strlen(uaclass_device_name(info.device)) < 3)
        __builtin_trap();

    referrer_host((const char *)data, size, host);
    size_t n = strlen(host);
    if (n == 0 || n > REFERRER_HOST_MAX)
        __builtin_trap();
    if (strcmp(host, "direct") != 0) {
        bool v6 = host[0] == '[';
        for (size_t i = 0; i < n; i++) {
            char c = host[i];
            bool ok = v6 ? (c == '[' || c == ']' || v6_char(c)) : host_char(c);
            if (!ok)
                __builtin_trap();
        }
    }
    return 0;
}
