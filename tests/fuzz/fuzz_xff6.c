/* libFuzzer driver for clientip.c's X-Forwarded-For reading with IPv6: any bytes, as the
 * header from a trusted IPv6 peer and from an IPv4 peer of a dual-stack socket
 * (::ffff:127.0.0.1), name a printable client (an IPv4 address or an IPv6 /64), never more
 * than CLIENTIP_TEXT_MAX bytes, and an IPv6 client is always shown as its /64. */
#include "clientip.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= CLIENTIP_TEXT_MAX)
        __builtin_trap();
    for (const char *p = s; *p; p++)
        if (*p <= 0x20 || *p > 0x7e)
            __builtin_trap();
    if (strchr(s, ':') && (n < 4 || strcmp(s + n - 3, "/64") != 0))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct clientip_trusted t;
    static bool ready;
    struct sockaddr_in6 peer6 = {.sin6_family = AF_INET6}, mapped = {.sin6_family = AF_INET6};
    char *text, err[256], out[CLIENTIP_TEXT_MAX];

    if (!ready) {
        if (clientip_parse_trusted("127.0.0.0/8, ::1, 2001:db8:ffff::/48", &t, err, sizeof(err)) !=
            0)
            __builtin_trap();
        ready = true;
    }
    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    inet_pton(AF_INET6, "::1", &peer6.sin6_addr);
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &mapped.sin6_addr);

    clientip_resolve(&t, (const struct sockaddr *)&peer6, text, out);
    check_text(out);
    clientip_resolve(&t, (const struct sockaddr *)&mapped, text, out);
    check_text(out);
    /* Whatever the header, a peer we do not trust is itself the client. */
    struct sockaddr_in6 stranger = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "2001:db8:1:2::3", &stranger.sin6_addr);
    clientip_resolve(&t, (const struct sockaddr *)&stranger, text, out);
    if (strcmp(out, "2001:db8:1:2::/64") != 0)
        __builtin_trap();
    (void)clientip_is_proxy(&t, (const struct sockaddr *)&mapped, text);
    free(text);
    return 0;
}
