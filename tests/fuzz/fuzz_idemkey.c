/* libFuzzer driver for the Idempotency-Key header (idempotency.c): any value is either a key of
 * 1-255 visible characters (a quoted one unescaped), which given back unquoted reads as
 * itself, or refused. */
#include "idempotency.c"

#include <stdint.h>
#include <stdlib.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* idempotency_answer sends through http.c, which is not linked: never called here. */
enum http_step http_send(struct http_request *r, unsigned status, const char *content_type,
                         const char *body, size_t len, const char *const *headers)
{
    (void)r, (void)status, (void)content_type, (void)body, (void)len, (void)headers;
    __builtin_trap();
}

enum http_step http_problem(struct http_request *r, unsigned status, const char *type_slug,
                            const char *detail_fmt, ...)
{
    (void)r, (void)status, (void)type_slug, (void)detail_fmt;
    __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char key[IDEMPOTENCY_KEY_MAX + 1], again[IDEMPOTENCY_KEY_MAX + 1];
    char *value = malloc(size + 1);
    size_t n;

    if (!value)
        return 0;
    memcpy(value, data, size);
    value[size] = '\0';
    if (idempotency_parse_key(value, key) == 0) {
        n = strlen(key);
        if (n == 0 || n > IDEMPOTENCY_KEY_MAX)
            __builtin_trap();
        for (size_t i = 0; i < n; i++)
            if (!visible((unsigned char)key[i]))
                __builtin_trap();
        /* A key given back without quotes reads as itself. */
        if (key[0] != '"' && (idempotency_parse_key(key, again) != 0 || strcmp(key, again) != 0))
            __builtin_trap();
    }
    free(value);
    return 0;
}
