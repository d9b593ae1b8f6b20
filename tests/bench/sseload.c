/* sseload: many server-sent-event watchers of one URL, on one epoll thread, for `make bench`.
 *
 *   sseload PORT PATH N PER_ADDRESS
 *
 * Opens N connections to 127.0.0.1:PORT, PER_ADDRESS of them from each of 127.0.1.1,
 * 127.0.1.2, ... (the server limits watchers per client address), sends GET PATH on each, and
 * reads the event streams. Prints "ready" once every stream has sent its first event (or
 * "failed ..." and exits 1 when one is refused or a minute passes). Then, between SIGUSR1 and
 * SIGUSR2 (any number of such windows), it measures for each watcher the longest time without
 * an event (from the window's start, between events, and up to the window's end). On SIGTERM
 * it prints one line:
 *
 *   SSELOAD conns=N open=O events=E windows=W max_gap_ms=G
 *
 * and exits. Loopback only; every connection is made before anything is measured. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct watcher {
    int fd;
    int state; /* 0 connecting, 1 reading */
    long long last_event_ms;
    long long max_gap_ms;
    unsigned long events;
    /* The tail of the stream, to find "event:" split across reads. */
    char tail[8];
    size_t tail_len;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int open_one(struct watcher *w, int port, unsigned addr_index, int ep, unsigned idx)
{
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u32 = idx};

    w->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (w->fd < 0)
        return -errno;
    src.sin_addr.s_addr = htonl((127u << 24) | (1u << 8) | 1u) + htonl(addr_index);
    dst.sin_port = htons((uint16_t)port);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(w->fd, (struct sockaddr *)&src, sizeof(src)) < 0)
        return -errno;
    if (connect(w->fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 && errno != EINPROGRESS)
        return -errno;
    return epoll_ctl(ep, EPOLL_CTL_ADD, w->fd, &ev) < 0 ? -errno : 0;
}

/* Counts the events in what arrived; a 4xx/5xx status line fails the watcher. */
static int take(struct watcher *w, const char *data, size_t len, long long now, int measuring)
{
    char buf[4096 + sizeof(w->tail)];
    size_t n = w->tail_len;

    memcpy(buf, w->tail, n);
    memcpy(buf + n, data, len);
    n += len;
    if (w->events == 0 && n >= 12 && memcmp(buf, "HTTP/1.1 ", 9) == 0 && buf[9] != '2')
        return -1;
    for (size_t i = 0; i + 6 <= n; i++)
        if (memcmp(buf + i, "event:", 6) == 0) {
            if (measuring && now - w->last_event_ms > w->max_gap_ms)
                w->max_gap_ms = now - w->last_event_ms;
            w->last_event_ms = now;
            w->events++;
        }
    w->tail_len = n < 5 ? n : 5;
    memcpy(w->tail, buf + n - w->tail_len, w->tail_len);
    return 0;
}

int main(int argc, char **argv)
{
    struct rlimit rl;
    struct watcher *ws;
    struct epoll_event evs[512];
    char req[1024], buf[4096];
    sigset_t mask;
    int ep, sfd, port, reqlen;
    unsigned n, per, ready = 0, open_count = 0, windows = 0;
    unsigned long long events = 0;
    long long started, max_gap = 0;
    int measuring = 0, status = 0;

    if (argc != 5) {
        fprintf(stderr, "usage: sseload PORT PATH N PER_ADDRESS\n");
        return 2;
    }
    port = atoi(argv[1]);
    n = (unsigned)atoi(argv[3]);
    per = (unsigned)atoi(argv[4]);
    if (port <= 0 || n == 0 || per == 0)
        return 2;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    reqlen = snprintf(req, sizeof(req),
                      "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
                      argv[2]);
    ws = calloc(n, sizeof(*ws));
    ep = epoll_create1(EPOLL_CLOEXEC);
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (!ws || ep < 0 || sfd < 0)
        return 1;
    struct epoll_event sev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev);
    for (unsigned i = 0; i < n; i++) {
        int rc = open_one(&ws[i], port, i / per, ep, i);
        if (rc < 0) {
            printf("failed connection %u: %s\n", i, strerror(-rc));
            return 1;
        }
    }
    started = now_ms();
    for (;;) {
        int k = epoll_wait(ep, evs, 512, 1000);
        long long now = now_ms();
        if (ready < n && now - started > 60000) {
            printf("failed: %u of %u streams ready after 60 s\n", ready, n);
            fflush(stdout);
            return 1;
        }
        for (int e = 0; e < k; e++) {
            if (evs[e].data.u32 == UINT32_MAX) {
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof(si)) != sizeof(si))
                    continue;
                if (si.ssi_signo == SIGUSR1 && !measuring) {
                    measuring = 1;
                    windows++;
                    for (unsigned i = 0; i < n; i++)
                        ws[i].last_event_ms = now;
                } else if (si.ssi_signo == SIGUSR2 && measuring) {
                    measuring = 0;
                    for (unsigned i = 0; i < n; i++)
                        if (ws[i].fd >= 0 && now - ws[i].last_event_ms > ws[i].max_gap_ms)
                            ws[i].max_gap_ms = now - ws[i].last_event_ms;
                } else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                    goto report;
                }
                continue;
            }
            struct watcher *w = &ws[evs[e].data.u32];
            if (w->fd < 0)
                continue;
            if (w->state == 0 && (evs[e].events & EPOLLOUT)) {
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[e].data.u32};
                if (write(w->fd, req, (size_t)reqlen) != reqlen) {
                    printf("failed: cannot send a request: %s\n", strerror(errno));
                    return 1;
                }
                w->state = 1;
                open_count++;
                epoll_ctl(ep, EPOLL_CTL_MOD, w->fd, &ev);
            }
            if (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                ssize_t got;
                while ((got = read(w->fd, buf, sizeof(buf))) > 0) {
                    unsigned long before = w->events;
                    if (take(w, buf, (size_t)got, now, measuring) < 0) {
                        printf("failed: a watcher was refused: %.60s\n", buf);
                        return 1;
                    }
                    events += w->events - before;
                    if (before == 0 && w->events > 0 && ++ready == n) {
                        printf("ready\n");
                        fflush(stdout);
                    }
                }
                if (got == 0 || (got < 0 && errno != EAGAIN)) {
                    close(w->fd);
                    w->fd = -1;
                    open_count--;
                }
            }
        }
    }
report:
    for (unsigned i = 0; i < n; i++)
        if (ws[i].max_gap_ms > max_gap)
            max_gap = ws[i].max_gap_ms;
    printf("SSELOAD conns=%u open=%u events=%llu windows=%u max_gap_ms=%lld\n", n, open_count,
           events, windows, max_gap);
    fflush(stdout);
    free(ws);
    return status;
}
