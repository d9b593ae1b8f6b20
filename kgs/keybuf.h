/* The daemon's stock of claimed keys in memory. Every key in it is already committed as
 * claimed in PostgreSQL, so handing one out never needs a database round trip, and a crash
 * merely loses what is here: it is never handed out again by anybody.
 *
 * One producer (the refill thread) puts batches; any number of client threads take. All
 * functions are thread-safe. */
#ifndef KGS_KEYBUF_H
#define KGS_KEYBUF_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "keyspace.h"

/* One key and its NUL; 8 bytes, so a slot whose NUL becomes '\n' is one protocol line. */
#define KEYBUF_SLOT (GENERATED_KEY_LEN + 1)

struct keybuf {
    pthread_mutex_t lock;
    pthread_cond_t filled;  /* keys were added, or stopping */
    pthread_cond_t drained; /* keys were taken, or stopping */
    char (*slots)[KEYBUF_SLOT];
    size_t cap;
    size_t head;  /* oldest key: keys leave in the order they were stored */
    size_t count; /* keys stored, from head on, wrapping at cap */
    bool stopping;
};

/* Makes an empty buffer for cap (>= 1) keys. Returns 0 or -errno; on failure there is
 * nothing to release. */
int keybuf_init(struct keybuf *b, size_t cap);

/* Frees the slots; no thread may be using the buffer any more. Keys still in it are lost. */
void keybuf_release(struct keybuf *b);

/* Shuffles keys[0..n-1] in place (Fisher-Yates, randombytes_uniform), so the order keys are
 * handed out in says nothing about the order they were claimed in, then stores as many as
 * fit. Returns how many were stored: the rest must be discarded, never claimed again. Call
 * sodium_init() first. */
size_t keybuf_put(struct keybuf *b, char (*keys)[KEYBUF_SLOT], size_t n);

/* Moves exactly n keys into out[0..n-1], waiting up to timeout_ms for a refill when fewer
 * are stored. Returns 0, -EAGAIN when n keys did not become available in time (or the
 * buffer is stopping), or -EINVAL when n is 0 or more than the buffer could ever hold. Keys
 * taken are gone from the buffer, whatever the caller then does with them. */
int keybuf_take(struct keybuf *b, size_t n, char (*out)[KEYBUF_SLOT], int timeout_ms);

size_t keybuf_count(struct keybuf *b);

/* For the refill thread: waits until fewer than level keys are stored, the buffer is
 * stopping, or timeout_ms passed; returns the count then. level 0 makes it a sleep that
 * keybuf_stop() interrupts. */
size_t keybuf_wait_below(struct keybuf *b, size_t level, int timeout_ms);

/* Wakes every waiter; from now on keybuf_take fails with -EAGAIN and keybuf_wait_below
 * returns at once. */
void keybuf_stop(struct keybuf *b);

bool keybuf_stopping(struct keybuf *b);

#endif
