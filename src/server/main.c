/* bin/shortener: the HTTP API server. Reads its settings, starts serving and stops cleanly on
 * SIGINT or SIGTERM. */
#include <curl/curl.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "config.h"
#include "log.h"
#include "redis.h"
#include "sdnotify.h"
#include "server.h"

#define T            struct server_config
#define OPT_STR(...) CONFIG_STR_OPT(T, __VA_ARGS__)
#define OPT_INT(...) CONFIG_INT_OPT(T, __VA_ARGS__)

static const struct config_opt options[] = {
    CONFIG_DATABASE_URL(T, database_url),
    OPT_STR("DATABASE_READ_URL", "database-read-url", "",
            "a read replica's conninfo or URI, for redirect look-ups; empty: none",
            database_read_url),
    OPT_INT("DATABASE_READ_MAX_LAG_MS", "database-read-max-lag-ms", 0, 60000, "10000",
            "a link found on the replica is trusted only while the replica replayed a commit "
            "this recently (ms); else the primary is asked",
            database_read_max_lag_ms),
    CONFIG_REDIS_URL(T, redis_url),
    CONFIG_REDIS_SENTINELS(T, redis_sentinels),
    CONFIG_REDIS_MASTER_NAME(T, redis_master_name),
    OPT_STR("KGS_SOCKET", "kgs-socket", "/run/shortener/kgs.sock",
            "Unix socket of kgs; several, separated by commas, are tried in turn", kgs_socket),
    OPT_INT("PORT", "port", 1, 65535, "8080", "HTTP port", port),
    OPT_STR("LISTEN_ADDRESS", "listen-address",
            "::", "numeric address to listen on: :: (IPv6 and IPv4), 0.0.0.0, 127.0.0.1, ::1",
            listen_address),
    OPT_STR("BASE_URL", "base-url", "",
            "scheme and host of short links [default: http://localhost:PORT]", base_url),
    OPT_INT("DEFAULT_TTL", "default-ttl", 0, 3153600000LL, "31536000",
            "seconds a link lives when the caller names no expiry; 0 means forever", default_ttl),
    CONFIG_BOOL_OPT(T, "ALLOW_ANONYMOUS", "allow-anonymous", "0",
                    "let callers without an API key create links", allow_anonymous),
    CONFIG_BOOL_OPT(T, "RATE_LIMITS", "rate-limits", "1",
                    "enforce rate limits and send RateLimit headers; 0 when a gateway limits",
                    rate_limits),
    OPT_STR("ANONYMOUS_RATE", "anonymous-rate", "10/min",
            "rate of anonymous creates per client address: N/s, N/min or N/h", anonymous_rate),
    OPT_STR("AUTH_FAILURE_RATE", "auth-failure-rate", "60/min",
            "failed authentications allowed per client address: N/s, N/min or N/h",
            auth_failure_rate),
    OPT_STR("MISS_RATE", "miss-rate", "100/s",
            "look-ups of keys that do not exist allowed per client address (N/s, N/min or N/h); "
            "existing links are never limited",
            miss_rate),
    OPT_STR("TRUSTED_PROXIES", "trusted-proxies", "",
            "proxies whose X-Forwarded-For is believed: IPs or CIDRs, comma-separated",
            trusted_proxies),
    OPT_STR("CORS_ORIGINS", "cors-origins", "*",
            "origins whose pages may call the API from a browser: '*' or a comma-separated list "
            "of scheme://host[:port]",
            cors_origins),
    OPT_STR("SELF_HOSTS", "self-hosts", "",
            "other host names of this service (comma-separated): links to them are refused, "
            "as links to BASE_URL's host are",
            self_hosts),
    CONFIG_APIKEY_PEPPER(T, apikey_pepper),
    OPT_STR("SHORTENER_ENV", "environment", "development",
            "production or development; production warns about settings unsafe on the internet",
            environment),
    OPT_INT("THREADS", "threads", 1, 64, "2", "request threads (libmicrohttpd epoll pool)",
            threads),
    OPT_INT("CACHE_TTL", "cache-ttl", 1, 86400 * 30, "3600",
            "longest time in seconds a redirect stays in Redis", cache_ttl),
    OPT_INT("HOT_CACHE_ENTRIES", "hot-cache-entries", 0, 100000000, "2097152",
            "links cached in process in front of Redis; 0 turns the tier off", hot_cache_entries),
    OPT_INT("HOT_CACHE_MAX_AGE", "hot-cache-max-age", 1, 86400, "600",
            "longest time in seconds a link is served from the in-process cache",
            hot_cache_max_age),
    OPT_INT("NEGATIVE_TTL", "negative-ttl", 1, 3600, "5",
            "seconds an unknown key stays cached as unknown", negative_ttl),
    OPT_INT("REDIRECT_MAX_AGE", "redirect-max-age", 0, 86400 * 365, "300",
            "longest browser cache lifetime of a redirect, in seconds", redirect_max_age),
    OPT_INT("DEFAULT_REDIRECT_STATUS", "default-redirect-status", 301, 308, "301",
            "redirect status of links that name none: 301, 302, 307 or 308",
            default_redirect_status),
    OPT_INT("VISITS_FLUSH_MS", "visits-flush-ms", 10, 60000, "5000",
            "how often visit counts and stats are written to PostgreSQL, in milliseconds (a crash "
            "loses at most this much)",
            visits_flush_ms),
    CONFIG_BOOL_OPT(T, "ANALYTICS", "analytics", "1",
                    "record visit analytics for stats (referrer, country, browser, OS, device, "
                    "bot); 0 keeps only the visit counts",
                    analytics),
    OPT_STR("GEOIP_DB", "geoip-db", "",
            "MaxMind-format country database (.mmdb) for stats; empty: countries are unknown",
            geoip_db),
    OPT_INT("MAX_CONNECTIONS", "max-connections", 16, 65536, "4096",
            "concurrent HTTP connections, live counter streams included (the open-file limit "
            "is raised to fit)",
            max_connections),
    OPT_INT("PER_IP_CONNECTIONS", "per-ip-connections", 0, 1000000, "128",
            "concurrent HTTP connections from one IPv4 address or IPv6 /64 (trusted proxies "
            "excepted); 0: no limit",
            per_ip_connections),
    OPT_INT("CONNECTION_TIMEOUT", "connection-timeout", 1, 3600, "30",
            "seconds an HTTP connection may stay silent", connection_timeout),
    OPT_INT("REQUEST_TIMEOUT", "request-timeout", 1, 3600, "10",
            "seconds in which a whole request (headers and body) must arrive, counted from "
            "the connection's opening or the previous answer",
            request_timeout),
    OPT_INT("LIVE_INTERVAL_MS", "live-interval-ms", 100, 60000, "1000",
            "least time between two live counter events of one link, in milliseconds",
            live_interval_ms),
    OPT_INT("LIVE_KEEPALIVE_MS", "live-keepalive-ms", 100, 15000, "15000",
            "longest silence on a live counter stream before a comment line, in milliseconds",
            live_keepalive_ms),
    OPT_INT("LIVE_MAX_PER_ADDRESS", "live-max-per-address", 1, 65536, "32",
            "live counter streams one client address may hold open; past it 429",
            live_max_per_address),
    CONFIG_LOG_LEVEL(T, "info", log_level),
};
#undef OPT_INT
#undef OPT_STR
#undef T

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static void usage(void)
{
    printf("usage: shortener [--option value]...\n\n"
           "The shortener HTTP API server. It needs PostgreSQL (migrated with\n"
           "'shortenerctl migrate'), Redis and a running kgs.\n\n");
    config_usage(stdout, options, NOPTIONS);
}

static bool base_url_valid(const char *base_url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, base_url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] &&
              (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* Descriptors besides the HTTP connections: the listener, PostgreSQL and Redis connections of
 * every thread, the kgs socket, epoll and event fds, logs. */
#define FD_RESERVE 128

/* Each connection is a file descriptor: the soft limit goes up to the hard one, which must
 * leave room for MAX_CONNECTIONS. Returns 0, or -1 with the reason in err. */
static int raise_fd_limit(long long max_connections, char *err, size_t errlen)
{
    struct rlimit rl;
    unsigned long long need = (unsigned long long)max_connections + FD_RESERVE;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        snprintf(err, errlen, "cannot read the open-file limit: %s", strerror(errno));
        return -1;
    }
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        snprintf(err, errlen,
                 "MAX_CONNECTIONS=%lld needs %llu open files, but the hard limit is %llu: raise it "
                 "(ulimit -Hn, systemd LimitNOFILE=) or lower MAX_CONNECTIONS",
                 max_connections, need, (unsigned long long)rl.rlim_max);
        return -1;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            snprintf(err, errlen, "cannot raise the open-file limit to %llu: %s",
                     (unsigned long long)rl.rlim_max, strerror(errno));
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct server s = {0};
    char err[512];
    enum log_level level;
    sigset_t stop;
    int sig, next, rc, status = 1;

    /* glibc gives every thread that allocates an arena of its own, and raises its mmap
     * threshold each time a big block is freed, after which big blocks (the visit tables
     * swapped every second) stay in an arena instead of going back to the kernel: together
     * they left ~20 MB of RSS idle under load. A few arenas and a fixed threshold keep RSS
     * near what is actually in use. */
    mallopt(M_ARENA_MAX, 4);
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    /* Anything it ever writes (a socket, a dump) is its user's alone. */
    umask(077);

    rc = config_load(options, NOPTIONS, &s.cfg, argc, argv, &next, err, sizeof(err));
    if (rc == CONFIG_HELP) {
        usage();
        status = 0;
        goto out;
    }
    if (rc < 0 || next < argc) {
        fprintf(stderr, "shortener: %s\n", rc < 0 ? err : "unexpected argument (see --help)");
        status = 2;
        goto out;
    }
    if (log_level_parse(s.cfg.log_level, &level) < 0) {
        fprintf(stderr, "shortener: LOG_LEVEL must be error, warn, info or debug\n");
        status = 2;
        goto out;
    }
    log_init("shortener", level);
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_NOTHING) != CURLE_OK) {
        log_error("cannot initialise libsodium or libcurl");
        goto out;
    }
    /* Signals are taken synchronously by this thread; every thread started later inherits
     * the mask, so none of them is interrupted. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (raise_fd_limit(s.cfg.max_connections, err, sizeof(err)) < 0) {
        log_error("%s", err);
        status = 2;
        goto out;
    }

    if (strcmp(s.cfg.environment, "production") != 0 &&
        strcmp(s.cfg.environment, "development") != 0) {
        log_error("SHORTENER_ENV must be production or development, not '%s'", s.cfg.environment);
        status = 2;
        goto out;
    }
    /* Without a pepper, whoever reads api_keys (a backup, a replica) can test guessed keys
     * offline against the hashes; with one they also need the servers' environment. */
    if (strcmp(s.cfg.environment, "production") == 0 && !s.cfg.apikey_pepper[0])
        log_warn("APIKEY_PEPPER is empty: API-key hashes in the database are unkeyed; set 32+ "
                 "random characters, the same for every program");
    if (s.cfg.base_url[0] && !base_url_valid(s.cfg.base_url)) {
        log_error("BASE_URL '%s' must be an absolute http or https URL with a host",
                  s.cfg.base_url);
        status = 2;
        goto out;
    }
    /* Parsed once; every Redis connection is made from this. */
    if (redis_target_parse(s.cfg.redis_url, &s.redis_target, err, sizeof(err)) < 0) {
        log_error("REDIS_URL %s", err);
        status = 2;
        goto out;
    }
    if (redis_target_set_sentinels(&s.redis_target, s.cfg.redis_sentinels, s.cfg.redis_master_name,
                                   err, sizeof(err)) < 0) {
        log_error("%s", err);
        status = 2;
        goto out;
    }
    if (server_configure(&s, err, sizeof(err)) < 0) {
        log_error("%s", err);
        status = 2;
        goto out;
    }
    if (server_init(&s) < 0 || server_start(&s) < 0)
        goto out;
    /* Listening, with every thread running: connections are answered from here on. */
    sdnotify_ready("serving HTTP");
    sigwait(&stop, &sig);
    log_info("received %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    sdnotify_stopping();
    status = 0;
out:
    server_release(&s);
    config_release(options, NOPTIONS, &s.cfg);
    curl_global_cleanup();
    return status;
}
