/* bin/shortenerctl: schema migrations, API-key administration and expired-link cleanup. */
#include <errno.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apikey.h"
#include "cleanup.h"
#include "config.h"
#include "db.h"
#include "linkentry.h"
#include "log.h"
#include "migrate.h"
#include "ratelimit.h"
#include "redis.h"
#include "timefmt.h"

struct ctl_config {
    char *database_url;
    char *redis_url;
    char *apikey_pepper;
    char *default_rate;
    char *log_level;
};

#define T struct ctl_config
static const struct config_opt options[] = {
    CONFIG_DATABASE_URL(T, database_url),
    CONFIG_REDIS_URL(T, redis_url),
    CONFIG_APIKEY_PEPPER(T, apikey_pepper),
    CONFIG_STR_OPT(T, "DEFAULT_RATE", "default-rate", "100/s",
                   "rate of keys created without --rate: N/s, N/min or N/h", default_rate),
    CONFIG_LOG_LEVEL(T, "warn", log_level),
};
#undef T

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static void usage(void)
{
    printf("usage: shortenerctl [--option value]... COMMAND\n\n"
           "Commands:\n"
           "  migrate                                 apply pending schema migrations\n"
           "  apikey create NAME [--rate N/s|N/min|N/h] [--burst B] [--admin]\n"
           "                                          create a key; prints it once, last line.\n"
           "                                          --burst: requests it may send at once\n"
           "                                          (default: N); --admin: may read and\n"
           "                                          delete any link\n"
           "  apikey list                             id, name, rate, created, last used, "
           "revoked\n"
           "  apikey revoke ID                        revoke a key at once\n"
           "  cleanup [--batch N] [--max-seconds S] [--pause-ms MS] [--dry-run]\n"
           "                                          delete expired links, N per transaction\n"
           "                                          (default 5000, at most 100000), and their\n"
           "                                          cache entries; no new batch after S\n"
           "                                          seconds (default 0: no limit); a pause of\n"
           "                                          MS (default 20) after each full batch;\n"
           "                                          --dry-run only counts them\n\n"
           "Settings are read from the environment, then from SHORTENER_ENV_FILE or ./var/env\n"
           "(written by 'make up') for variables the environment does not set, then flags.\n\n");
    config_usage(stdout, options, NOPTIONS);
}

static int cmd_migrate(PGconn *conn)
{
    char err[512];
    int n = migrate_apply(conn, err, sizeof(err));
    if (n < 0) {
        fprintf(stderr, "shortenerctl: migrate failed: %s\n", err);
        return 1;
    }
    printf("schema up to date (%d migration%s applied)\n", n, n == 1 ? "" : "s");
    return 0;
}

static int cmd_apikey_create(PGconn *conn, const struct ctl_config *cfg, int argc, char **argv)
{
    const char *name = NULL, *rate = cfg->default_rate, *burst_text = NULL;
    char key[APIKEY_LEN + 1], hex[2 + APIKEY_HASH_LEN * 2 + 1] = "\\x", limit[16], window[16],
                                                            burst_buf[16];
    unsigned char hash[APIKEY_HASH_LEN];
    int rate_limit, rate_window, burst, rc = 1;
    bool admin = false;
    PGresult *res = NULL;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
            rate = argv[++i];
        else if (strncmp(argv[i], "--rate=", 7) == 0)
            rate = argv[i] + 7;
        else if (strcmp(argv[i], "--burst") == 0 && i + 1 < argc)
            burst_text = argv[++i];
        else if (strncmp(argv[i], "--burst=", 8) == 0)
            burst_text = argv[i] + 8;
        else if (strcmp(argv[i], "--admin") == 0)
            admin = true;
        else if (argv[i][0] != '-' && !name)
            name = argv[i];
        else {
            fprintf(stderr, "shortenerctl: apikey create: unexpected '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!name || !*name || strlen(name) > 200) {
        fprintf(stderr, "shortenerctl: apikey create needs a NAME of 1-200 characters\n");
        return 2;
    }
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            fprintf(stderr, "shortenerctl: the NAME may not contain control characters\n");
            return 2;
        }
    if (apikey_parse_rate(rate, &rate_limit, &rate_window) < 0) {
        fprintf(stderr, "shortenerctl: invalid rate '%s': use N/s, N/min or N/h\n", rate);
        return 2;
    }
    burst = rate_limit;
    if (burst_text && apikey_parse_burst(burst_text, &burst) < 0) {
        fprintf(stderr, "shortenerctl: invalid burst '%s': use a whole number from 1 to %d\n",
                burst_text, APIKEY_RATE_MAX);
        return 2;
    }
    apikey_generate(key);
    if (apikey_hash(key, strlen(key), cfg->apikey_pepper, hash) < 0)
        goto out;
    sodium_bin2hex(hex + 2, sizeof(hex) - 2, hash, sizeof(hash));
    snprintf(limit, sizeof(limit), "%d", rate_limit);
    snprintf(window, sizeof(window), "%d", rate_window);
    snprintf(burst_buf, sizeof(burst_buf), "%d", burst);
    const char *params[6] = {name, hex, limit, window, burst_buf, admin ? "t" : "f"};
    res = PQexecParams(conn,
                       "INSERT INTO api_keys (name, key_hash, rate_limit, rate_window, burst,"
                       " is_admin) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                       6, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "shortenerctl: cannot store the key: %s", PQerrorMessage(conn));
        goto out;
    }
    char shown[32];
    apikey_format_rate(rate_limit, rate_window, shown, sizeof(shown));
    printf("created %sAPI key %s \"%s\" (rate %s, burst %d); it is shown only this once:\n",
           admin ? "admin " : "", PQgetvalue(res, 0, 0), name, shown, burst);
    printf("%s\n", key);
    rc = 0;
out:
    sodium_memzero(key, sizeof(key));
    PQclear(res);
    return rc;
}

static void print_time(const char *epoch_text)
{
    char buf[TIMEFMT_LEN];
    if (!epoch_text || !*epoch_text) {
        fputs("-", stdout);
        return;
    }
    timefmt_format(strtoll(epoch_text, NULL, 10), buf);
    fputs(buf, stdout);
}

static int cmd_apikey_list(PGconn *conn)
{
    PGresult *res = PQexec(conn, "SELECT id, name, rate_limit, rate_window,"
                                 " floor(extract(epoch FROM created_at))::bigint,"
                                 " floor(extract(epoch FROM last_used_at))::bigint,"
                                 " floor(extract(epoch FROM revoked_at))::bigint"
                                 " FROM api_keys ORDER BY id");
    char rate[32];

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "shortenerctl: cannot list keys: %s", PQerrorMessage(conn));
        PQclear(res);
        return 1;
    }
    printf("id\tname\trate\tcreated\tlast_used\trevoked\n");
    for (int i = 0; i < PQntuples(res); i++) {
        apikey_format_rate(atoi(PQgetvalue(res, i, 2)), atoi(PQgetvalue(res, i, 3)), rate,
                           sizeof(rate));
        printf("%s\t%s\t%s\t", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), rate);
        print_time(PQgetvalue(res, i, 4));
        putchar('\t');
        print_time(PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5));
        putchar('\t');
        print_time(PQgetisnull(res, i, 6) ? NULL : PQgetvalue(res, i, 6));
        putchar('\n');
    }
    PQclear(res);
    return 0;
}

/* Servers trust a key they confirmed for half a second; this counter, which they read with
 * every rate-limit check, tells them at once to look again. */
static void announce_revocation(const struct ctl_config *cfg)
{
    struct redis_target target;
    struct redis *r = NULL;
    char err[512];
    int rc = redis_target_parse(cfg->redis_url, &target, err, sizeof(err));

    if (rc == 0) {
        r = redis_new(&target);
        rc = r ? redis_incr(r, RATELIMIT_REVOCATIONS_KEY) : -ENOMEM;
        if (rc < 0)
            snprintf(err, sizeof(err), "%s", r ? redis_error(r) : "out of memory");
    }
    if (rc < 0)
        fprintf(stderr,
                "shortenerctl: warning: could not tell the servers through Redis (%s); the key "
                "stops working on all of them within a second anyway\n",
                err);
    redis_free(r);
}

static int cmd_apikey_revoke(PGconn *conn, const struct ctl_config *cfg, int argc, char **argv)
{
    char *end;
    int rc = 1;

    if (argc != 1 || strtoll(argv[0], &end, 10) <= 0 || *end) {
        fprintf(stderr, "shortenerctl: apikey revoke needs one numeric ID (see apikey list)\n");
        return 2;
    }
    const char *params[1] = {argv[0]};
    PGresult *res = PQexecParams(conn,
                                 "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())"
                                 " WHERE id = $1 RETURNING revoked_at < now()",
                                 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "shortenerctl: cannot revoke: %s", PQerrorMessage(conn));
    } else if (PQntuples(res) == 0) {
        fprintf(stderr, "shortenerctl: no API key with id %s\n", argv[0]);
    } else {
        printf("API key %s %s\n", argv[0],
               strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? "was already revoked" : "revoked");
        announce_revocation(cfg);
        rc = 0;
    }
    PQclear(res);
    return rc;
}

struct cleanup_ctx {
    struct redis *redis;
    sigset_t signals;
    const char *cache_error; /* the first Redis failure, for the report */
};

static int cleanup_evict(void *arg, const char *const *keys, size_t n)
{
    struct cleanup_ctx *ctx = arg;
    int rc = linkentry_evict_many(ctx->redis, keys, n);
    if (rc < 0 && !ctx->cache_error)
        ctx->cache_error = redis_error(ctx->redis);
    return rc;
}

/* SIGINT and SIGTERM stay blocked during the run and are only looked at between batches, so
 * a batch in flight always finishes and is reported. */
static bool cleanup_stop(void *arg)
{
    sigset_t pending;
    (void)arg;
    if (sigpending(&pending) < 0)
        return false;
    return sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1;
}

static const char *plural(long long n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

static int cmd_cleanup(PGconn *conn, const struct ctl_config *cfg, int argc, char **argv)
{
    struct cleanup_opts opts;
    struct cleanup_result res;
    struct cleanup_ctx ctx = {0};
    struct redis_target target;
    char err[512];
    int rc;

    if (cleanup_parse_args(argc, argv, &opts, err, sizeof(err)) < 0) {
        fprintf(stderr, "shortenerctl: cleanup: %s\n", err);
        return 2;
    }
    if (opts.dry_run) {
        long long n;
        if (cleanup_count(conn, &n, err, sizeof(err)) < 0) {
            fprintf(stderr, "shortenerctl: cleanup: cannot count expired links: %s\n", err);
            return 1;
        }
        printf("cleanup: %lld expired %s would be deleted (dry run)\n", n,
               plural(n, "link", "links"));
        return 0;
    }
    if (redis_target_parse(cfg->redis_url, &target, err, sizeof(err)) < 0) {
        fprintf(stderr, "shortenerctl: invalid REDIS_URL %s\n", err);
        return 2;
    }
    ctx.redis = redis_new(&target);
    if (!ctx.redis) {
        fprintf(stderr, "shortenerctl: out of memory\n");
        return 1;
    }
    sigemptyset(&ctx.signals);
    sigaddset(&ctx.signals, SIGINT);
    sigaddset(&ctx.signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &ctx.signals, NULL);

    struct cleanup_hooks hooks = {.evict = cleanup_evict, .stop = cleanup_stop, .ctx = &ctx};
    rc = cleanup_run(conn, &opts, &hooks, &res, err, sizeof(err));
    printf("cleanup: deleted %lld expired %s in %lld %s in %.2f s%s\n", res.rows,
           plural(res.rows, "link", "links"), res.batches, plural(res.batches, "batch", "batches"),
           res.seconds,
           rc < 0                          ? " before failing"
           : res.end == CLEANUP_TIME_LIMIT ? " (time limit reached; the next run goes on)"
           : res.end == CLEANUP_STOPPED    ? " (stopped by a signal; the next run goes on)"
                                           : "");
    fflush(stdout);
    if (res.not_evicted > 0)
        fprintf(stderr,
                "shortenerctl: cleanup: redis unreachable (%s): %lld cache %s not evicted; they "
                "expire on their own, never later than their links\n",
                ctx.cache_error ? ctx.cache_error : "unknown error", res.not_evicted,
                plural(res.not_evicted, "entry", "entries"));
    if (rc < 0)
        fprintf(stderr, "shortenerctl: cleanup: %s\n", err);
    redis_free(ctx.redis);
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct ctl_config cfg = {0};
    PGconn *conn = NULL;
    char err[512];
    const char *env_file = getenv("SHORTENER_ENV_FILE");
    enum log_level level;
    int next, rc, status = 2;

    /* The local stack's settings, so that after `make up` no flags are needed. */
    rc = config_load_env_file(env_file ? env_file : "var/env");
    if (rc < 0) {
        fprintf(stderr, "shortenerctl: cannot read %s: %s\n", env_file ? env_file : "var/env",
                strerror(-rc));
        return 2;
    }
    rc = config_load(options, NOPTIONS, &cfg, argc, argv, &next, err, sizeof(err));
    if (rc == CONFIG_HELP) {
        usage();
        status = 0;
        goto out;
    }
    if (rc < 0) {
        fprintf(stderr, "shortenerctl: %s\n", err);
        goto out;
    }
    if (next >= argc) {
        usage();
        goto out;
    }
    if (log_level_parse(cfg.log_level, &level) < 0)
        level = LOG_WARN;
    log_init("shortenerctl", level);
    if (sodium_init() < 0) {
        fprintf(stderr, "shortenerctl: cannot initialise libsodium\n");
        goto out;
    }
    const char *cmd = argv[next];
    const char *sub = next + 1 < argc ? argv[next + 1] : "";
    bool known =
        strcmp(cmd, "migrate") == 0 || strcmp(cmd, "cleanup") == 0 ||
        (strcmp(cmd, "apikey") == 0 &&
         (strcmp(sub, "create") == 0 || strcmp(sub, "list") == 0 || strcmp(sub, "revoke") == 0));
    if (!known) {
        fprintf(stderr, "shortenerctl: unknown command '%s%s%s' (see --help)\n", cmd,
                *sub ? " " : "", sub);
        goto out;
    }
    conn = db_connect(cfg.database_url, "shortenerctl", 0, err, sizeof(err));
    if (!conn) {
        fprintf(stderr, "shortenerctl: cannot connect to PostgreSQL: %s\n", err);
        status = 1;
        goto out;
    }
    if (strcmp(cmd, "migrate") == 0)
        status = cmd_migrate(conn);
    else if (strcmp(cmd, "cleanup") == 0)
        status = cmd_cleanup(conn, &cfg, argc - next - 1, argv + next + 1);
    else if (strcmp(sub, "create") == 0)
        status = cmd_apikey_create(conn, &cfg, argc - next - 2, argv + next + 2);
    else if (strcmp(sub, "list") == 0)
        status = cmd_apikey_list(conn);
    else
        status = cmd_apikey_revoke(conn, &cfg, argc - next - 2, argv + next + 2);
out:
    PQfinish(conn);
    config_release(options, NOPTIONS, &cfg);
    return status;
}
