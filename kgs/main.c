/* bin/kgs: the key generation service. It keeps a pool of random unclaimed keys in
 * PostgreSQL, claims them in large committed batches into memory, and hands them out over a
 * Unix socket (include/kgs_proto.h), so creating a link never waits for key generation and
 * no two links, on any number of servers, ever get the same generated key.
 *
 * Threads: main accepts connections and takes SIGINT/SIGTERM through a signalfd; one refill
 * thread owns the PostgreSQL connection; one thread per client connection (clients are few:
 * one per shortener instance, plus probes). */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "deadline.h"
#include "keybuf.h"
#include "keypool.h"
#include "kgs_proto.h"
#include "log.h"
#include "sock.h"

/* Below keys_client's 1 s read timeout, so a client waiting on an empty buffer gets a clear
 * "ERR unavailable" rather than a timeout that costs it its connection. */
#define TAKE_WAIT_MS 900
/* A reply is at most ~80 KB; a client that cannot take that in 2 s is stalled. */
#define WRITE_TIMEOUT_MS 2000
/* Clients keep their connection open between batches, and closing an idle one would turn
 * the client's next TAKE into an error; so there is no idle limit worth the name. Shutdown
 * wakes idle readers with shutdown(2). */
#define IDLE_TIMEOUT_MS 0x7fffffff
#define MAX_CLIENTS     256
#define CLIENT_STACK    (512 * 1024)
#define BACKOFF_MIN_MS  100
#define BACKOFF_MAX_MS  1000
/* How often the refill thread looks at the pool when nothing drains memory: other kgs
 * instances may be emptying it meanwhile. */
#define POOL_CHECK_MS 1000
#define STOP_WAIT_MS  3000
#define REPLY_MAX     (sizeof("KEYS 10000\n") + (size_t)KGS_MAX_TAKE * KEYBUF_SLOT)

struct kgs_config {
    char *database_url;
    char *kgs_socket;
    char *log_level;
    long long pool_size;
    long long memory_keys;
};

struct client {
    struct kgs *k;
    int fd;
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

    pthread_mutex_t clients_lock;
    pthread_cond_t clients_gone;
    bool clients_ready;
    struct client *clients;
    unsigned nclients;
    unsigned long next_client_id;
};

#define T struct kgs_config
static const struct config_opt options[] = {
    CONFIG_DATABASE_URL(T, database_url),
    CONFIG_KGS_SOCKET(T, kgs_socket),
    CONFIG_INT_OPT(T, "KGS_POOL_SIZE", "kgs-pool-size", 1000, 100000000, "200000",
                   "unclaimed keys kept generated in PostgreSQL; refilled when below half",
                   pool_size),
    /* At least one largest TAKE, or such a request could never be answered. */
    CONFIG_INT_OPT(T, "KGS_MEMORY_KEYS", "kgs-memory-keys", KGS_MAX_TAKE, 10000000, "20000",
                   "claimed keys held in memory, lost on a crash; refilled when below half",
                   memory_keys),
    CONFIG_LOG_LEVEL(T, "info", log_level),
};
#undef T

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static void usage(void)
{
    printf("usage: kgs [--option value]...\n\n"
           "The key generation service: hands out unique random %d-character keys over a\n"
           "Unix socket. It needs PostgreSQL migrated with 'shortenerctl migrate'.\n\n",
           BASE62_KEY_LEN);
    config_usage(stdout, options, NOPTIONS);
}

/* ---- refill thread ---- */

struct refill_state {
    PGconn *conn;
    bool outage_logged;
    unsigned failures;
    int backoff_ms;
    bool mem_filling, pool_filling;
    char (*batch)[KEYBUF_SLOT];
    char err[512];
};

/* One line when an outage starts, one when it ends; attempts in between only at debug. */
static void refill_failed(struct kgs *k, struct refill_state *st)
{
    if (st->conn) {
        PQfinish(st->conn);
        st->conn = NULL;
    }
    st->failures++;
    if (!st->outage_logged) {
        log_error("postgresql unavailable, retrying until it is back: %s", st->err);
        st->outage_logged = true;
    } else {
        log_debug("postgresql still unavailable: %s", st->err);
    }
    atomic_store(&k->db_down, true);
    st->backoff_ms = st->backoff_ms ? st->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (st->backoff_ms > BACKOFF_MAX_MS)
        st->backoff_ms = BACKOFF_MAX_MS;
    /* Level 0 is never reached: a sleep that keybuf_stop() cuts short. */
    keybuf_wait_below(&k->buf, 0, st->backoff_ms);
}

static void refill_recovered(struct kgs *k, struct refill_state *st)
{
    if (st->outage_logged)
        log_info("postgresql is back after %u failed attempts", st->failures);
    st->outage_logged = false;
    st->failures = 0;
    st->backoff_ms = 0;
    atomic_store(&k->db_down, false);
}

/* One pass: claim into memory if it is low, top the pool up if it is low. Returns 1 when it
 * did some work, 0 when both levels are fine, -EIO on a database error (reason in st->err).
 * Each level has hysteresis: below half it is filled right up to its target again. */
static int refill_pass(struct kgs *k, struct refill_state *st)
{
    size_t cap = (size_t)k->cfg.memory_keys;
    long long target = k->cfg.pool_size;
    size_t have = keybuf_count(&k->buf);
    bool pool_short = false, worked = false;
    long long pool;
    int rc;

    if (have < cap / 2)
        st->mem_filling = true;
    if (st->mem_filling) {
        size_t want = cap - have < KEYPOOL_MAX_BATCH ? cap - have : KEYPOOL_MAX_BATCH;
        if (want > 0) {
            rc = keypool_claim(st->conn, want, st->batch, st->err, sizeof(st->err));
            if (rc < 0)
                return rc;
            /* Only this thread puts, so the room counted above is still there. */
            size_t stored = keybuf_put(&k->buf, st->batch, (size_t)rc);
            if (stored < (size_t)rc)
                log_warn("discarded %zu claimed keys: memory full", (size_t)rc - stored);
            log_debug("claimed %d keys, %zu in memory", rc, have + stored);
            pool_short = (size_t)rc < want;
            have += stored;
            worked = rc > 0;
        }
        if (have >= cap)
            st->mem_filling = false;
    }
    pool = keypool_unclaimed(st->conn, st->err, sizeof(st->err));
    if (pool < 0)
        return (int)pool;
    if (pool < target / 2 || pool_short)
        st->pool_filling = true;
    else if (pool >= target)
        st->pool_filling = false;
    if (st->pool_filling) {
        long long want = target - pool < KEYPOOL_MAX_BATCH ? target - pool : KEYPOOL_MAX_BATCH;
        /* A short claim proves the pool dry, whatever the estimate says (gaps in seq). */
        if (pool_short || want < 1)
            want = KEYPOOL_MAX_BATCH;
        rc = keypool_generate(st->conn, (size_t)want, st->err, sizeof(st->err));
        if (rc < 0)
            return rc;
        log_debug("generated %d keys, about %lld unclaimed", rc, pool + rc);
        worked = true;
    }
    return worked ? 1 : 0;
}

static void *refill_main(void *arg)
{
    struct kgs *k = arg;
    struct refill_state st = {.mem_filling = true, .pool_filling = true};
    size_t low = (size_t)k->cfg.memory_keys / 2;

    st.batch = malloc(KEYPOOL_MAX_BATCH * sizeof(*st.batch));
    if (!st.batch) {
        log_error("refill: out of memory; no keys will be served");
        return NULL;
    }
    while (!keybuf_stopping(&k->buf)) {
        if (!st.conn) {
            st.conn = keypool_connect(k->cfg.database_url, st.err, sizeof(st.err));
            if (!st.conn) {
                refill_failed(k, &st);
                continue;
            }
        }
        int rc = refill_pass(k, &st);
        if (rc < 0) {
            refill_failed(k, &st);
            continue;
        }
        refill_recovered(k, &st);
        if (rc == 0)
            keybuf_wait_below(&k->buf, low, POOL_CHECK_MS);
    }
    if (st.conn)
        PQfinish(st.conn);
    free(st.batch);
    return NULL;
}

/* ---- clients ---- */

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

    rc = keybuf_take(&k->buf, n, keys, TAKE_WAIT_MS);
    if (rc < 0) {
        const char *why = keybuf_stopping(&k->buf)   ? "kgs is shutting down"
                          : atomic_load(&k->db_down) ? "postgresql is down and no keys are left"
                                                     : "no keys ready yet";
        log_warn("client %lu: TAKE %u refused: %s", c->id, n, why);
        return client_error(c, "unavailable", why);
    }
    for (unsigned i = 0; i < n; i++)
        keys[i][BASE62_KEY_LEN] = '\n';
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
        rc = sock_read_line(&reader, line, sizeof(line), IDLE_TIMEOUT_MS);
        if (rc == -EMSGSIZE) {
            client_error(c, "bad_request", "request line too long");
            break;
        }
        if (rc < 0)
            break;
        if (kgs_parse_request(line, &req) < 0) {
            client_error(c, "bad_request", "expected 'TAKE <1-10000>' or 'PING'");
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

static void client_start(struct kgs *k, int fd)
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
    pthread_mutex_lock(&k->clients_lock);
    if (k->nclients >= MAX_CLIENTS) {
        pthread_mutex_unlock(&k->clients_lock);
        log_warn("refusing a client: %d connections already", MAX_CLIENTS);
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

/* Wakes every client thread (blocked reads and writes fail at once) and waits for them to
 * leave. Returns false when some did not in time: their memory must then not be freed. */
static bool clients_stop(struct kgs *k)
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

/* ---- main thread ---- */

/* Accepts clients until SIGINT or SIGTERM arrives on the signalfd. */
static void serve(struct kgs *k)
{
    struct pollfd fds[2] = {{.fd = k->signal_fd, .events = POLLIN},
                            {.fd = k->listen_fd, .events = POLLIN}};

    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("poll: %s", strerror(errno));
            return;
        }
        if (fds[0].revents) {
            struct signalfd_siginfo si;
            if (read(k->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                log_info("received %s, stopping", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
                return;
            }
        }
        if (fds[1].revents) {
            int fd = accept4(k->listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                client_start(k, fd);
            } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* The pending connection stays queued: pause rather than spin on it. */
                log_error("accept: %s", strerror(errno));
                poll(NULL, 0, 100);
            }
        }
    }
}

static int kgs_start(struct kgs *k)
{
    pthread_condattr_t attr;
    struct stat st;
    sigset_t stop;
    int rc;

    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    /* Blocked before any thread exists, so every thread inherits the mask and the signals
     * are only ever read from the signalfd. */
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    k->signal_fd = signalfd(-1, &stop, SFD_CLOEXEC);
    if (k->signal_fd < 0) {
        log_error("signalfd: %s", strerror(errno));
        return -errno;
    }

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&k->clients_lock, NULL);
    pthread_cond_init(&k->clients_gone, &attr);
    pthread_condattr_destroy(&attr);
    k->clients_ready = true;

    rc = keybuf_init(&k->buf, (size_t)k->cfg.memory_keys);
    if (rc < 0) {
        log_error("cannot allocate %lld keys of memory: %s", k->cfg.memory_keys, strerror(-rc));
        return rc;
    }
    k->buf_ready = true;

    k->listen_fd = sock_unix_listen(k->cfg.kgs_socket, 128);
    if (k->listen_fd == -EADDRINUSE) {
        log_error("another kgs is already serving on %s", k->cfg.kgs_socket);
        return -EADDRINUSE;
    }
    if (k->listen_fd < 0) {
        log_error("cannot listen on %s: %s", k->cfg.kgs_socket, strerror(-k->listen_fd));
        return k->listen_fd;
    }
    if (stat(k->cfg.kgs_socket, &st) == 0) {
        k->sock_dev = st.st_dev;
        k->sock_ino = st.st_ino;
    }

    rc = pthread_create(&k->refill, NULL, refill_main, k);
    if (rc != 0) {
        log_error("cannot start the refill thread: %s", strerror(rc));
        return -rc;
    }
    k->refill_started = true;
    log_info("serving keys on %s (memory %lld keys, pool %lld keys)", k->cfg.kgs_socket,
             k->cfg.memory_keys, k->cfg.pool_size);
    return 0;
}

/* Undoes whatever kgs_start did. Returns false when threads outlived their deadline; then
 * the shared state is left allocated for them and the process should simply exit. */
static bool kgs_stop(struct kgs *k)
{
    struct stat st;
    bool clean = true;

    if (k->listen_fd >= 0) {
        /* Unlinked first, while nobody else can have bound the path; and only if the file
         * is still the socket we made. */
        if (stat(k->cfg.kgs_socket, &st) == 0 && st.st_dev == k->sock_dev &&
            st.st_ino == k->sock_ino)
            unlink(k->cfg.kgs_socket);
        close(k->listen_fd);
        k->listen_fd = -1;
    }
    if (k->buf_ready)
        keybuf_stop(&k->buf);
    if (k->clients_ready && !clients_stop(k)) {
        log_warn("some clients did not finish in time");
        clean = false;
    }
    if (k->refill_started) {
        struct timespec deadline;
        deadline_after(CLOCK_REALTIME, STOP_WAIT_MS, &deadline);
        /* A statement in flight may take a while; its claimed keys are lost, never reused. */
        if (pthread_timedjoin_np(k->refill, NULL, &deadline) != 0) {
            log_warn("the refill thread did not finish in time");
            clean = false;
        }
        k->refill_started = false;
    }
    if (!clean)
        return false;
    if (k->buf_ready)
        keybuf_release(&k->buf);
    k->buf_ready = false;
    if (k->clients_ready) {
        pthread_cond_destroy(&k->clients_gone);
        pthread_mutex_destroy(&k->clients_lock);
        k->clients_ready = false;
    }
    if (k->signal_fd >= 0)
        close(k->signal_fd);
    k->signal_fd = -1;
    return true;
}

int main(int argc, char **argv)
{
    struct kgs k = {.listen_fd = -1, .signal_fd = -1};
    char err[256];
    enum log_level level;
    int next, rc, status = 1;

    rc = config_load(options, NOPTIONS, &k.cfg, argc, argv, &next, err, sizeof(err));
    if (rc == CONFIG_HELP) {
        usage();
        status = 0;
        goto out;
    }
    if (rc < 0 || next < argc) {
        fprintf(stderr, "kgs: %s\n", rc < 0 ? err : "unexpected argument (see --help)");
        status = 2;
        goto out;
    }
    if (log_level_parse(k.cfg.log_level, &level) < 0) {
        fprintf(stderr, "kgs: LOG_LEVEL must be error, warn, info or debug\n");
        status = 2;
        goto out;
    }
    /* libsodium's default generator makes one getrandom(2) call per randombytes_uniform():
     * eight per generated key, a large part of the cost of a batch. Its own ChaCha20
     * generator, seeded from the kernel, is as unpredictable and costs nanoseconds. Its
     * caveats do not apply here: kgs never forks, and only the refill thread draws. */
    randombytes_set_implementation(&randombytes_internal_implementation);
    if (sodium_init() < 0) {
        fprintf(stderr, "kgs: cannot initialise libsodium\n");
        goto out;
    }
    log_init("kgs", level);
    if (kgs_start(&k) < 0)
        goto out;
    serve(&k);
    status = 0;
out:
    if (!kgs_stop(&k))
        _exit(status); /* threads still hold the shared state: leave it to the kernel */
    config_release(options, NOPTIONS, &k.cfg);
    return status;
}
