/* Request-duration histograms (see latency.h). */
#include "latency.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define LATENCY_LABEL_(name, label) label,
static const char *const kind_labels[] = {LATENCY_KINDS(LATENCY_LABEL_)};

static const uint64_t bound_ns[LATENCY_BOUNDS] = {
    50000,    100000,   250000,    500000,    1000000,   2500000,    5000000,    10000000,
    25000000, 50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000};
static const char *const bound_text[LATENCY_BOUNDS] = {
    "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
    "0.025", "0.05",   "0.1",     "0.25",   "0.5",   "1",      "2.5",   "5"};

#define API "/api/v1/urls"

enum latency_kind latency_kind_of(const char *method, const char *path)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    size_t n = strlen(path);

    if (strncmp(path, API, sizeof(API) - 1) == 0) {
        const char *rest = path + sizeof(API) - 1;
        if (strcmp(method, "POST") == 0 &&
            (!*rest || strcmp(rest, "/") == 0 || strcmp(rest, "/bulk") == 0))
            return LK_CREATE;
        if (!get)
            return LK_OTHER;
        if (!*rest || strcmp(rest, "/") == 0)
            return LK_LIST;
        if (rest[0] != '/')
            return LK_OTHER;
        const char *slash = strchr(rest + 1, '/');
        if (!slash)
            return strcmp(rest, "/openapi.json") == 0 ? LK_OTHER : LK_READ;
        if (strcmp(slash, "/stats") == 0)
            return LK_STATS;
        if (strcmp(slash, "/live") == 0)
            return LK_LIVE;
        return LK_OTHER;
    }
    if (get && n > 1 && path[0] == '/' && !strchr(path + 1, '/') && strncmp(path, "/api", 4) != 0 &&
        strcmp(path, "/healthz") != 0 && strcmp(path, "/readyz") != 0 &&
        strcmp(path, "/metrics") != 0)
        return LK_REDIRECT;
    return LK_OTHER;
}

enum latency_kind latency_kind_for_tier(enum latency_tier tier)
{
    return tier == LT_HOT     ? LK_REDIRECT_HOT
           : tier == LT_REDIS ? LK_REDIRECT_REDIS
           : tier == LT_DB    ? LK_REDIRECT_DB
                              : LK_OTHER;
}

void latency_record(struct latency *l, enum latency_kind kind, uint64_t ns)
{
    unsigned b = 0;

    while (b < LATENCY_BOUNDS && ns > bound_ns[b])
        b++;
    /* One writer per block: a plain load and store, no locked instruction. */
    atomic_store_explicit(&l->counts[kind][b],
                          atomic_load_explicit(&l->counts[kind][b], memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&l->sum_ns[kind],
                          atomic_load_explicit(&l->sum_ns[kind], memory_order_relaxed) + ns,
                          memory_order_relaxed);
}

void latency_add(struct latency *into, const struct latency *from)
{
    for (unsigned k = 0; k < LK_COUNT; k++) {
        for (unsigned b = 0; b <= LATENCY_BOUNDS; b++)
            atomic_store_explicit(
                &into->counts[k][b],
                atomic_load_explicit(&into->counts[k][b], memory_order_relaxed) +
                    atomic_load_explicit(&from->counts[k][b], memory_order_relaxed),
                memory_order_relaxed);
        atomic_store_explicit(&into->sum_ns[k],
                              atomic_load_explicit(&into->sum_ns[k], memory_order_relaxed) +
                                  atomic_load_explicit(&from->sum_ns[k], memory_order_relaxed),
                              memory_order_relaxed);
    }
}

int latency_render(const struct latency *l, char *buf, size_t cap)
{
    size_t len = 0;
    int n;

#define PUT(...)                                                                                   \
    do {                                                                                           \
        n = snprintf(buf + len, cap - len, __VA_ARGS__);                                           \
        if (n < 0 || (size_t)n >= cap - len)                                                       \
            return -ENOSPC;                                                                        \
        len += (size_t)n;                                                                          \
    } while (0)

    if (cap == 0)
        return -ENOSPC;
    PUT("# HELP shortener_request_duration_seconds Time from a request's headers to the end of "
        "its answer, by kind (redirects by the tier that answered).\n"
        "# TYPE shortener_request_duration_seconds histogram\n");
    for (unsigned k = 0; k < LK_COUNT; k++) {
        unsigned long long total = 0;
        for (unsigned b = 0; b <= LATENCY_BOUNDS; b++) {
            total += atomic_load_explicit(&l->counts[k][b], memory_order_relaxed);
            PUT("shortener_request_duration_seconds_bucket{kind=\"%s\",le=\"%s\"} %llu\n",
                kind_labels[k], b < LATENCY_BOUNDS ? bound_text[b] : "+Inf", total);
        }
        unsigned long long ns = atomic_load_explicit(&l->sum_ns[k], memory_order_relaxed);
        PUT("shortener_request_duration_seconds_sum{kind=\"%s\"} %llu.%09llu\n", kind_labels[k],
            ns / 1000000000ULL, ns % 1000000000ULL);
        PUT("shortener_request_duration_seconds_count{kind=\"%s\"} %llu\n", kind_labels[k], total);
    }
#undef PUT
    return (int)len;
}
