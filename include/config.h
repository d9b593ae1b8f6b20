/* One table of settings per program, and one per subcommand, serves --help, the environment
 * and flags alike.
 *
 * Precedence: built-in default < environment variable < command-line flag.
 *
 * An option without an environment variable (env NULL) exists only as a flag, as a
 * subcommand's options do. Two things follow for such an option: a CONFIG_BOOL one is a switch
 * that takes no value ("--dry-run", never "--dry-run=1"); and one without a default (def NULL)
 * is left as the caller set the field when the flag is not given, so the caller can tell
 * (a NULL string, say). */
#ifndef SHORTENER_CONFIG_H
#define SHORTENER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum config_type { CONFIG_STR, CONFIG_INT, CONFIG_BOOL };

struct config_opt {
    const char *env;  /* environment variable, e.g. "DATABASE_URL"; NULL: a flag only */
    const char *flag; /* long flag without dashes, e.g. "database-url" */
    enum config_type type;
    long long min, max; /* bounds for CONFIG_INT */
    const char *def;    /* default as text; NULL means unset (empty string) */
    const char *help;
    bool secret;   /* never printed, not even its default */
    size_t offset; /* where the value lives in the program's config struct: char *, long long
                      or bool according to type */
};

/* Table entries for a field of config struct T. */
#define CONFIG_STR_OPT(T, env, flag, def, help, field)                                             \
    {                                                                                              \
        env, flag, CONFIG_STR, 0, 0, def, help, false, offsetof(T, field)                          \
    }
#define CONFIG_SECRET_OPT(T, env, flag, help, field)                                               \
    {                                                                                              \
        env, flag, CONFIG_STR, 0, 0, "", help, true, offsetof(T, field)                            \
    }
#define CONFIG_INT_OPT(T, env, flag, lo, hi, def, help, field)                                     \
    {                                                                                              \
        env, flag, CONFIG_INT, lo, hi, def, help, false, offsetof(T, field)                        \
    }
#define CONFIG_BOOL_OPT(T, env, flag, def, help, field)                                            \
    {                                                                                              \
        env, flag, CONFIG_BOOL, 0, 0, def, help, false, offsetof(T, field)                         \
    }

/* Table entries for a subcommand's flags, which have no environment variable. An integer
 * flag's default is text, like every default: CONFIG_XSTR(CLEANUP_BATCH_DEFAULT). */
#define CONFIG_FLAG_STR(T, flag, def, help, field) CONFIG_STR_OPT(T, NULL, flag, def, help, field)
#define CONFIG_FLAG_INT(T, flag, lo, hi, def, help, field)                                         \
    CONFIG_INT_OPT(T, NULL, flag, lo, hi, def, help, field)
#define CONFIG_FLAG_SWITCH(T, flag, help, field) CONFIG_BOOL_OPT(T, NULL, flag, "0", help, field)

#define CONFIG_XSTR(x)   CONFIG_QUOTE_(x)
#define CONFIG_QUOTE_(x) #x

/* The settings several programs share, spelt once. */
#define CONFIG_DATABASE_URL(T, field)                                                              \
    CONFIG_STR_OPT(T, "DATABASE_URL", "database-url", "dbname=shortener",                          \
                   "PostgreSQL conninfo or URI", field)
#define CONFIG_REDIS_URL(T, field)                                                                 \
    CONFIG_STR_OPT(T, "REDIS_URL", "redis-url", "redis://127.0.0.1:6379",                          \
                   "Redis cache: redis://host:port or unix:///path", field)
#define CONFIG_KGS_SOCKET(T, field)                                                                \
    CONFIG_STR_OPT(T, "KGS_SOCKET", "kgs-socket", "/run/shortener/kgs.sock",                       \
                   "Unix socket of the key generation service", field)
#define CONFIG_REDIS_SENTINELS(T, field)                                                           \
    CONFIG_STR_OPT(T, "REDIS_SENTINELS", "redis-sentinels", "",                                    \
                   "Sentinels that find the Redis master: host:port,... (REDIS_URL then gives "    \
                   "only the password and database)",                                              \
                   field)
#define CONFIG_REDIS_MASTER_NAME(T, field)                                                         \
    CONFIG_STR_OPT(T, "REDIS_MASTER_NAME", "redis-master-name", "",                                \
                   "the name the sentinels monitor the Redis master by", field)
#define CONFIG_APIKEY_PEPPER(T, field)                                                             \
    CONFIG_SECRET_OPT(T, "APIKEY_PEPPER", "apikey-pepper",                                         \
                      "secret mixed into API-key hashes; the same for every program", field)
#define CONFIG_LOG_LEVEL(T, def, field)                                                            \
    CONFIG_STR_OPT(T, "LOG_LEVEL", "log-level", def, "error, warn, info or debug", field)

#define CONFIG_HELP 1

/* Fills cfg from defaults, then the environment, then flags in argv[1..] up to the first
 * argument that is not a flag; *next gets that argument's index. "--name=value" and
 * "--name value" both work. Returns 0, CONFIG_HELP when --help or -h was given, or -EINVAL
 * with a message in err. String values are heap copies owned by cfg: free them with
 * config_release(). */
int config_load(const struct config_opt *opts, size_t n, void *cfg, int argc, char **argv,
                int *next, char *err, size_t errlen);

/* The same for a subcommand's arguments argv[0..argc): flags may come before, between or
 * after its positional arguments, which are left for the caller: the first maxargs of them
 * are pointed at from args[], in order, and *nargs (may be NULL when maxargs is 0) says how
 * many there were. One more is -EINVAL, as is any word that starts with '-' but names no flag
 * of the table. "--" ends the flags: every word after it is positional. Returns 0, CONFIG_HELP
 * for --help or -h, or -EINVAL with a message in err; release with config_release(). */
int config_load_args(const struct config_opt *opts, size_t n, void *cfg, int argc, char **argv,
                     char **args, int maxargs, int *nargs, char *err, size_t errlen);

void config_release(const struct config_opt *opts, size_t n, void *cfg);

/* Sets one option from text; used by config_load and by tests. */
int config_set(const struct config_opt *opt, void *cfg, const char *value, char *err,
               size_t errlen);

/* Prints the settings table: flag, variable, default and description of each option. */
void config_usage(FILE *out, const struct config_opt *opts, size_t n);

/* Prints a subcommand's flags, one a line, indent spaces in: the flag with what it takes (an
 * integer's bounds, VALUE, or nothing for a switch), the description and the default. */
void config_usage_flags(FILE *out, const struct config_opt *opts, size_t n, int indent);

/* Reads KEY=VALUE lines (blank lines and # comments allowed) and exports each variable that
 * the environment does not already set. A missing file is not an error. Returns 0 or
 * -errno / -EINVAL. */
int config_load_env_file(const char *path);

#endif
