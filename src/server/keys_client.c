/* Fetching generated keys from kgs in batches and handing them out one at a time. */
#include "keys_client.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base62.h"
#include "deadline.h"
#include "keyspace.h"
#include "kgs_proto.h"
#include "log.h"
#include "sock.h"

#define KGS_BACKOFF_MS 250

struct keys_client {
    pthread_mutex_t lock;
    char *path;
    unsigned batch;
    int fd; /* kept open between batches; -1 when closed */
    struct sock_reader reader;
    char (*keys)[GENERATED_KEY_LEN + 1];
    size_t count;
    long long retry_at_ms;
    bool down_logged;
};

struct keys_client *keys_client_new(const char *socket_path, unsigned batch)
{
    struct keys_client *kc = calloc(1, sizeof(*kc));
    if (!kc)
        return NULL;
    kc->fd = -1;
    kc->batch = batch < 1 ? 1 : batch > KGS_MAX_TAKE ? KGS_MAX_TAKE : batch;
    kc->path = strdup(socket_path);
    kc->keys = calloc(kc->batch, sizeof(*kc->keys));
    if (!kc->path || !kc->keys || pthread_mutex_init(&kc->lock, NULL) != 0) {
        free(kc->path);
        free(kc->keys);
        free(kc);
        return NULL;
    }
    return kc;
}

void keys_client_free(struct keys_client *kc)
{
    if (!kc)
        return;
    if (kc->fd >= 0)
        close(kc->fd);
    pthread_mutex_destroy(&kc->lock);
    free(kc->path);
    free(kc->keys);
    free(kc);
}

static void drop_connection(struct keys_client *kc)
{
    if (kc->fd >= 0)
        close(kc->fd);
    kc->fd = -1;
}

/* One TAKE round trip into the (empty) buffer. Called with the lock held. */
static int refill(struct keys_client *kc)
{
    char line[KGS_LINE_MAX];
    struct kgs_reply rep;
    int rc, len;

    if (kc->fd < 0) {
        rc = sock_unix_connect(kc->path, KGS_CLIENT_TIMEOUT_MS);
        if (rc < 0)
            return rc;
        kc->fd = rc;
        sock_reader_init(&kc->reader, kc->fd);
    }
    len = kgs_format_take(line, sizeof(line), kc->batch);
    if (len < 0)
        return len;
    rc = sock_write_all(kc->fd, line, (size_t)len, KGS_CLIENT_TIMEOUT_MS);
    if (rc < 0)
        goto fail;
    rc = sock_read_line(&kc->reader, line, sizeof(line), KGS_CLIENT_TIMEOUT_MS);
    if (rc < 0)
        goto fail;
    if (kgs_parse_reply(line, &rep) < 0 || rep.kind == KGS_REPLY_PONG ||
        (rep.kind == KGS_REPLY_KEYS && rep.count != kc->batch)) {
        rc = -EPROTO;
        goto fail;
    }
    if (rep.kind == KGS_REPLY_ERR) {
        log_warn("kgs: %s", rep.error);
        return -EAGAIN; /* a well-formed refusal: the connection stays usable */
    }
    for (unsigned i = 0; i < rep.count; i++) {
        rc = sock_read_line(&kc->reader, line, sizeof(line), KGS_CLIENT_TIMEOUT_MS);
        if (rc < 0)
            goto fail;
        if (!base62_is_key(line, (size_t)rc)) {
            rc = -EPROTO;
            goto fail;
        }
        memcpy(kc->keys[kc->count++], line, GENERATED_KEY_LEN + 1);
    }
    return 0;
fail:
    /* Keys already read are kept: they were issued to us and are still unused. */
    drop_connection(kc);
    return rc;
}

int keys_client_take(struct keys_client *kc, char out[GENERATED_KEY_LEN + 1])
{
    int rc = 0;

    pthread_mutex_lock(&kc->lock);
    if (kc->count == 0) {
        if (deadline_now_ms() < kc->retry_at_ms) {
            rc = -EAGAIN;
            goto out;
        }
        /* A kept connection may be to a kgs that has since restarted: one failure on it
         * earns one fresh connection at once, before backing off. */
        bool reused = kc->fd >= 0;
        rc = refill(kc);
        if (kc->count == 0 && reused && kc->fd < 0)
            rc = refill(kc);
        if (kc->count == 0) {
            if (!kc->down_logged)
                log_warn("kgs: no keys available: %s", strerror(rc < 0 ? -rc : EAGAIN));
            kc->down_logged = true;
            kc->retry_at_ms = deadline_now_ms() + KGS_BACKOFF_MS;
            rc = -EAGAIN;
            goto out;
        }
        if (kc->down_logged)
            log_info("kgs: keys available again");
        kc->down_logged = false;
    }
    memcpy(out, kc->keys[--kc->count], GENERATED_KEY_LEN + 1);
    rc = 0;
out:
    pthread_mutex_unlock(&kc->lock);
    return rc;
}

int keys_client_ping(struct keys_client *kc)
{
    struct sock_reader r;
    char line[KGS_LINE_MAX];
    struct kgs_reply rep;
    int fd, rc;

    fd = sock_unix_connect(kc->path, KGS_CLIENT_TIMEOUT_MS);
    if (fd < 0)
        return fd;
    sock_reader_init(&r, fd);
    rc = sock_write_all(fd, "PING\n", 5, KGS_CLIENT_TIMEOUT_MS);
    if (rc == 0)
        rc = sock_read_line(&r, line, sizeof(line), KGS_CLIENT_TIMEOUT_MS);
    if (rc >= 0)
        rc = kgs_parse_reply(line, &rep) == 0 && rep.kind == KGS_REPLY_PONG ? 0 : -EPROTO;
    close(fd);
    return rc;
}

size_t keys_client_buffered(struct keys_client *kc)
{
    pthread_mutex_lock(&kc->lock);
    size_t n = kc->count;
    pthread_mutex_unlock(&kc->lock);
    return n;
}
