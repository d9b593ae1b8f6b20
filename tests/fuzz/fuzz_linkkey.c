/* libFuzzer driver for the key, alias and tag rules (linkkey.c) and the server's own reading of
 * them (request.c): every check agrees with the rules spelt out here. */
#include "request.c"

#include <ctype.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool key_chars(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isalnum(s[i]) || s[i] > 0x7f)
            if (s[i] != '_' && s[i] != '-')
                return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    bool chars = key_chars(data, size);
    bool is_key = linkkey_is_key(s, size);
    enum linkkey_check c = linkkey_check_alias(s, size);
    char err[256] = "", *alias;

    if (is_key != (chars && size >= 3 && size <= 64))
        __builtin_trap();
    if (request_is_key(s, size) != is_key)
        __builtin_trap();
    if (linkkey_is_tag(s, size) != (chars && size >= 1 && size <= 32))
        __builtin_trap();
    if (request_is_tag(s, size) != linkkey_is_tag(s, size))
        __builtin_trap();
    if ((c == LINKKEY_OK || c == LINKKEY_RESERVED) != is_key)
        __builtin_trap();
    if (c == LINKKEY_RESERVED) {
        bool found = false;
        for (size_t i = 0; i < linkkey_nreserved; i++)
            found |= strlen(linkkey_reserved[i]) == size &&
                     strncasecmp(linkkey_reserved[i], s, size) == 0;
        if (!found)
            __builtin_trap();
    }
    /* The NUL-terminated alias check agrees, unless a NUL cuts the bytes short. */
    alias = malloc(size + 1);
    if (!alias)
        return 0;
    memcpy(alias, data, size);
    alias[size] = '\0';
    if (!memchr(data, '\0', size)) {
        int rc = request_check_alias(alias, err, sizeof(err));
        if ((rc == 0) != (c == LINKKEY_OK))
            __builtin_trap();
        if (rc != 0 && err[0] == '\0')
            __builtin_trap();
    }
    free(alias);
    return 0;
}
