/* Base62 keys: the alphabet of generated short keys and API-key secrets. */
#ifndef SHORTENER_BASE62_H
#define SHORTENER_BASE62_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyspace.h"

/* Fills out[0..len-1] with uniformly random base62 digits (libsodium, no modulo bias) and
 * NUL-terminates it: out must hold len + 1 bytes. Call sodium_init() first. */
void base62_random(char *out, size_t len);

/* Writes the last len base62 digits of v, most significant first, and a NUL: out must hold
 * len + 1 bytes. Digit d is the d-th character of 0-9, A-Z, a-z. */
void base62_encode(uint64_t v, char *out, size_t len);

bool base62_is_digit(char c);

/* True when s[0..len-1] is exactly a generated key: GENERATED_KEY_LEN base62 digits. */
bool base62_is_key(const char *s, size_t len);

#endif
