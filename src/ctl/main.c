/* bin/shortenerctl: schema migrations, API-key administration, expired-link cleanup and
 * imports.
 *
 * Each command is a row of commands[] at the end: its name, arguments, help, flags (a config
 * table, read by the same code as the settings) and handler. --help, the check for unknown
 * commands and the parsing of every command's flags are all driven by that table, and the
 * handlers only do the work. SQL lives in the data modules (apikey_store, cleanup, migrate,
 * import_store). */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apikey.h"
#include "apikey_store.h"
#include "cleanup.h"
#include "config.h"
#include "db.h"
#include "import.h"
#include "import_store.h"
#include "linkentry.h"
#include "log.h"
#include "migrate.h"
#include "numparse.h"
#include "ratelimit.h"
#include "redis.h"
#include "timefmt.h"

struct ctl_config {
    char *database_url;
    char *redis_url;
    char *redis_sentinels;
    char *redis_master_name;
    char *apikey_pepper;
    char *default_rate;
    char *base_url;
    long long port;
    long long stats_retention_days;
    char *log_level;
};

/* Where Redis is: REDIS_URL, followed through Sentinel when REDIS_SENTINELS is set. */
static int ctl_redis_target(const struct ctl_config *cfg, struct redis_target *t, char *err,
                            size_t errlen)
{
    char why[300];
    int rc = redis_target_parse(cfg->redis_url, t, why, sizeof(why));

    if (rc < 0) {
        snprintf(err, errlen, "invalid REDIS_URL %s", why);
        return rc;
    }
    /* Its messages name the settings themselves. */
    return redis_target_set_sentinels(t, cfg->redis_sentinels, cfg->redis_master_name, err, errlen);
}

#define T struct ctl_config
static const struct config_opt options[] = {
    CONFIG_DATABASE_URL(T, database_url),
    CONFIG_REDIS_URL(T, redis_url),
    CONFIG_REDIS_SENTINELS(T, redis_sentinels),
    CONFIG_REDIS_MASTER_NAME(T, redis_master_name),
    CONFIG_APIKEY_PEPPER(T, apikey_pepper),
    CONFIG_STR_OPT(T, "DEFAULT_RATE", "default-rate", "100/s",
                   "rate of keys created without --rate: N/s, N/min or N/h", default_rate),
    /* import refuses links to the service itself, as creates do: the server's BASE_URL, with
     * the same default. */
    CONFIG_STR_OPT(T, "BASE_URL", "base-url", "",
                   "scheme and host of short links, refused as import targets [default: "
                   "http://localhost:PORT]",
                   base_url),
    CONFIG_INT_OPT(T, "PORT", "port", 1, 65535, "8080", "HTTP port of shortener, for BASE_URL",
                   port),
    CONFIG_INT_OPT(T, "STATS_RETENTION_DAYS", "stats-retention-days", 1, STATS_RETENTION_MAX,
                   CONFIG_XSTR(STATS_RETENTION_DEFAULT),
                   "days visit statistics are kept; cleanup deletes older ones",
                   stats_retention_days),
    CONFIG_LOG_LEVEL(T, "warn", log_level),
};
#undef T

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

/* The flags of `apikey create`. */
struct create_opts {
    char *rate;      /* NULL: DEFAULT_RATE */
    long long burst; /* 0: the N of its rate */
    bool admin;
};

#define T struct create_opts
static const struct config_opt create_options[] = {
    CONFIG_FLAG_STR(T, "rate", NULL, "N/s, N/min or N/h; without it, DEFAULT_RATE", rate),
    CONFIG_FLAG_INT(T, "burst", 1, APIKEY_RATE_MAX, NULL,
                    "requests it may send at once; without it, the N of its rate", burst),
    CONFIG_FLAG_SWITCH(T, "admin", "may read and delete any link", admin),
};
#undef T

/* The parsed flags of the command at hand: its table fills its own member. */
union command_opts {
    struct create_opts create;
    struct cleanup_opts cleanup;
    struct import_opts import;
};

/* What a handler works with. The database is opened on first use, so that a command line
 * with a mistake in it is refused without one. */
struct ctl {
    const struct ctl_config *cfg;
    PGconn *conn;
};

/* The most positional arguments a command takes. */
#define CTL_MAX_ARGS 2

struct ctl_command {
    const char *name; /* one word, or two for a group ("apikey create") */
    const char *args; /* its positional arguments for --help, e.g. "NAME"; "" for none */
    int nargs;        /* how many it takes at most (0..CTL_MAX_ARGS); the handler checks */
    const char *help;
    const struct config_opt *opts; /* its flags, filling a member of union command_opts */
    size_t nopts;
    /* Returns the exit status: 0, 1 when the work failed, 2 for a usage error. */
    int (*run)(struct ctl *ctl, const union command_opts *o, int nargs, char **args);
};

/* Opens the database for the handler that needs it; NULL (said on stderr) when it cannot. */
static PGconn *ctl_db(struct ctl *ctl)
{
    char err[512];

    if (!ctl->conn) {
        ctl->conn = db_connect(ctl->cfg->database_url, "shortenerctl", 0, err, sizeof(err));
        if (!ctl->conn)
            fprintf(stderr, "shortenerctl: cannot connect to PostgreSQL: %s\n", err);
    }
    return ctl->conn;
}

static int cmd_migrate(struct ctl *ctl, const union command_opts *o, int nargs, char **args)
{
    PGconn *conn = ctl_db(ctl);
    char err[512];
    int n;

    (void)o;
    (void)nargs;
    (void)args;
    if (!conn)
        return 1;
    n = migrate_apply(conn, err, sizeof(err));
    if (n < 0) {
        fprintf(stderr, "shortenerctl: migrate failed: %s\n", err);
        return 1;
    }
    printf("schema up to date (%d migration%s applied)\n", n, n == 1 ? "" : "s");
    return 0;
}

static int cmd_apikey_create(struct ctl *ctl, const union command_opts *o, int nargs, char **args)
{
    const char *name = nargs > 0 ? args[0] : NULL;
    const char *rate = o->create.rate ? o->create.rate : ctl->cfg->default_rate;
    char key[APIKEY_LEN + 1], err[512], shown[32];
    unsigned char hash[APIKEY_HASH_LEN];
    int rate_limit, rate_window, rc = 1;
    int64_t id;
    PGconn *conn;

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
    /* The table bounds --burst to 1..APIKEY_RATE_MAX; 0 is "not given". */
    int burst = o->create.burst > 0 ? (int)o->create.burst : rate_limit;
    conn = ctl_db(ctl);
    if (!conn)
        return 1;
    apikey_generate(key);
    if (apikey_hash(key, strlen(key), ctl->cfg->apikey_pepper, hash) < 0)
        goto out;
    struct apikey_new new_key = {.name = name,
                                 .hash = hash,
                                 .rate_limit = rate_limit,
                                 .rate_window = rate_window,
                                 .burst = burst,
                                 .is_admin = o->create.admin};
    if (apikey_store_insert(conn, &new_key, &id, err, sizeof(err)) < 0) {
        fprintf(stderr, "shortenerctl: cannot store the key: %s\n", err);
        goto out;
    }
    apikey_format_rate(rate_limit, rate_window, shown, sizeof(shown));
    printf("created %sAPI key %" PRId64 " \"%s\" (rate %s, burst %d); it is shown only this "
           "once:\n",
           o->create.admin ? "admin " : "", id, name, shown, burst);
    printf("%s\n", key);
    rc = 0;
out:
    sodium_memzero(key, sizeof(key));
    sodium_memzero(hash, sizeof(hash));
    return rc;
}

static void print_time(int64_t t)
{
    char buf[TIMEFMT_LEN];

    if (t == 0) {
        fputs("-", stdout);
        return;
    }
    timefmt_format(t, buf);
    fputs(buf, stdout);
}

static int cmd_apikey_list(struct ctl *ctl, const union command_opts *o, int nargs, char **args)
{
    PGconn *conn = ctl_db(ctl);
    struct apikey_list list;
    char err[512], rate[32];
    int rc = 1;

    (void)o;
    (void)nargs;
    (void)args;
    if (!conn)
        return 1;
    if (apikey_store_list(conn, &list, err, sizeof(err)) < 0) {
        fprintf(stderr, "shortenerctl: cannot list keys: %s\n", err);
        goto out;
    }
    printf("id\tname\trate\tcreated\tlast_used\trevoked\n");
    for (size_t i = 0; i < list.n; i++) {
        const struct apikey_row *r = &list.rows[i];
        apikey_format_rate(r->rate_limit, r->rate_window, rate, sizeof(rate));
        printf("%" PRId64 "\t%s\t%s\t", r->id, r->name, rate);
        print_time(r->created_at);
        putchar('\t');
        print_time(r->last_used_at);
        putchar('\t');
        print_time(r->revoked_at);
        putchar('\n');
    }
    rc = 0;
out:
    apikey_list_release(&list);
    return rc;
}

/* Servers trust a key they confirmed for half a second; this counter, which they read with
 * every rate-limit check, tells them at once to look again. */
static void announce_revocation(const struct ctl_config *cfg)
{
    struct redis_target target;
    struct redis *r = NULL;
    char err[512];
    int rc = ctl_redis_target(cfg, &target, err, sizeof(err));

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

static int cmd_apikey_revoke(struct ctl *ctl, const union command_opts *o, int nargs, char **args)
{
    char err[512];
    long long id;
    bool already;
    PGconn *conn;
    int rc;

    (void)o;
    if (nargs != 1 || numparse_ll(args[0], 1, LLONG_MAX, 0, &id) < 0) {
        fprintf(stderr, "shortenerctl: apikey revoke needs one numeric ID (see apikey list)\n");
        return 2;
    }
    conn = ctl_db(ctl);
    if (!conn)
        return 1;
    rc = apikey_store_revoke(conn, id, &already, err, sizeof(err));
    if (rc == -ENOENT) {
        fprintf(stderr, "shortenerctl: no API key with id %s\n", args[0]);
        return 1;
    }
    if (rc < 0) {
        fprintf(stderr, "shortenerctl: cannot revoke: %s\n", err);
        return 1;
    }
    printf("API key %s %s\n", args[0], already ? "was already revoked" : "revoked");
    announce_revocation(ctl->cfg);
    return 0;
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

static int cmd_import(struct ctl *ctl, const union command_opts *o, int nargs, char **args)
{
    const struct import_opts *opts = &o->import;
    struct import_file *file = NULL;
    struct import_result res;
    /* As cleanup: signals looked at between batches, cache entries evicted after commits. */
    struct cleanup_ctx ctx = {0};
    struct redis_target target;
    char base_url[300], err[512];
    long long owner = 0;
    PGconn *conn;
    int rc, status = 1;

    if (nargs != 2) {
        fprintf(stderr,
                "shortenerctl: import needs a FORMAT (%s) and a FILE (/dev/stdin for "
                "standard input)\n",
                import_format_names);
        return 2;
    }
    if (opts->owner && numparse_ll(opts->owner, 1, LLONG_MAX, 0, &owner) < 0) {
        fprintf(stderr, "shortenerctl: import: --owner needs the numeric ID of an API key (see "
                        "apikey list)\n");
        return 2;
    }
    if (import_open(&file, args[0], args[1], err, sizeof(err)) < 0) {
        fprintf(stderr, "shortenerctl: import: %s\n", err);
        return 2;
    }
    if (ctl_redis_target(ctl->cfg, &target, err, sizeof(err)) < 0) {
        fprintf(stderr, "shortenerctl: %s\n", err);
        status = 2;
        goto out;
    }
    ctx.redis = redis_new(&target);
    if (!ctx.redis) {
        fprintf(stderr, "shortenerctl: out of memory\n");
        goto out;
    }
    conn = ctl_db(ctl);
    if (!conn)
        goto out;
    if (owner > 0) {
        rc = import_store_check_owner(conn, owner, err, sizeof(err));
        if (rc == -ENOENT || rc == -EKEYREVOKED) {
            fprintf(stderr, "shortenerctl: import: --owner: %s\n", err);
            status = 2;
            goto out;
        }
        if (rc < 0) {
            fprintf(stderr, "shortenerctl: import: cannot check --owner: %s\n", err);
            goto out;
        }
    }
    if (ctl->cfg->base_url[0])
        snprintf(base_url, sizeof(base_url), "%s", ctl->cfg->base_url);
    else
        snprintf(base_url, sizeof(base_url), "http://localhost:%lld", ctl->cfg->port);

    sigemptyset(&ctx.signals);
    sigaddset(&ctx.signals, SIGINT);
    sigaddset(&ctx.signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &ctx.signals, NULL);
    struct import_settings settings = {.owner = owner,
                                       .batch = opts->batch,
                                       .base_url = base_url,
                                       .progress = isatty(STDERR_FILENO) == 1,
                                       .report = stderr,
                                       .evict = cleanup_evict,
                                       .stop = cleanup_stop,
                                       .ctx = &ctx};
    rc = import_run(file, conn, &settings, &res, err, sizeof(err));
    if (res.end == IMPORT_STOPPED)
        fprintf(stderr,
                "shortenerctl: import: stopped by a signal after line %lld; run it again to "
                "import the rest (lines already imported are skipped)\n",
                res.line);
    if (rc < 0 && res.line == 0)
        fprintf(stderr, "shortenerctl: import: %s\n", err);
    else if (rc < 0)
        fprintf(stderr,
                "shortenerctl: import: %s; lines after %lld were not imported (run it again to "
                "import the rest)\n",
                err, res.line);
    if (res.not_evicted > 0)
        fprintf(stderr,
                "shortenerctl: import: redis unreachable (%s): %lld cache %s not evicted; a key "
                "looked up just before its import may answer 404 until NEGATIVE_TTL has passed\n",
                ctx.cache_error ? ctx.cache_error : "unknown error", res.not_evicted,
                plural(res.not_evicted, "entry", "entries"));
    printf("imported %lld, skipped %lld\n", res.imported, res.skipped);
    status = res.end == IMPORT_DONE ? 0 : 1;
out:
    import_close(file);
    redis_free(ctx.redis);
    return status;
}

static int cmd_cleanup(struct ctl *ctl, const union command_opts *o, int nargs, char **args)
{
    const struct ctl_config *cfg = ctl->cfg;
    struct cleanup_opts with_retention = o->cleanup;
    const struct cleanup_opts *opts = &with_retention;
    PGconn *conn = ctl_db(ctl);
    struct cleanup_result res;
    struct cleanup_ctx ctx = {0};
    struct redis_target target;
    char err[512];
    int rc;

    (void)nargs;
    (void)args;
    with_retention.stats_retention_days = cfg->stats_retention_days;
    if (!conn)
        return 1;
    if (opts->dry_run) {
        long long n;
        if (cleanup_count(conn, &n, err, sizeof(err)) < 0) {
            fprintf(stderr, "shortenerctl: cleanup: cannot count expired links: %s\n", err);
            return 1;
        }
        printf("cleanup: %lld expired %s would be deleted (dry run)\n", n,
               plural(n, "link", "links"));
        return 0;
    }
    if (ctl_redis_target(cfg, &target, err, sizeof(err)) < 0) {
        fprintf(stderr, "shortenerctl: %s\n", err);
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
    rc = cleanup_run(conn, opts, &hooks, &res, err, sizeof(err));
    printf("cleanup: deleted %lld expired %s in %lld %s in %.2f s%s\n", res.rows,
           plural(res.rows, "link", "links"), res.batches, plural(res.batches, "batch", "batches"),
           res.seconds,
           rc < 0                          ? " before failing"
           : res.end == CLEANUP_TIME_LIMIT ? " (time limit reached; the next run goes on)"
           : res.end == CLEANUP_STOPPED    ? " (stopped by a signal; the next run goes on)"
                                           : "");
    if (res.idempotency_rows > 0)
        printf("cleanup: deleted %lld idempotency %s older than 24 hours\n", res.idempotency_rows,
               plural(res.idempotency_rows, "record", "records"));
    if (res.stats_rows > 0)
        printf("cleanup: deleted %lld visit stats %s older than %lld days\n", res.stats_rows,
               plural(res.stats_rows, "row", "rows"), opts->stats_retention_days);
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

#define N(table) (sizeof(table) / sizeof((table)[0]))

static const struct ctl_command commands[] = {
    {"migrate", "", 0, "apply pending schema migrations", NULL, 0, cmd_migrate},
    {"apikey create", "NAME", 1, "create a key; prints it once, as the last line", create_options,
     N(create_options), cmd_apikey_create},
    {"apikey list", "", 0, "id, name, rate, created, last used, revoked", NULL, 0, cmd_apikey_list},
    {"apikey revoke", "ID", 1, "revoke a key at once (its ID from apikey list)", NULL, 0,
     cmd_apikey_revoke},
    {"cleanup", "", 0,
     "delete expired links and their cache entries, and visit stats past STATS_RETENTION_DAYS (for "
     "cron)",
     cleanup_options, CLEANUP_NOPTIONS, cmd_cleanup},
    {"import", "FORMAT FILE", 2, "import links with their keys: csv, yourls, shlink or bitly",
     import_options, IMPORT_NOPTIONS, cmd_import},
};

static void command_line(FILE *out, const struct ctl_command *c)
{
    char synopsis[64];

    snprintf(synopsis, sizeof(synopsis), "%s%s%s", c->name, *c->args ? " " : "", c->args);
    fprintf(out, "  %-28s %s\n", synopsis, c->help);
    config_usage_flags(out, c->opts, c->nopts, 6);
}

static void usage(void)
{
    printf("usage: shortenerctl [--option value]... COMMAND [ARGUMENT] [--flag [value]]...\n\n"
           "Commands:\n");
    for (size_t i = 0; i < N(commands); i++)
        command_line(stdout, &commands[i]);
    printf("\nSettings are read from the environment, then from SHORTENER_ENV_FILE or else\n"
           "<directory of this binary>/../var/env (written by 'make up') for variables the\n"
           "environment does not set, then flags. ./var/env is never read.\n\n");
    config_usage(stdout, options, NOPTIONS);
}

static void command_usage(const struct ctl_command *c)
{
    printf("usage: shortenerctl [--option value]... %s%s%s%s\n\n", c->name, *c->args ? " " : "",
           c->args, c->nopts ? " [--flag [value]]..." : "");
    command_line(stdout, c);
    printf("\nSettings: see shortenerctl --help.\n");
}

/* How many words of argv name command c (its one or two), or 0 when they do not. */
static int command_words(const struct ctl_command *c, int argc, char **argv)
{
    const char *name = c->name;
    int i = 0;

    while (*name) {
        size_t len = strcspn(name, " ");
        if (i >= argc || strlen(argv[i]) != len || strncmp(argv[i], name, len) != 0)
            return 0;
        name += len;
        name += *name == ' ';
        i++;
    }
    return i;
}

/* Reads the command's flags and arguments by its table, then runs it. */
static int command_run(const struct ctl_command *c, struct ctl *ctl, int argc, char **argv)
{
    union command_opts o;
    char *args[CTL_MAX_ARGS];
    char err[512];
    int nargs = 0, status, rc;

    memset(&o, 0, sizeof(o));
    rc = config_load_args(c->opts, c->nopts, &o, argc, argv, args,
                          c->nargs < CTL_MAX_ARGS ? c->nargs : CTL_MAX_ARGS, &nargs, err,
                          sizeof(err));
    if (rc == CONFIG_HELP) {
        command_usage(c);
        status = 0;
    } else if (rc < 0) {
        fprintf(stderr, "shortenerctl: %s: %s\n", c->name, err);
        status = 2;
    } else {
        status = c->run(ctl, &o, nargs, args);
    }
    config_release(c->opts, c->nopts, &o);
    return status;
}

int main(int argc, char **argv)
{
    struct ctl_config cfg = {0};
    struct ctl ctl = {.cfg = &cfg};
    char err[512];
    char env_file[PATH_MAX] = "";
    enum log_level level;
    int next, rc, status = 2;

    /* Whatever it writes (an export, say) is its user's alone. */
    umask(077);
    /* The deployment's settings (or the local stack's, so that after `make up` no flags are
     * needed): SHORTENER_ENV_FILE or the file beside the binary, never ./var/env, which would
     * let whoever owns the current directory choose the database a command runs against. */
    rc = config_env_file_path(env_file, sizeof(env_file));
    if (rc == 0)
        rc = config_load_env_file(env_file);
    if (rc < 0) {
        fprintf(stderr, "shortenerctl: cannot read %s: %s\n", env_file, strerror(-rc));
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
    for (size_t i = 0; i < N(commands); i++) {
        int words = command_words(&commands[i], argc - next, argv + next);
        if (words > 0) {
            status = command_run(&commands[i], &ctl, argc - next - words, argv + next + words);
            goto out;
        }
    }
    const char *sub = next + 1 < argc ? argv[next + 1] : "";
    /* "apikey --help": the group's commands are in the whole list. */
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        for (size_t i = 0; i < N(commands); i++)
            if (strncmp(commands[i].name, argv[next], strlen(argv[next])) == 0 &&
                commands[i].name[strlen(argv[next])] == ' ') {
                usage();
                status = 0;
                goto out;
            }
    }
    fprintf(stderr, "shortenerctl: unknown command '%s%s%s' (see --help)\n", argv[next],
            *sub ? " " : "", sub);
out:
    PQfinish(ctl.conn);
    config_release(options, NOPTIONS, &cfg);
    return status;
}
