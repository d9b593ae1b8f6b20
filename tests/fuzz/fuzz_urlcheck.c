/* libFuzzer driver for lib/urlcheck.c (linked alongside): whatever it accepts must be a short,
 * printable ASCII http(s) URL that it accepts again unchanged, since that is what goes into
 * Location. */
#include "urlcheck.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum urlcheck_result r;
    char *norm = NULL, *again = NULL;
    size_t len;

    r = urlcheck_validate((const char *)data, size, "https://sho.rt", &norm);
    if (urlcheck_describe(r) == NULL)
        __builtin_trap();
    if (r != URLCHECK_OK) {
        if (norm)
            __builtin_trap();
        return 0;
    }
    len = strlen(norm);
    if (len == 0 || len > URLCHECK_MAX_LEN)
        __builtin_trap();
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)norm[i] <= 0x20 || (unsigned char)norm[i] >= 0x7f)
            __builtin_trap();
    if (strncmp(norm, "http://", 7) != 0 && strncmp(norm, "https://", 8) != 0)
        __builtin_trap();
    /* The normalised form is a fixed point. */
    if (urlcheck_validate(norm, len, "https://sho.rt", &again) != URLCHECK_OK ||
        strcmp(norm, again) != 0)
        __builtin_trap();
    free(again);
    free(norm);
    return 0;
}
