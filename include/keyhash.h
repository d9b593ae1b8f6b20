/* The hash of every in-process table whose keys clients choose (aliases, client addresses):
 * SipHash-2-4, libsodium's crypto_shorthash, under a key drawn at random once per process.
 * Nobody outside can tell which keys collide, so nobody can pick keys that pile up in one
 * bucket and make every probe of a table long, however the table is probed. */
#ifndef SHORTENER_KEYHASH_H
#define SHORTENER_KEYHASH_H

#include <stddef.h>
#include <stdint.h>

/* The hash of data[0..len) under this process's key. Thread-safe; the first call draws the
 * key (calling sodium_init() itself if nobody has). */
uint64_t keyhash(const void *data, size_t len);

#endif
