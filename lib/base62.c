/* Base62 digits: the one alphabet of generated keys and API-key secrets, drawn from
 * libsodium's CSPRNG or encoded from a number (kgs's permuted indices). */
#include "base62.h"

#include <sodium.h>

static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

void base62_random(char *out, size_t len)
{
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[randombytes_uniform(62)];
    out[len] = '\0';
}

void base62_encode(uint64_t v, char *out, size_t len)
{
    for (size_t i = len; i > 0; i--) {
        out[i - 1] = alphabet[v % 62];
        v /= 62;
    }
    out[len] = '\0';
}

bool base62_is_digit(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

bool base62_is_key(const char *s, size_t len)
{
    if (len != GENERATED_KEY_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!base62_is_digit(s[i]))
            return false;
    return true;
}
