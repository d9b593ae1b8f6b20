/* The Idempotency-Key field, body fingerprints and replays (see idempotency.h). */
#include "idempotency.h"

#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "store.h"

_Static_assert(IDEMPOTENCY_HASH_LEN == crypto_hash_sha256_BYTES, "a SHA-256 fingerprint");
_Static_assert(IDEMPOTENCY_HASH_LEN == sizeof(((struct idempotency_record *)0)->body_hash),
               "store.h keeps the same fingerprint");

static bool visible(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e;
}

int idempotency_parse_key(const char *value, char key[IDEMPOTENCY_KEY_MAX + 1])
{
    size_t n = 0;

    if (!value)
        return -EINVAL;
    if (value[0] != '"') {
        for (; value[n]; n++) {
            if (n >= IDEMPOTENCY_KEY_MAX || !visible((unsigned char)value[n]))
                return -EINVAL;
            key[n] = value[n];
        }
        key[n] = '\0';
        return n > 0 ? 0 : -EINVAL;
    }
    for (const char *p = value + 1;; p++) {
        if (*p == '\0')
            return -EINVAL; /* no closing quote */
        if (*p == '"') {
            if (p[1] != '\0')
                return -EINVAL;
            break;
        }
        if (*p == '\\') {
            p++;
            if (*p != '"' && *p != '\\')
                return -EINVAL;
        }
        if (n >= IDEMPOTENCY_KEY_MAX || !visible((unsigned char)*p))
            return -EINVAL;
        key[n++] = *p;
    }
    key[n] = '\0';
    return n > 0 ? 0 : -EINVAL;
}

void idempotency_body_hash(const char *content_type, const char *body, size_t len,
                           unsigned char out[IDEMPOTENCY_HASH_LEN])
{
    crypto_hash_sha256_state st;
    const char *ct = content_type ? content_type : "";

    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)ct, strlen(ct) + 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)(body ? body : ""), body ? len : 0);
    crypto_hash_sha256_final(&st, out);
}

enum http_step idempotency_answer(struct http_request *r, const struct idempotency_record *rec,
                                  const unsigned char body_hash[IDEMPOTENCY_HASH_LEN])
{
    char location[sizeof("/api/v1/urls/") + sizeof(rec->link_key)];

    if (sodium_memcmp(rec->body_hash, body_hash, IDEMPOTENCY_HASH_LEN) != 0)
        return http_problem(r, 422, "idempotency-key-reused",
                            "this Idempotency-Key was used with a different request body");
    if (rec->status == 0 || !rec->response)
        return http_problem(r, 409, "idempotency-key-in-flight",
                            "a request with this Idempotency-Key is still being processed; "
                            "retry shortly");
    snprintf(location, sizeof(location), "/api/v1/urls/%s", rec->link_key);
    const char *headers[] = {"Location", location, "Idempotent-Replayed", "true", NULL};
    return http_send(r, (unsigned)rec->status, "application/json", rec->response,
                     strlen(rec->response), headers);
}
