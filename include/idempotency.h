/* Idempotent creates (draft-ietf-httpapi-idempotency-key-header): the Idempotency-Key field,
 * the fingerprint of a request's body, and the answer to a create whose key was used before.
 * The records themselves are in PostgreSQL (store.h: store_reserve_idempotency). */
#ifndef SHORTENER_IDEMPOTENCY_H
#define SHORTENER_IDEMPOTENCY_H

#include <stddef.h>

#include "http.h"

#define IDEMPOTENCY_KEY_MAX  255
#define IDEMPOTENCY_HASH_LEN 32

struct idempotency_record;

/* Reads the field's value into key: the draft's sf-string ("..." with \" and \\ escapes) or,
 * as most clients send it, the bare value; either way 1 to IDEMPOTENCY_KEY_MAX visible ASCII
 * characters. Returns 0 or -EINVAL (empty, too long, anything else). */
int idempotency_parse_key(const char *value, char key[IDEMPOTENCY_KEY_MAX + 1]);

/* SHA-256 over the content type (as sent, NULL as empty) and the body: two creates are "the
 * same request" when both agree. */
void idempotency_body_hash(const char *content_type, const char *body, size_t len,
                           unsigned char out[IDEMPOTENCY_HASH_LEN]);

/* Answers a create whose key another create holds (rec): that create's answer again when
 * the bodies agree and it is done, 409 while it is still in flight, 422 when the bodies
 * differ. */
enum http_step idempotency_answer(struct http_request *r, const struct idempotency_record *rec,
                                  const unsigned char body_hash[IDEMPOTENCY_HASH_LEN]);

#endif
