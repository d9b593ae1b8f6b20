/* The client side of kgs: one thread per connection, reading requests and answering TAKE
 * from the in-memory buffer and PING directly. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h"
#include "keyspace.h"
#include "kgs.h"
#include "log.h"
#include "peers.h"
#include "sock.h"

/* A reply is at most ~80 KB; a client that cannot take that in 2 s is stalled. */
#define WRITE_TIMEOUT_MS 2000
/* Clients keep their connection open between batches; one that stays silent past
 * KGS_IDLE_TIMEOUT is closed (the server's client reconnects at once when a kept connection
 * fails), so that probes and forgotten clients do not each hold a thread. Shutdown wakes idle
 * readers with shutdown(2). */
#define MAX_CLIENTS   256
#define CLIENT_STACK  (512 * 1024)
#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)
#define REPLY_MAX                                                                                  \
    (sizeof("KEYS " STRINGIFY(KGS_MAX_TAKE) "\n") + (size_t)KGS_MAX_TAKE * KEYBUF_SLOT)

static void client_detach(struct client *c)
{
    struct kgs *k = c->k;

    pthread_mutex_lock(&k->clients_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        k->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    /* Closed under the lock, so the shutdown pass never touches a reused descriptor. */
    close(c->fd);
    if (--k->nclients == 0)
        pthread_cond_broadcast(&k->clients_gone);
    pthread_mutex_unlock(&k->clients_lock);
    free(c);
}

static int client_error(struct client *c, const char *code, const char *text)
{
    char line[KGS_LINE_MAX];
    int len = snprintf(line, sizeof(line), "ERR %s %s\n", code, text);
    return sock_write_all(c->fd, line, (size_t)len, WRITE_TIMEOUT_MS);
}

/* Answers TAKE n from reply, a REPLY_MAX buffer: the header and the keys are built in place
 * and leave in one write. Keys taken are never put back, even when the write fails: part of
 * them may have reached the client. */
static int client_take(struct client *c, unsigned n, char *reply)
{
    struct kgs *k = c->k;
    int hlen = snprintf(reply, REPLY_MAX, "KEYS %u\n", n);
    char(*keys)[KEYBUF_SLOT] = (char(*)[KEYBUF_SLOT])(reply + hlen);
    int rc;

    /* KGS_TAKE_WAIT_MS is under the client's timeout (keyspace.h): a client waiting on an
     * empty buffer gets a clear "ERR unavailable" rather than a timeout that costs it its
     * connection. */
    rc = keybuf_take(&k->buf, n, keys, KGS_TAKE_WAIT_MS);
    if (rc < 0) {
        const char *why = keybuf_stopping(&k->buf)   ? "kgs is shutting down"
                          : atomic_load(&k->db_down) ? "postgresql is down and no keys are left"
                                                     : "no keys ready yet";
        log_warn("client %lu: TAKE %u refused: %s", c->id, n, why);
        return client_error(c, "unavailable", why);
    }
    for (unsigned i = 0; i < n; i++)
        keys[i][GENERATED_KEY_LEN] = '\n';
    rc = sock_write_all(c->fd, reply, (size_t)hlen + (size_t)n * KEYBUF_SLOT, WRITE_TIMEOUT_MS);
    sodium_memzero(keys, (size_t)n * KEYBUF_SLOT);
    if (rc < 0)
        log_warn("client %lu: %u keys discarded, reply not delivered: %s", c->id, n, strerror(-rc));
    return rc;
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    struct sock_reader reader;
    struct kgs_request req;
    char line[KGS_LINE_MAX];
    char *reply = malloc(REPLY_MAX);
    int rc;

    log_debug("client %lu: connected", c->id);
    if (!reply) {
        client_error(c, "unavailable", "out of memory");
        goto out;
    }
    sock_reader_init(&reader, c->fd);
    for (;;) {
        rc = sock_read_line(&reader, line, sizeof(line), (int)c->k->cfg.idle_timeout * 1000);
        if (rc == -ETIMEDOUT) {
            log_debug("client %lu: idle for %lld s, closed", c->id, c->k->cfg.idle_timeout);
            break;
        }
        if (rc == -EMSGSIZE) {
            client_error(c, "bad_request", "request line too long");
            break;
        }
        if (rc < 0)
            break;
        if (kgs_parse_request(line, &req) < 0) {
            client_error(c, "bad_request",
                         "expected 'TAKE <1-" STRINGIFY(KGS_MAX_TAKE) ">' or 'PING'");
            break;
        }
        if (req.op == KGS_OP_PING)
            rc = sock_write_all(c->fd, "PONG\n", 5, WRITE_TIMEOUT_MS);
        else
            rc = client_take(c, req.count, reply);
        if (rc < 0)
            break;
    }
out:
    log_debug("client %lu: gone", c->id);
    free(reply);
    client_detach(c);
    return NULL;
}

void client_start(struct kgs *k, int fd)
{
    struct client *c = calloc(1, sizeof(*c));
    pthread_attr_t attr;
    pthread_t thread;
    int rc;

    if (!c) {
        close(fd);
        return;
    }
    c->k = k;
    c->fd = fd;
    rc = peers_uid_of(fd, &c->uid);
    if (rc < 0 || !peers_allowed(&k->peers, c->uid)) {
        if (rc < 0)
            log_warn("refusing a client whose uid is unknown: %s", strerror(-rc));
        else
            log_warn("refusing a client of uid %u: not kgs's own, root or in KGS_ALLOWED_UIDS",
                     (unsigned)c->uid);
        client_error(c, "forbidden", "this uid may not take keys");
        close(fd);
        free(c);
        return;
    }
    pthread_mutex_lock(&k->clients_lock);
    unsigned same_uid = 0;
    for (struct client *o = k->clients; o; o = o->next)
        same_uid += o->uid == c->uid;
    if (k->nclients >= MAX_CLIENTS || same_uid >= (unsigned)k->cfg.clients_per_uid) {
        bool all = k->nclients >= MAX_CLIENTS;
        pthread_mutex_unlock(&k->clients_lock);
        log_warn("refusing a client of uid %u: %u connections %s already", (unsigned)c->uid,
                 all ? MAX_CLIENTS : same_uid, all ? "in all" : "of that uid");
        client_error(c, "unavailable", "too many connections");
        close(fd);
        free(c);
        return;
    }
    c->id = ++k->next_client_id;
    c->next = k->clients;
    if (c->next)
        c->next->prev = c;
    k->clients = c;
    k->nclients++;
    pthread_mutex_unlock(&k->clients_lock);

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, CLIENT_STACK);
    rc = pthread_create(&thread, &attr, client_main, c);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        log_error("cannot start a client thread: %s", strerror(rc));
        client_detach(c);
    }
}

/* Blocked reads and writes fail at once after shutdown(2), which is what wakes them. */
bool clients_stop(struct kgs *k)
{
    struct timespec deadline;
    bool done;

    deadline_after(CLOCK_MONOTONIC, STOP_WAIT_MS, &deadline);
    pthread_mutex_lock(&k->clients_lock);
    for (struct client *c = k->clients; c; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    while (k->nclients > 0)
        if (pthread_cond_timedwait(&k->clients_gone, &k->clients_lock, &deadline) == ETIMEDOUT)
            break;
    done = k->nclients == 0;
    pthread_mutex_unlock(&k->clients_lock);
    return done;
}

int clients_init(struct kgs *k)
{
    pthread_condattr_t attr;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&k->clients_lock, NULL);
    pthread_cond_init(&k->clients_gone, &attr);
    pthread_condattr_destroy(&attr);
    k->clients_ready = true;
    return 0;
}

void clients_release(struct kgs *k)
{
    if (!k->clients_ready)
        return;
    pthread_cond_destroy(&k->clients_gone);
    pthread_mutex_destroy(&k->clients_lock);
    k->clients_ready = false;
}
