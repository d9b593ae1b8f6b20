/* libFuzzer driver for clientip.c: any bytes, read as TRUSTED_PROXIES and as an
 * X-Forwarded-For header from a trusted peer, either parse or are refused, and the client
 * named is always a printable address (or the peer itself). */
#include "clientip.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s)
{
    if (s[0] == '\0' || strlen(s) >= CLIENTIP_TEXT_MAX)
        __builtin_trap();
    for (const char *p = s; *p; p++)
        if (*p <= 0x20 || *p > 0x7e)
            __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct clientip_trusted t, lo;
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    char *text, err[256], out[CLIENTIP_TEXT_MAX];

    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    err[0] = '\0';
    int rc = clientip_parse_trusted(text, &t, err, sizeof(err));
    if (rc == 0)
        clientip_trusted_release(&t);
    else if (rc != -EINVAL || err[0] == '\0' || t.nets)
        __builtin_trap();

    if (clientip_parse_trusted("127.0.0.0/8, 10.0.0.0/8, ::1", &lo, err, sizeof(err)) != 0)
        __builtin_trap();
    clientip_resolve(&lo, (const struct sockaddr *)&peer, text, out);
    check_text(out);
    clientip_trusted_release(&lo);
    free(text);
    return 0;
}
