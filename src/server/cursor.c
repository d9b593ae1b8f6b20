/* List cursors (see cursor.h): base64url of the position and a tag over it and the list. */
#include "cursor.h"

#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <string.h>

#define TAG_LEN  12
#define US_LEN   8
#define BLOB_MAX (US_LEN + KEY_MAX_LEN + TAG_LEN)

_Static_assert(CURSOR_MAX >= (BLOB_MAX + 2) / 3 * 4 + 1, "room for the longest cursor");

static void tag_of(int64_t owner, const char *tag, const char *q, const unsigned char *pos,
                   size_t poslen, unsigned char out[TAG_LEN])
{
    static const unsigned char context[crypto_generichash_KEYBYTES] = "shortener list cursor v1";
    crypto_generichash_state st;
    unsigned char full[16];
    unsigned char own[8];

    for (int i = 0; i < 8; i++)
        own[i] = (unsigned char)((uint64_t)owner >> (56 - 8 * i));
    crypto_generichash_init(&st, context, sizeof(context), sizeof(full));
    crypto_generichash_update(&st, own, sizeof(own));
    /* Each text with its NUL, and a marker for "none", so that no two lists collide. */
    crypto_generichash_update(&st, (const unsigned char *)(tag ? tag : "\x01"),
                              tag ? strlen(tag) + 1 : 1);
    crypto_generichash_update(&st, (const unsigned char *)(q ? q : "\x01"), q ? strlen(q) + 1 : 1);
    crypto_generichash_update(&st, pos, poslen);
    crypto_generichash_final(&st, full, sizeof(full));
    memcpy(out, full, TAG_LEN);
}

void cursor_encode(int64_t owner, const char *tag, const char *q, int64_t us, const char *key,
                   char out[CURSOR_MAX])
{
    unsigned char blob[BLOB_MAX];
    size_t klen = strnlen(key, KEY_MAX_LEN);

    for (int i = 0; i < US_LEN; i++)
        blob[i] = (unsigned char)((uint64_t)us >> (56 - 8 * i));
    memcpy(blob + US_LEN, key, klen);
    tag_of(owner, tag, q, blob, US_LEN + klen, blob + US_LEN + klen);
    sodium_bin2base64(out, CURSOR_MAX, blob, US_LEN + klen + TAG_LEN,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static bool key_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
           c == '-';
}

int cursor_decode(const char *text, int64_t owner, const char *tag, const char *q, int64_t *us,
                  char key[KEY_MAX_LEN + 1])
{
    unsigned char blob[BLOB_MAX], want[TAG_LEN];
    size_t len = 0, klen;
    uint64_t v = 0;

    if (!text || strlen(text) >= CURSOR_MAX ||
        sodium_base642bin(blob, sizeof(blob), text, strlen(text), NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        len < US_LEN + 1 + TAG_LEN)
        return -EINVAL;
    klen = len - US_LEN - TAG_LEN;
    for (size_t i = 0; i < klen; i++)
        if (!key_char(blob[US_LEN + i]))
            return -EINVAL;
    tag_of(owner, tag, q, blob, US_LEN + klen, want);
    if (sodium_memcmp(want, blob + US_LEN + klen, TAG_LEN) != 0)
        return -EINVAL;
    for (int i = 0; i < US_LEN; i++)
        v = v << 8 | blob[i];
    *us = (int64_t)v;
    memcpy(key, blob + US_LEN, klen);
    key[klen] = '\0';
    return 0;
}
