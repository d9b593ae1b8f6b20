/* A stand-in Redis for unit tests: a thread serving one connection at a time on a Unix socket,
 * answering the few commands our modules send (AUTH, SELECT, PING, GET, MGET, SET, DEL, PUBLISH,
 * INCR, SCRIPT LOAD, EVALSHA, EVAL) from a small table, and logging every command it hears.
 * fake_redis_restart() drops the connection and forgets the scripts, as a restart would;
 * fake_redis_reply_error() makes the next commands answer with an error. */
#ifndef SHORTENER_FAKEREDIS_H
#define SHORTENER_FAKEREDIS_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define FAKE_LOG_MAX  256
#define FAKE_KEYS_MAX 64
#define FAKE_SHA      "0123456789012345678901234567890123456789"

struct fake_redis {
    char dir[64];
    char path[100];
    char password[64]; /* empty: AUTH is refused as Redis does without requirepass */
    int listen_fd;
    pthread_t thread;
    atomic_bool stopping;
    pthread_mutex_t lock;
    /* Under lock: */
    char log[FAKE_LOG_MAX][128];
    int nlog;
    char keys[FAKE_KEYS_MAX][80];
    char values[FAKE_KEYS_MAX][256];
    int nkeys;
    bool script_loaded;
    bool drop;      /* close the client connection at the next chance */
    char error[64]; /* answer the next errors_left commands with this error */
    int errors_left;
    int connections; /* accepted so far */
};

static inline void fake_log(struct fake_redis *f, int argc, char argv[][256])
{
    char line[128] = "";
    size_t o = 0;
    for (int i = 0; i < argc && o < sizeof(line) - 1; i++)
        o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s", i ? " " : "", argv[i]);
    if (f->nlog < FAKE_LOG_MAX)
        snprintf(f->log[f->nlog++], sizeof(f->log[0]), "%s", line);
}

static inline int fake_find(struct fake_redis *f, const char *key)
{
    for (int i = 0; i < f->nkeys; i++)
        if (strcmp(f->keys[i], key) == 0)
            return i;
    return -1;
}

/* The answer to one command, in RESP. Lock held. */
static inline void fake_answer(struct fake_redis *f, int argc, char argv[][256], char *out,
                               size_t cap)
{
    const char *cmd = argv[0];
    int k;

    fake_log(f, argc, argv);
    if (f->errors_left > 0) {
        snprintf(out, cap, "-%s\r\n", f->error);
        f->errors_left--;
    } else if (strcmp(cmd, "AUTH") == 0) {
        /* Quoting the password, which Redis does not do, shows that we hide it anyway. */
        if (!f->password[0] || strcmp(argv[argc - 1], f->password) != 0)
            snprintf(out, cap, "-WRONGPASS '%s' is not the password\r\n", argv[argc - 1]);
        else
            snprintf(out, cap, "+OK\r\n");
    } else if (strcmp(cmd, "PING") == 0) {
        snprintf(out, cap, "+PONG\r\n");
    } else if (strcmp(cmd, "GET") == 0) {
        k = fake_find(f, argv[1]);
        if (k < 0)
            snprintf(out, cap, "$-1\r\n");
        else
            snprintf(out, cap, "$%zu\r\n%s\r\n", strlen(f->values[k]), f->values[k]);
    } else if (strcmp(cmd, "MGET") == 0) {
        size_t n = (size_t)snprintf(out, cap, "*%d\r\n", argc - 1);
        for (int i = 1; i < argc && n < cap; i++) {
            k = fake_find(f, argv[i]);
            n += (size_t)(k < 0 ? snprintf(out + n, cap - n, "$-1\r\n")
                                : snprintf(out + n, cap - n, "$%zu\r\n%s\r\n", strlen(f->values[k]),
                                           f->values[k]));
        }
    } else if (strcmp(cmd, "SET") == 0) {
        bool nx = argc > 5 && strcmp(argv[argc - 1], "NX") == 0;
        k = fake_find(f, argv[1]);
        if (k >= 0 && nx) {
            snprintf(out, cap, "$-1\r\n");
            return;
        }
        if (k < 0 && f->nkeys < FAKE_KEYS_MAX)
            k = f->nkeys++;
        if (k >= 0) {
            snprintf(f->keys[k], sizeof(f->keys[k]), "%s", argv[1]);
            snprintf(f->values[k], sizeof(f->values[k]), "%s", argv[2]);
        }
        snprintf(out, cap, "+OK\r\n");
    } else if (strcmp(cmd, "DEL") == 0) {
        int n = 0;
        for (int i = 1; i < argc; i++)
            if ((k = fake_find(f, argv[i])) >= 0) {
                f->nkeys--;
                memcpy(f->keys[k], f->keys[f->nkeys], sizeof(f->keys[k]));
                memcpy(f->values[k], f->values[f->nkeys], sizeof(f->values[k]));
                n++;
            }
        snprintf(out, cap, ":%d\r\n", n);
    } else if (strcmp(cmd, "SCRIPT") == 0) {
        f->script_loaded = true;
        snprintf(out, cap, "$40\r\n" FAKE_SHA "\r\n");
    } else if (strcmp(cmd, "EVALSHA") == 0 && !f->script_loaded) {
        snprintf(out, cap, "-NOSCRIPT No matching script\r\n");
    } else if (strcmp(cmd, "EVALSHA") == 0 || strcmp(cmd, "EVAL") == 0) {
        snprintf(out, cap, "*2\r\n:%d\r\n:%d\r\n", argc, strcmp(cmd, "EVAL") == 0);
    } else {
        /* SELECT, PUBLISH, INCR and anything else. */
        snprintf(out, cap, strcmp(cmd, "SELECT") == 0 ? "+OK\r\n" : ":1\r\n");
    }
}

/* Reads one RESP array of bulk strings from buf[0..len); returns the bytes it took, 0 when
 * more are needed. */
static inline size_t fake_parse(const char *buf, size_t len, int *argc, char argv[][256], int max)
{
    const char *p = buf, *end = buf + len, *nl;
    int n;

    if (len < 1 || *p != '*' || !(nl = memchr(p, '\n', (size_t)(end - p))))
        return 0;
    n = atoi(p + 1);
    p = nl + 1;
    for (int i = 0; i < n; i++) {
        if (p >= end || *p != '$' || !(nl = memchr(p, '\n', (size_t)(end - p))))
            return 0;
        size_t l = (size_t)atoi(p + 1);
        p = nl + 1;
        if ((size_t)(end - p) < l + 2)
            return 0;
        if (i < max)
            snprintf(argv[i], 256, "%.*s", (int)(l < 255 ? l : 255), p);
        p += l + 2;
    }
    *argc = n < max ? n : max;
    return (size_t)(p - buf);
}

static inline void *fake_main(void *arg)
{
    struct fake_redis *f = arg;
    static char buf[1 << 16];
    char argv[16][256], out[512];
    size_t have = 0;
    int client = -1, argc;

    while (!atomic_load(&f->stopping)) {
        struct pollfd pfd[2] = {{.fd = f->listen_fd, .events = POLLIN},
                                {.fd = client, .events = POLLIN}};
        pthread_mutex_lock(&f->lock);
        if (f->drop && client >= 0) {
            close(client);
            client = -1;
            have = 0;
        }
        f->drop = false;
        pthread_mutex_unlock(&f->lock);
        pfd[1].fd = client;
        if (poll(pfd, 2, 20) <= 0)
            continue;
        if (pfd[0].revents & POLLIN) {
            int c = accept(f->listen_fd, NULL, NULL);
            if (c >= 0) {
                if (client >= 0)
                    close(client);
                client = c;
                have = 0;
                pthread_mutex_lock(&f->lock);
                f->connections++;
                pthread_mutex_unlock(&f->lock);
            }
            continue;
        }
        if (client < 0 || !(pfd[1].revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t n = read(client, buf + have, sizeof(buf) - have);
        if (n <= 0) {
            close(client);
            client = -1;
            have = 0;
            continue;
        }
        have += (size_t)n;
        size_t used;
        while ((used = fake_parse(buf, have, &argc, argv, 16)) > 0) {
            pthread_mutex_lock(&f->lock);
            fake_answer(f, argc, argv, out, sizeof(out));
            pthread_mutex_unlock(&f->lock);
            if (write(client, out, strlen(out)) < 0)
                break;
            memmove(buf, buf + used, have - used);
            have -= used;
        }
    }
    if (client >= 0)
        close(client);
    return NULL;
}

static inline int fake_redis_start(struct fake_redis *f, const char *password)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/fakeredis-XXXXXX");
    if (!mkdtemp(f->dir))
        return -errno;
    snprintf(f->path, sizeof(f->path), "%s/redis.sock", f->dir);
    snprintf(f->password, sizeof(f->password), "%s", password ? password : "");
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
    f->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (f->listen_fd < 0 || bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(f->listen_fd, 8) < 0)
        return -errno;
    pthread_mutex_init(&f->lock, NULL);
    atomic_init(&f->stopping, false);
    return pthread_create(&f->thread, NULL, fake_main, f) == 0 ? 0 : -EAGAIN;
}

static inline void fake_redis_stop(struct fake_redis *f)
{
    atomic_store(&f->stopping, true);
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
    unlink(f->path);
    rmdir(f->dir);
    pthread_mutex_destroy(&f->lock);
}

/* Drops the client's connection and forgets the scripts; waits until it is gone. */
static inline void fake_redis_restart(struct fake_redis *f)
{
    pthread_mutex_lock(&f->lock);
    f->drop = true;
    f->script_loaded = false;
    pthread_mutex_unlock(&f->lock);
    for (bool dropping = true; dropping;) {
        usleep(1000);
        pthread_mutex_lock(&f->lock);
        dropping = f->drop;
        pthread_mutex_unlock(&f->lock);
    }
}

static inline void fake_redis_reply_error(struct fake_redis *f, const char *error, int times)
{
    pthread_mutex_lock(&f->lock);
    snprintf(f->error, sizeof(f->error), "%s", error);
    f->errors_left = times;
    pthread_mutex_unlock(&f->lock);
}

/* The commands heard so far, joined by "|", and the log emptied. */
static inline void fake_redis_take_log(struct fake_redis *f, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    pthread_mutex_lock(&f->lock);
    for (int i = 0; i < f->nlog && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "|" : "", f->log[i]);
    f->nlog = 0;
    pthread_mutex_unlock(&f->lock);
}

static inline int fake_redis_connections(struct fake_redis *f)
{
    pthread_mutex_lock(&f->lock);
    int n = f->connections;
    pthread_mutex_unlock(&f->lock);
    return n;
}

#endif
