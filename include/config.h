/* One table of settings per program serves --help, the environment and flags alike.
 *
 * Precedence: built-in default < environment variable < command-line flag. */
#ifndef SHORTENER_CONFIG_H
#define SHORTENER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum config_type { CONFIG_STR, CONFIG_INT, CONFIG_BOOL };

struct config_opt {
    const char *env;  /* environment variable, e.g. "DATABASE_URL" */
    const char *flag; /* long flag without dashes, e.g. "database-url" */
    enum config_type type;
    long long min, max; /* bounds for CONFIG_INT */
    const char *def;    /* default as text; NULL means unset (empty string) */
    const char *help;
    bool secret;   /* never printed, not even its default */
    size_t offset; /* where the value lives in the program's config struct: char *, long long
                      or bool according to type */
};

#define CONFIG_HELP 1

/* Fills cfg from defaults, then the environment, then flags in argv[1..] up to the first
 * argument that is not a flag; *next gets that argument's index. "--name=value" and
 * "--name value" both work. Returns 0, CONFIG_HELP when --help or -h was given, or -EINVAL
 * with a message in err. String values are heap copies owned by cfg: free them with
 * config_release(). */
int config_load(const struct config_opt *opts, size_t n, void *cfg, int argc, char **argv,
                int *next, char *err, size_t errlen);

void config_release(const struct config_opt *opts, size_t n, void *cfg);

/* Sets one option from text; used by config_load and by tests. */
int config_set(const struct config_opt *opt, void *cfg, const char *value, char *err,
               size_t errlen);

/* Prints the settings table: flag, variable, default and description of each option. */
void config_usage(FILE *out, const struct config_opt *opts, size_t n);

/* Reads KEY=VALUE lines (blank lines and # comments allowed) and exports each variable that
 * the environment does not already set. A missing file is not an error. Returns 0 or
 * -errno / -EINVAL. */
int config_load_env_file(const char *path);

#endif
