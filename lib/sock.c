/* Unix sockets: listen, connect and line-oriented reading, each bounded by a deadline. */
#include "sock.h"
#include "deadline.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - deadline_now_ms();
        struct pollfd p = {.fd = fd, .events = events};
        int rc;
        if (left <= 0)
            return -ETIMEDOUT;
        rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 0;
        if (rc == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

static int fill_addr(struct sockaddr_un *addr, const char *path)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(addr->sun_path))
        return -ENAMETOOLONG;
    memcpy(addr->sun_path, path, strlen(path) + 1);
    return 0;
}

int sock_unix_connect(const char *path, int timeout_ms)
{
    struct sockaddr_un addr;
    int fd, rc, flags;
    long long deadline = deadline_now_ms() + timeout_ms;

    rc = fill_addr(&addr, path);
    if (rc < 0)
        return rc;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    /* A Unix connect() never completes later: it succeeds, fails, or says EAGAIN when the
     * listener's backlog is full, which means "try again", not "in progress". */
    while (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            rc = -errno;
            goto fail;
        }
        if (deadline_now_ms() >= deadline) {
            rc = -ETIMEDOUT;
            goto fail;
        }
        poll(NULL, 0, 5);
    }
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        rc = -errno;
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return rc;
}

int sock_unix_listen(const char *path, int backlog)
{
    struct sockaddr_un addr;
    int fd, rc;

    rc = fill_addr(&addr, path);
    if (rc < 0)
        return rc;
    /* Only a socket nobody answers on may be removed: never steal a live daemon's socket. */
    rc = sock_unix_connect(path, 200);
    if (rc >= 0) {
        close(rc);
        return -EADDRINUSE;
    }
    /* ...and only a socket: a regular file at the path is somebody's mistake, not ours. */
    if (rc == -ECONNREFUSED) {
        struct stat st;
        if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
            return -EEXIST;
        unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || chmod(path, 0660) < 0 ||
        listen(fd, backlog) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int sock_write_all(int fd, const void *buf, size_t len, int timeout_ms)
{
    const char *p = buf;
    long long deadline = deadline_now_ms() + timeout_ms;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc < 0)
                return rc;
            continue;
        }
        return n < 0 ? -errno : -EIO;
    }
    return 0;
}

void sock_reader_init(struct sock_reader *r, int fd)
{
    r->fd = fd;
    r->start = r->end = 0;
}

static int fill(struct sock_reader *r, long long deadline)
{
    ssize_t n;
    int rc;

    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->end == sizeof(r->buf))
        return -EMSGSIZE;
    for (;;) {
        rc = wait_fd(r->fd, POLLIN, deadline);
        if (rc < 0)
            return rc;
        n = recv(r->fd, r->buf + r->end, sizeof(r->buf) - r->end, MSG_DONTWAIT);
        if (n > 0) {
            r->end += (size_t)n;
            return 0;
        }
        if (n == 0)
            return -ECONNRESET;
        if (errno != EINTR && errno != EAGAIN)
            return -errno;
    }
}

int sock_read_line(struct sock_reader *r, char *out, size_t cap, int timeout_ms)
{
    long long deadline = deadline_now_ms() + timeout_ms;

    for (;;) {
        char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (nl) {
            size_t len = (size_t)(nl - (r->buf + r->start));
            if (len >= cap)
                return -EMSGSIZE;
            memcpy(out, r->buf + r->start, len);
            out[len] = '\0';
            r->start += len + 1;
            return (int)len;
        }
        if (r->end - r->start >= cap)
            return -EMSGSIZE;
        int rc = fill(r, deadline);
        if (rc < 0)
            return rc;
    }
}

int sock_read_exact(struct sock_reader *r, char *out, size_t len, int timeout_ms)
{
    long long deadline = deadline_now_ms() + timeout_ms;

    while (len > 0) {
        size_t have = r->end - r->start;
        if (have > 0) {
            size_t take = have < len ? have : len;
            memcpy(out, r->buf + r->start, take);
            r->start += take;
            out += take;
            len -= take;
            continue;
        }
        int rc = fill(r, deadline);
        if (rc < 0)
            return rc;
    }
    return 0;
}
