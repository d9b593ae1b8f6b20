/* libFuzzer driver for the list cursor (cursor.c): any text is a cursor of this very list or
 * refused; a decoded cursor encodes back to the same text; a cursor of one list is refused by
 * another. */
#include "cursor.c"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), key[KEY_MAX_LEN + 1], back[CURSOR_MAX];
    int64_t us = 0;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (cursor_decode(text, 7, "tag", NULL, &us, key) == 0) {
        if (strlen(key) == 0 || strlen(key) > KEY_MAX_LEN)
            __builtin_trap();
        cursor_encode(7, "tag", NULL, us, key, back);
        if (strcmp(back, text) != 0)
            __builtin_trap();
    }
    /* Any bytes as a position: encoded, they decode to themselves, and only for this list. */
    if (size >= 9) {
        int64_t pos;
        char k[KEY_MAX_LEN + 1];
        size_t klen = size - 8 > KEY_MAX_LEN ? KEY_MAX_LEN : size - 8;
        memcpy(&pos, data, 8);
        for (size_t i = 0; i < klen; i++)
            k[i] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-"[data[8 + i] &
                                                                                      63];
        k[klen] = '\0';
        cursor_encode(1, NULL, "q", pos, k, back);
        if (cursor_decode(back, 1, NULL, "q", &us, key) != 0 || us != pos || strcmp(key, k) != 0)
            __builtin_trap();
        if (cursor_decode(back, 2, NULL, "q", &us, key) == 0 ||
            cursor_decode(back, 1, NULL, NULL, &us, key) == 0)
            __builtin_trap();
    }
    free(text);
    return 0;
}
