/* libFuzzer driver for the per-address key of connection limits (clientip_peer_net): any
 * 16 bytes as an IPv6 peer, and 4 as an IPv4 one, give a key that is the IPv4 address whole
 * (IPv4-mapped, also when it came as ::ffff:a.b.c.d) or the IPv6 /64 with its host half
 * zeroed; two peers in one /64 always share a key. */
#include "clientip.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6}, b = {.sin6_family = AF_INET6};
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    unsigned char ka[16], kb[16], k4[16];

    if (size < 16)
        return 0;
    memcpy(&a.sin6_addr, data, 16);
    memcpy(&b.sin6_addr, data, 16);
    for (size_t i = 16; i < size && i < 24; i++)
        ((unsigned char *)&b.sin6_addr)[i - 8] ^= data[i];
    if (clientip_peer_net((struct sockaddr *)&a, ka) != 0)
        __builtin_trap();
    if (is_v4(ka)) {
        if (memcmp(ka, data, 16) != 0)
            __builtin_trap();
        memcpy(&v4.sin_addr, data + 12, 4);
        if (clientip_peer_net((struct sockaddr *)&v4, k4) != 0 || memcmp(k4, ka, 16) != 0)
            __builtin_trap();
    } else {
        for (int i = 8; i < 16; i++)
            if (ka[i] != 0)
                __builtin_trap();
        if (memcmp(ka, data, 8) != 0)
            __builtin_trap();
        if (clientip_peer_net((struct sockaddr *)&b, kb) != 0)
            __builtin_trap();
        if (!is_v4(kb) && memcmp(ka, kb, 16) != 0)
            __builtin_trap();
    }
    return 0;
}
