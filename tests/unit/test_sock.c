/* Unit tests for lib/sock.c: Unix-socket listen/connect and deadline-bound line reading,
 * on socketpairs and on real socket files in a private temporary directory. */
#include "../../lib/sock.c"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

static char dir[64];
static char path[128];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_sock.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/kgs.sock", dir);
    return 0;
}

static int remove_dir(void **state)
{
    (void)state;
    unlink(path);
    return rmdir(dir);
}

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void send_str(int fd, const char *s)
{
    assert_int_equal(sock_write_all(fd, s, strlen(s), 1000), 0);
}

/* A writer thread that sends its chunks with pauses, so the reader sees partial lines. */
struct dribble {
    int fd;
    const char *const *chunks;
};

static void *dribble_main(void *arg)
{
    struct dribble *d = arg;
    for (size_t i = 0; d->chunks[i]; i++) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (send(d->fd, d->chunks[i], strlen(d->chunks[i]), MSG_NOSIGNAL) < 0)
            break;
    }
    return NULL;
}

static void test_listen_connect_roundtrip(void **state)
{
    struct sock_reader r;
    char line[64];
    int l, c, a;
    (void)state;
    l = sock_unix_listen(path, 8);
    assert_true(l >= 0);
    c = sock_unix_connect(path, 1000);
    assert_true(c >= 0);
    a = accept(l, NULL, NULL);
    assert_true(a >= 0);

    send_str(c, "TAKE 3\n");
    sock_reader_init(&r, a);
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 1000), 6);
    assert_string_equal(line, "TAKE 3");
    send_str(a, "KEYS 3\n");
    sock_reader_init(&r, c);
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 1000), 6);
    assert_string_equal(line, "KEYS 3");
    close(a);
    close(c);
    close(l);
}

static void test_socket_file_and_fd_flags(void **state)
{
    struct stat st;
    int l, c, flags;
    (void)state;
    l = sock_unix_listen(path, 8);
    assert_true(l >= 0);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0660);
    assert_true(fcntl(l, F_GETFD) & FD_CLOEXEC);

    c = sock_unix_connect(path, 1000);
    assert_true(c >= 0);
    flags = fcntl(c, F_GETFL);
    assert_true(flags >= 0);
    assert_false(flags & O_NONBLOCK);
    assert_true(fcntl(c, F_GETFD) & FD_CLOEXEC);
    close(c);
    close(l);
}

static void test_stale_socket_replaced(void **state)
{
    struct sockaddr_un addr;
    int s, l, c;
    (void)state;
    /* What a killed kgs leaves behind: the file of a socket nobody listens on. */
    assert_int_equal(fill_addr(&addr, path), 0);
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(s >= 0);
    assert_int_equal(bind(s, (struct sockaddr *)&addr, sizeof(addr)), 0);
    close(s);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(sock_unix_connect(path, 200), -ECONNREFUSED);

    l = sock_unix_listen(path, 8);
    assert_true(l >= 0);
    c = sock_unix_connect(path, 1000);
    assert_true(c >= 0);
    close(c);
    close(l);
}

static void test_live_socket_kept(void **state)
{
    int l, c, a;
    (void)state;
    l = sock_unix_listen(path, 8);
    assert_true(l >= 0);
    assert_int_equal(sock_unix_listen(path, 8), -EADDRINUSE);
    /* The live daemon still owns its socket file and answers on it. */
    c = sock_unix_connect(path, 1000);
    assert_true(c >= 0);
    a = accept(l, NULL, NULL); /* the probe's connection */
    assert_true(a >= 0);
    close(a);
    a = accept(l, NULL, NULL);
    assert_true(a >= 0);
    send_str(c, "x");
    close(a);
    close(c);
    close(l);
}

static void test_regular_file_not_replaced(void **state)
{
    struct stat st;
    FILE *f = fopen(path, "w");
    int l;
    (void)state;
    assert_non_null(f);
    fputs("precious", f);
    fclose(f);
    l = sock_unix_listen(path, 8);
    assert_true(l < 0);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
}

/* With the listener's backlog full, a Unix connect() says EAGAIN: that is not a connection. */
static void test_connect_full_backlog(void **state)
{
    int l, fds[8], n = 0, rc = 0;
    (void)state;
    l = sock_unix_listen(path, 0);
    assert_true(l >= 0);
    for (n = 0; n < 8; n++) {
        rc = sock_unix_connect(path, 100);
        if (rc < 0)
            break;
        fds[n] = rc;
        /* Whatever connect returns must really be connected. */
        assert_int_equal(send(fds[n], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT), 1);
    }
    assert_true(n < 8);
    assert_true(rc == -ETIMEDOUT || rc == -EAGAIN);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    close(l);
}

static void test_connect_errors(void **state)
{
    char long_path[200];
    (void)state;
    assert_int_equal(sock_unix_connect(path, 200), -ENOENT);
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[0] = '/';
    long_path[sizeof(long_path) - 1] = '\0';
    assert_int_equal(sock_unix_connect(long_path, 200), -ENAMETOOLONG);
    assert_int_equal(sock_unix_listen(long_path, 8), -ENAMETOOLONG);
    assert_int_equal(sock_unix_listen("/nonexistent-dir/kgs.sock", 8), -ENOENT);
}

static void test_read_line_partial_writes(void **state)
{
    static const char *const chunks[] = {"KE", "YS 2\nabc", "defg\nhij", "klmn\n", "tail\n", NULL};
    struct dribble d;
    struct sock_reader r;
    pthread_t t;
    char line[64], key[8];
    int sv[2];
    (void)state;
    pair(sv);
    d.fd = sv[1];
    d.chunks = chunks;
    assert_int_equal(pthread_create(&t, NULL, dribble_main, &d), 0);
    sock_reader_init(&r, sv[0]);
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 2000), 6);
    assert_string_equal(line, "KEYS 2");
    assert_int_equal(sock_read_exact(&r, key, 8, 2000), 0);
    assert_memory_equal(key, "abcdefg\n", 8);
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 2000), 7);
    assert_string_equal(line, "hijklmn");
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 2000), 4);
    assert_string_equal(line, "tail");
    pthread_join(t, NULL);
    close(sv[0]);
    close(sv[1]);
}

static void test_partial_line_survives_timeout(void **state)
{
    struct sock_reader r;
    char line[64];
    int sv[2];
    (void)state;
    pair(sv);
    sock_reader_init(&r, sv[0]);
    send_str(sv[1], "PO");
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 50), -ETIMEDOUT);
    send_str(sv[1], "NG\n");
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 1000), 4);
    assert_string_equal(line, "PONG");
    close(sv[0]);
    close(sv[1]);
}

static void test_many_lines_in_one_write(void **state)
{
    struct sock_reader r;
    char line[64];
    int sv[2];
    (void)state;
    pair(sv);
    sock_reader_init(&r, sv[0]);
    send_str(sv[1], "a\nbb\n\nccc\n");
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 1000), 1);
    assert_string_equal(line, "a");
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 1000), 2);
    assert_string_equal(line, "bb");
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 1000), 0);
    assert_string_equal(line, "");
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 1000), 3);
    assert_string_equal(line, "ccc");
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 20), -ETIMEDOUT);
    close(sv[0]);
    close(sv[1]);
}

static void test_line_too_long(void **state)
{
    struct sock_reader r;
    char line[8];
    int sv[2];
    (void)state;
    pair(sv);
    sock_reader_init(&r, sv[0]);
    send_str(sv[1], "1234567\n");
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 1000), 7);
    assert_string_equal(line, "1234567");
    send_str(sv[1], "12345678\n");
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 1000), -EMSGSIZE);
    close(sv[0]);
    close(sv[1]);

    /* No newline yet, but already more than fits: said at once, not after the timeout. */
    pair(sv);
    sock_reader_init(&r, sv[0]);
    send_str(sv[1], "123456789");
    long long t0 = deadline_now_ms();
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 5000), -EMSGSIZE);
    assert_true(deadline_now_ms() - t0 < 2000);
    close(sv[0]);
    close(sv[1]);
}

static void test_line_longer_than_buffer(void **state)
{
    struct sock_reader *r = malloc(sizeof(*r));
    size_t n = sizeof(r->buf) + 100;
    char *big = malloc(n), *out = malloc(n + 1);
    int sv[2];
    (void)state;
    assert_non_null(r);
    assert_non_null(big);
    assert_non_null(out);
    pair(sv);
    sock_reader_init(r, sv[0]);
    memset(big, 'k', n);
    assert_int_equal(sock_write_all(sv[1], big, n, 1000), 0);
    assert_int_equal(sock_read_line(r, out, n + 1, 1000), -EMSGSIZE);
    close(sv[0]);
    close(sv[1]);
    free(r);
    free(big);
    free(out);
}

static void test_eof(void **state)
{
    struct sock_reader r;
    char line[64];
    int sv[2];
    (void)state;
    pair(sv);
    sock_reader_init(&r, sv[0]);
    close(sv[1]);
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 1000), -ECONNRESET);
    close(sv[0]);

    /* A last line without its newline is not a line. */
    pair(sv);
    sock_reader_init(&r, sv[0]);
    send_str(sv[1], "full\npart");
    close(sv[1]);
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 1000), 4);
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 1000), -ECONNRESET);
    close(sv[0]);

    pair(sv);
    sock_reader_init(&r, sv[0]);
    send_str(sv[1], "abc");
    close(sv[1]);
    assert_int_equal(sock_read_exact(&r, line, 7, 1000), -ECONNRESET);
    close(sv[0]);
}

static void test_timeout(void **state)
{
    struct sock_reader r;
    char line[64];
    long long t0, took;
    int sv[2];
    (void)state;
    pair(sv);
    sock_reader_init(&r, sv[0]);
    t0 = deadline_now_ms();
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 150), -ETIMEDOUT);
    took = deadline_now_ms() - t0;
    assert_true(took >= 140);
    assert_true(took < 2000);
    assert_int_equal(sock_read_exact(&r, line, 1, 30), -ETIMEDOUT);
    assert_int_equal(sock_read_line(&r, line, sizeof(line), 0), -ETIMEDOUT);
    close(sv[0]);
    close(sv[1]);
}

static void test_write_all_timeout_and_epipe(void **state)
{
    size_t n = 8 * 1024 * 1024;
    char *big = calloc(1, n);
    int sv[2], small = 4096;
    (void)state;
    assert_non_null(big);
    pair(sv);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    /* Nobody reads: the deadline ends it. */
    assert_int_equal(sock_write_all(sv[0], big, n, 100), -ETIMEDOUT);
    close(sv[1]);
    /* The peer is gone: an error, not SIGPIPE. */
    assert_int_equal(sock_write_all(sv[0], "x", 1, 100), -EPIPE);
    close(sv[0]);
    free(big);
}

struct drain {
    int fd;
    size_t got;
    unsigned sum;
};

static void *drain_main(void *arg)
{
    struct drain *d = arg;
    char buf[4096];
    ssize_t n;
    while ((n = recv(d->fd, buf, sizeof(buf), 0)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            d->sum = d->sum * 31 + (unsigned char)buf[i];
        d->got += (size_t)n;
    }
    return NULL;
}

static void test_write_all_large(void **state)
{
    size_t n = 4 * 1024 * 1024;
    char *big = malloc(n);
    struct drain d = {0};
    unsigned want = 0;
    pthread_t t;
    int sv[2];
    (void)state;
    assert_non_null(big);
    for (size_t i = 0; i < n; i++) {
        big[i] = (char)(i * 7 + i / 4096);
        want = want * 31 + (unsigned char)big[i];
    }
    pair(sv);
    d.fd = sv[1];
    assert_int_equal(pthread_create(&t, NULL, drain_main, &d), 0);
    assert_int_equal(sock_write_all(sv[0], big, n, 10000), 0);
    shutdown(sv[0], SHUT_WR);
    pthread_join(t, NULL);
    assert_int_equal(d.got, n);
    assert_int_equal(d.sum, want);
    close(sv[0]);
    close(sv[1]);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_listen_connect_roundtrip, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_socket_file_and_fd_flags, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_stale_socket_replaced, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_live_socket_kept, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_regular_file_not_replaced, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_connect_full_backlog, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_connect_errors, make_dir, remove_dir),
        cmocka_unit_test(test_read_line_partial_writes),
        cmocka_unit_test(test_partial_line_survives_timeout),
        cmocka_unit_test(test_many_lines_in_one_write),
        cmocka_unit_test(test_line_too_long),
        cmocka_unit_test(test_line_longer_than_buffer),
        cmocka_unit_test(test_eof),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_write_all_timeout_and_epipe),
        cmocka_unit_test(test_write_all_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
