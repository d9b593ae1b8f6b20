/* The server's side of kgs: a small local buffer of generated keys, refilled in batches over
 * the Unix socket. Thread-safe. When kgs cannot be reached and the buffer is empty,
 * keys_client_take() fails at once; it does not retry kgs for a short while after a failure,
 * so a dead kgs never makes creates wait. */
#ifndef SHORTENER_KEYS_CLIENT_H
#define SHORTENER_KEYS_CLIENT_H

#include <stddef.h>

#include "keyspace.h"

struct keys_client;

/* batch: keys asked for per round trip (1..KGS_MAX_TAKE). */
struct keys_client *keys_client_new(const char *socket_path, unsigned batch);
void keys_client_free(struct keys_client *kc);

/* Copies one unused key into out. Returns 0, or -EAGAIN when kgs is unavailable. A key
 * returned here is never returned again, whether or not the caller uses it. */
int keys_client_take(struct keys_client *kc, char out[GENERATED_KEY_LEN + 1]);

/* Asks kgs for PONG on a fresh connection. Returns 0 or -errno. */
int keys_client_ping(struct keys_client *kc);

size_t keys_client_buffered(struct keys_client *kc);

#endif
