/* What the kgs daemon's three parts share: its settings, its state and the two kinds of
 * thread besides main: the refill thread (refill.c) and one thread per client (clients.c). */
#ifndef SHORTENER_KGS_H
#define SHORTENER_KGS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "keybuf.h"
#include "kgs_proto.h"
#include "peers.h"

/* How long stopping waits for a thread before leaving it to the kernel. */
#define STOP_WAIT_MS 3000

struct kgs_config {
    char *database_url;
    char *kgs_socket;
    char *log_level;
    char *allowed_uids;
    long long memory_keys;
    long long idle_timeout;    /* seconds a client may stay silent */
    long long clients_per_uid; /* connections one uid may hold */
};

struct kgs;

struct client {
    struct kgs *k;
    int fd;
    uid_t uid;
    unsigned long id;
    struct client *prev, *next;
};

struct kgs {
    struct kgs_config cfg;
    struct keybuf buf;
    bool buf_ready;
    int listen_fd;
    int signal_fd;
    dev_t sock_dev; /* the socket file we created: unlinked at exit only if still ours */
    ino_t sock_ino;
    pthread_t refill;
    bool refill_started;
    atomic_bool db_down; /* for the text of ERR unavailable */

    struct peers peers; /* who may connect */

    pthread_mutex_t clients_lock;
    pthread_cond_t clients_gone;
    bool clients_ready;
    struct client *clients;
    unsigned nclients;
    unsigned long next_client_id;
};

/* Starts the refill thread, which keeps enough keys in memory by claiming ranges of the
 * durable counter (keycounter.h) and mapping them through the keyed permutation (keyperm.h).
 * Returns 0 or -errno. */
int refill_start(struct kgs *k);

/* Waits for the refill thread to leave after keybuf_stop(). Returns false when it did not in
 * time. */
bool refill_stop(struct kgs *k);

/* Prepares the client list. Returns 0 or -errno. */
int clients_init(struct kgs *k);

/* Serves one accepted connection on a thread of its own; closes fd when refused. */
void client_start(struct kgs *k, int fd);

/* Wakes every client thread and waits for them to leave. Returns false when some did not in
 * time: their memory must then not be freed. */
bool clients_stop(struct kgs *k);

void clients_release(struct kgs *k);

#endif
