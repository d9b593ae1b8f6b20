/* API keys: the secret is generated here, shown once by shortenerctl and never stored; the
 * database holds only a BLAKE2b hash of it, keyed with a pepper kept outside the database
 * so a leaked table alone cannot confirm guesses. Keys carry enough entropy (~190 bits) that
 * a fast hash is enough: there is nothing to brute-force, unlike a password. */
#include "apikey.h"

#include "base62.h"
#include "numparse.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *unit;
    int seconds;
} rate_units[] = {{"s", 1}, {"min", 60}, {"h", 3600}};

void apikey_generate(char out[APIKEY_LEN + 1])
{
    memcpy(out, APIKEY_PREFIX, APIKEY_PREFIX_LEN);
    base62_random(out + APIKEY_PREFIX_LEN, APIKEY_RANDOM_LEN);
}

bool apikey_well_formed(const char *key, size_t len)
{
    if (!key || len != APIKEY_LEN || memcmp(key, APIKEY_PREFIX, APIKEY_PREFIX_LEN) != 0)
        return false;
    for (size_t i = APIKEY_PREFIX_LEN; i < len; i++)
        if (!base62_is_digit(key[i]))
            return false;
    return true;
}

int apikey_hash(const char *key, size_t len, const char *pepper, unsigned char out[APIKEY_HASH_LEN])
{
    unsigned char hkey[crypto_generichash_KEYBYTES];
    const unsigned char *k = NULL;
    size_t plen = pepper ? strlen(pepper) : 0, klen = 0;
    int rc = -1;

    /* The pepper is hashed to a fixed-size key so that it may be of any length. */
    if (plen > 0) {
        if (crypto_generichash(hkey, sizeof(hkey), (const unsigned char *)pepper, plen, NULL, 0) !=
            0)
            goto out;
        k = hkey;
        klen = sizeof(hkey);
    }
    if (crypto_generichash(out, APIKEY_HASH_LEN, (const unsigned char *)key, len, k, klen) != 0)
        goto out;
    rc = 0;
out:
    sodium_memzero(hkey, sizeof(hkey));
    return rc;
}

int apikey_parse_rate(const char *s, int *limit, int *window_seconds)
{
    const char *slash = s ? strchr(s, '/') : NULL;
    long long n;

    if (!slash ||
        numparse_ll_n(s, (size_t)(slash - s), 1, APIKEY_RATE_MAX, NUMPARSE_CANONICAL, &n) < 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(rate_units) / sizeof(rate_units[0]); i++) {
        if (strcmp(slash + 1, rate_units[i].unit) == 0) {
            *limit = (int)n;
            *window_seconds = rate_units[i].seconds;
            return 0;
        }
    }
    return -EINVAL;
}

int apikey_parse_burst(const char *s, int *burst)
{
    long long n;

    if (numparse_ll(s, 1, APIKEY_RATE_MAX, NUMPARSE_CANONICAL, &n) < 0)
        return -EINVAL;
    *burst = (int)n;
    return 0;
}

/* A window no rate specification produces is written in seconds, "N/Ws", for the eye only. */
void apikey_format_rate(int limit, int window_seconds, char *buf, size_t cap)
{
    for (size_t i = 0; i < sizeof(rate_units) / sizeof(rate_units[0]); i++) {
        if (rate_units[i].seconds == window_seconds) {
            snprintf(buf, cap, "%d/%s", limit, rate_units[i].unit);
            return;
        }
    }
    snprintf(buf, cap, "%d/%ds", limit, window_seconds);
}
