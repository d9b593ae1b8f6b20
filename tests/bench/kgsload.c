/* Load generator for kgs alone, for `make bench`: CONNS threads, each with its own connection
 * to the kgs Unix socket, send "TAKE BATCH" back to back for SECONDS and check every key they
 * get. Prints one line: keys, seconds, keys/s, "unavailable" replies and malformed keys.
 *
 *   kgsload SOCKET SECONDS CONNS BATCH
 *
 * Exit status 0 when every reply was well formed, 1 otherwise. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base62.h"
#include "kgs_proto.h"
#include "sock.h"

#define MAX_CONNS  64
#define IO_TIMEOUT 5000

struct loader {
    const char *socket;
    double seconds;
    unsigned batch;
    pthread_t thread;
    unsigned long long keys;
    unsigned long long unavailable;
    unsigned long long bad;
    int error; /* 0 or the -errno that ended this connection early */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *loader_run(void *arg)
{
    struct loader *l = arg;
    struct sock_reader rd;
    char req[32], line[KGS_LINE_MAX];
    struct kgs_reply rep;
    int fd, n, rc;

    fd = sock_unix_connect(l->socket, IO_TIMEOUT);
    if (fd < 0) {
        l->error = fd;
        return NULL;
    }
    sock_reader_init(&rd, fd);
    n = kgs_format_take(req, sizeof(req), l->batch);
    if (n < 0) {
        l->error = n;
        goto out;
    }
    double end = now_s() + l->seconds;
    while (now_s() < end) {
        if ((rc = sock_write_all(fd, req, (size_t)n, IO_TIMEOUT)) < 0 ||
            (rc = sock_read_line(&rd, line, sizeof(line), IO_TIMEOUT)) < 0) {
            l->error = rc;
            goto out;
        }
        if (kgs_parse_reply(line, &rep) < 0 || rep.kind == KGS_REPLY_PONG) {
            l->bad++;
            l->error = -EPROTO;
            goto out;
        }
        if (rep.kind == KGS_REPLY_ERR) {
            /* The pool ran dry: that is part of what is measured, so wait and go on. */
            l->unavailable++;
            usleep(1000);
            continue;
        }
        for (unsigned i = 0; i < rep.count; i++) {
            if ((rc = sock_read_line(&rd, line, sizeof(line), IO_TIMEOUT)) < 0) {
                l->error = rc;
                goto out;
            }
            if (base62_is_key(line, strlen(line)))
                l->keys++;
            else
                l->bad++;
        }
    }
out:
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    static struct loader loaders[MAX_CONNS];
    unsigned long long keys = 0, unavailable = 0, bad = 0;
    int failed = 0;

    if (argc != 5) {
        fprintf(stderr, "usage: kgsload SOCKET SECONDS CONNS BATCH\n");
        return 2;
    }
    double seconds = strtod(argv[2], NULL);
    long conns = strtol(argv[3], NULL, 10);
    long batch = strtol(argv[4], NULL, 10);
    if (!(seconds > 0 && seconds <= 3600) || conns < 1 || conns > MAX_CONNS || batch < 1 ||
        batch > KGS_MAX_TAKE) {
        fprintf(stderr, "kgsload: SECONDS in (0, 3600], CONNS 1..%d, BATCH 1..%d\n", MAX_CONNS,
                KGS_MAX_TAKE);
        return 2;
    }
    double start = now_s();
    for (long i = 0; i < conns; i++) {
        loaders[i] =
            (struct loader){.socket = argv[1], .seconds = seconds, .batch = (unsigned)batch};
        if (pthread_create(&loaders[i].thread, NULL, loader_run, &loaders[i]) != 0) {
            fprintf(stderr, "kgsload: cannot start a thread\n");
            return 1;
        }
    }
    for (long i = 0; i < conns; i++) {
        pthread_join(loaders[i].thread, NULL);
        keys += loaders[i].keys;
        unavailable += loaders[i].unavailable;
        bad += loaders[i].bad;
        if (loaders[i].error) {
            fprintf(stderr, "kgsload: connection %ld: %s\n", i, strerror(-loaders[i].error));
            failed = 1;
        }
    }
    double elapsed = now_s() - start;
    printf("keys=%llu seconds=%.3f keys_per_s=%.0f unavailable=%llu bad=%llu\n", keys, elapsed,
           (double)keys / elapsed, unavailable, bad);
    return failed || bad ? 1 : 0;
}
