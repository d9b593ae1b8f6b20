/* Link passwords: Argon2id (libsodium crypto_pwhash_str) hashing and verification for parked
 * requests, on threads of their own. A hash takes tens of milliseconds of CPU and 19 MiB of
 * memory by design, so no request thread ever runs one: a create with a password, or a
 * password form, parks its request and queues a job here, and done() resumes it.
 *
 * The cost is OWASP's recommended minimum for Argon2id (19 MiB, 2 passes, 1 lane): a guess
 * at a stolen hash costs an attacker as much, while a busy server still verifies dozens a
 * second per thread; wrong guesses through the form are limited besides (redirect.c). */
#ifndef SHORTENER_PWHASH_H
#define SHORTENER_PWHASH_H

#include <stdbool.h>
#include <stddef.h>

#include "jobqueue.h"

#define PWHASH_OPSLIMIT 2ULL
#define PWHASH_MEMLIMIT (19u * 1024 * 1024)
/* crypto_pwhash_STRBYTES: the longest hash string, with its NUL. */
#define PWHASH_STR_MAX 128

struct pwhash;

struct pwhash_job {
    const char *password; /* the submitter's; not copied */
    size_t len;
    /* To verify: the stored hash; NULL to hash the password into hash. */
    const char *verify_against;
    char hash[PWHASH_STR_MAX];
    int rc; /* set before done(): 0 (hashed, or the password is right), -EACCES (wrong), -ENOMEM */
    void (*done)(struct pwhash_job *job); /* once, on a hashing thread; last use of job */
    struct jobq_node node;
};

/* Starts nthreads hashing threads. NULL when out of memory or threads. */
struct pwhash *pwhash_start(unsigned nthreads);

/* Queues job; done() follows exactly once, possibly before this returns. -ESHUTDOWN once
 * closing (done() is then not called). */
int pwhash_submit(struct pwhash *p, struct pwhash_job *job);

/* Jobs waiting for a thread. */
size_t pwhash_queued(struct pwhash *p);

/* Refuses new jobs, finishes every queued one and stops the threads. */
void pwhash_close(struct pwhash *p);

/* Closes if need be and frees everything. */
void pwhash_free(struct pwhash *p);

/* What a job does, on the calling thread: for tests and the benchmark. */
void pwhash_run(struct pwhash_job *job);

#endif
