/* Unix-socket helpers with deadlines, shared by kgs and its clients. */
#ifndef SHORTENER_SOCK_H
#define SHORTENER_SOCK_H

#include <stddef.h>

/* Binds and listens on a Unix socket at path, mode 0660. A stale socket file left by a dead
 * process is replaced; a live one is not (returns -EADDRINUSE). Returns the fd or -errno. */
int sock_unix_listen(const char *path, int backlog);

/* Connects to a Unix socket within timeout_ms. Returns the fd (blocking, close-on-exec) or
 * -errno. */
int sock_unix_connect(const char *path, int timeout_ms);

/* Writes all of buf within timeout_ms. Returns 0 or -errno (-ETIMEDOUT). */
int sock_write_all(int fd, const void *buf, size_t len, int timeout_ms);

/* A buffered reader over a socket; the caller owns fd. */
struct sock_reader {
    int fd;
    size_t start, end;
    char buf[8192];
};

void sock_reader_init(struct sock_reader *r, int fd);

/* Reads one '\n'-terminated line into out (NUL-terminated, without the newline). Returns its
 * length, -EMSGSIZE when it does not fit in cap, -ECONNRESET at end of stream, -ETIMEDOUT or
 * another -errno. */
int sock_read_line(struct sock_reader *r, char *out, size_t cap, int timeout_ms);

/* Reads exactly len bytes. Returns 0 or a negative code as sock_read_line. */
int sock_read_exact(struct sock_reader *r, char *out, size_t len, int timeout_ms);

#endif
