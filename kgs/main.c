/* bin/kgs: the key generation service. It claims ranges of one durable counter in
 * PostgreSQL (keycounter.h), each committed before use, maps every index of a range to a key
 * through a keyed permutation (keyperm.h), keeps those keys in memory and hands them out over
 * a Unix socket (include/kgs_proto.h), so creating a link never waits for key generation and
 * no two links, on any number of servers, ever get the same generated key. "Pre-generated"
 * means this: keys are made ahead of demand, in memory, from committed counter ranges.
 *
 * This file is the main thread: settings, start and stop, accepting connections and taking
 * SIGINT/SIGTERM through a signalfd. The refill thread (refill.c) owns the PostgreSQL
 * connection; each client connection has a thread (clients.c); clients are few: one per
 * shortener instance, plus probes. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "kgs.h"
#include "sock.h"
#include "kgs_proto.h"
#include "log.h"
#include "sdnotify.h"
#include "peers.h"

#define T struct kgs_config
static const struct config_opt options[] = {
    CONFIG_DATABASE_URL(T, database_url),
    CONFIG_KGS_SOCKET(T, kgs_socket),
    /* At least one largest TAKE, or such a request could never be answered. */
    CONFIG_INT_OPT(T, "KGS_MEMORY_KEYS", "kgs-memory-keys", KGS_MAX_TAKE, 10000000, "100000",
                   "claimed keys held in memory, lost on a crash; refilled when below half",
                   memory_keys),
    CONFIG_STR_OPT(T, "KGS_ALLOWED_UIDS", "kgs-allowed-uids", "",
                   "uids or user names that may take keys besides kgs's own and root "
                   "(comma-separated)",
                   allowed_uids),
    CONFIG_INT_OPT(T, "KGS_IDLE_TIMEOUT", "kgs-idle-timeout", 1, 86400, "60",
                   "seconds a client connection may stay silent before it is closed", idle_timeout),
    CONFIG_INT_OPT(T, "KGS_CLIENTS_PER_UID", "kgs-clients-per-uid", 1, 256, "64",
                   "connections one uid may hold at once", clients_per_uid),
    CONFIG_LOG_LEVEL(T, "info", log_level),
};
#undef T

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static void usage(void)
{
    printf("usage: kgs [--option value]...\n\n"
           "The key generation service: hands out unique random %d-character keys over a\n"
           "Unix socket. It needs PostgreSQL migrated with 'shortenerctl migrate'.\n\n",
           GENERATED_KEY_LEN);
    config_usage(stdout, options, NOPTIONS);
}

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
                sdnotify_stopping();
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

    rc = clients_init(k);
    if (rc < 0)
        return rc;

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

    rc = refill_start(k);
    if (rc < 0)
        return rc;
    log_info("serving keys on %s (up to %lld keys in memory)", k->cfg.kgs_socket,
             k->cfg.memory_keys);
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
    if (!refill_stop(k))
        clean = false;
    if (!clean)
        return false;
    if (k->buf_ready)
        keybuf_release(&k->buf);
    k->buf_ready = false;
    clients_release(k);
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

    /* Files it creates are its user's alone; the socket is opened up explicitly (sock.c). */
    umask(077);
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
    if (peers_parse(k.cfg.allowed_uids, geteuid(), &k.peers, err, sizeof(err)) < 0) {
        fprintf(stderr, "kgs: %s\n", err);
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
    /* The socket listens and the refill thread runs: clients get keys from here on. */
    sdnotify_ready("serving keys");
    serve(&k);
    status = 0;
out:
    if (!kgs_stop(&k))
        _exit(status); /* threads still hold the shared state: leave it to the kernel */
    config_release(options, NOPTIONS, &k.cfg);
    return status;
}
