/* Settings from defaults, environment and flags, described by one table per program. */
#include "config.h"

#include "numparse.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *field(void *cfg, const struct config_opt *opt)
{
    return (char *)cfg + opt->offset;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off", ""};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    return -EINVAL;
}

/* How messages name an option: by its variable, which is how settings are usually given, or
 * by its flag when it has none. */
static const char *opt_name(const struct config_opt *opt, char *buf, size_t cap)
{
    if (opt->env)
        return opt->env;
    snprintf(buf, cap, "--%s", opt->flag);
    return buf;
}

int config_set(const struct config_opt *opt, void *cfg, const char *value, char *err, size_t errlen)
{
    char name[64];

    switch (opt->type) {
    case CONFIG_STR: {
        char **slot = field(cfg, opt);
        char *copy = strdup(value);
        if (!copy) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        free(*slot);
        *slot = copy;
        return 0;
    }
    case CONFIG_INT: {
        long long v;
        if (numparse_ll(value, opt->min, opt->max, 0, &v) < 0) {
            snprintf(err, errlen, "%s: expected an integer from %lld to %lld, got '%s'",
                     opt_name(opt, name, sizeof(name)), opt->min, opt->max, value);
            return -EINVAL;
        }
        *(long long *)field(cfg, opt) = v;
        return 0;
    }
    case CONFIG_BOOL:
        if (parse_bool(value, field(cfg, opt)) < 0) {
            snprintf(err, errlen, "%s: expected 0/1, true/false, yes/no or on/off, got '%s'",
                     opt_name(opt, name, sizeof(name)), value);
            return -EINVAL;
        }
        return 0;
    }
    return -EINVAL;
}

static const struct config_opt *find_flag(const struct config_opt *opts, size_t n, const char *name,
                                          size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].flag) == len && strncmp(opts[i].flag, name, len) == 0)
            return &opts[i];
    return NULL;
}

/* Defaults, then the environment. A flag-only option without a default is left alone. */
static int load_defaults(const struct config_opt *opts, size_t n, void *cfg, char *err,
                         size_t errlen)
{
    for (size_t k = 0; k < n; k++) {
        const char *env = opts[k].env ? getenv(opts[k].env) : NULL;
        const char *value = env ? env : opts[k].def;
        if (!value && !opts[k].env)
            continue;
        int rc = config_set(&opts[k], cfg, value ? value : "", err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Applies the flag at argv[*i], which starts with "--", taking its value from the next word
 * when it has no "=value"; *i is left on the last word used. */
static int load_flag(const struct config_opt *opts, size_t n, void *cfg, int argc, char **argv,
                     int *i, char *err, size_t errlen)
{
    const char *arg = argv[*i], *name = arg + 2, *eq = strchr(name, '='), *value;
    const struct config_opt *opt;

    opt = find_flag(opts, n, name, eq ? (size_t)(eq - name) : strlen(name));
    if (!opt) {
        snprintf(err, errlen, "unknown option '%s' (see --help)", arg);
        return -EINVAL;
    }
    if (opt->type == CONFIG_BOOL && !opt->env) {
        /* A switch: present or not. */
        if (eq) {
            snprintf(err, errlen, "option '--%s' takes no value", opt->flag);
            return -EINVAL;
        }
        value = "1";
    } else if (eq) {
        value = eq + 1;
    } else if (opt->type == CONFIG_BOOL) {
        value = "1";
    } else if (*i + 1 < argc) {
        value = argv[++*i];
    } else {
        snprintf(err, errlen, "option '%s' needs a value", arg);
        return -EINVAL;
    }
    return config_set(opt, cfg, value, err, errlen);
}

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

int config_load(const struct config_opt *opts, size_t n, void *cfg, int argc, char **argv,
                int *next, char *err, size_t errlen)
{
    int rc = load_defaults(opts, n, cfg, err, errlen);
    int i;

    if (rc < 0)
        return rc;
    for (i = 1; i < argc; i++) {
        if (is_help(argv[i]))
            return CONFIG_HELP;
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        /* The first argument (a command, say) ends the program's own flags. */
        if (strncmp(argv[i], "--", 2) != 0)
            break;
        rc = load_flag(opts, n, cfg, argc, argv, &i, err, errlen);
        if (rc < 0)
            return rc;
    }
    if (next)
        *next = i;
    return 0;
}

int config_load_args(const struct config_opt *opts, size_t n, void *cfg, int argc, char **argv,
                     char **args, int maxargs, int *nargs, char *err, size_t errlen)
{
    int rc = load_defaults(opts, n, cfg, err, errlen);
    int count = 0;
    bool flags = true;

    if (rc < 0)
        return rc;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];

        if (flags && is_help(arg))
            return CONFIG_HELP;
        if (flags && strcmp(arg, "--") == 0) {
            flags = false;
            continue;
        }
        if (flags && strncmp(arg, "--", 2) == 0) {
            rc = load_flag(opts, n, cfg, argc, argv, &i, err, errlen);
            if (rc < 0)
                return rc;
            continue;
        }
        /* Short options are not ours to guess at: "-n" is a mistake, not a NAME. */
        if (flags && arg[0] == '-') {
            snprintf(err, errlen, "unknown option '%s' (see --help)", arg);
            return -EINVAL;
        }
        if (count >= maxargs) {
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", arg);
            return -EINVAL;
        }
        args[count++] = argv[i];
    }
    if (nargs)
        *nargs = count;
    return 0;
}

void config_release(const struct config_opt *opts, size_t n, void *cfg)
{
    for (size_t i = 0; i < n; i++) {
        if (opts[i].type == CONFIG_STR) {
            char **slot = field(cfg, &opts[i]);
            free(*slot);
            *slot = NULL;
        }
    }
}

void config_usage(FILE *out, const struct config_opt *opts, size_t n)
{
    /* Columns as wide as the longest flag and variable, so that every help lines up. */
    int fw = 22, ew = 18;
    for (size_t i = 0; i < n; i++) {
        int f = (int)strlen(opts[i].flag), e = opts[i].env ? (int)strlen(opts[i].env) : 0;
        fw = f > fw ? f : fw;
        ew = e > ew ? e : ew;
    }
    fprintf(out, "Settings (environment variable, or the flag, which wins):\n");
    for (size_t i = 0; i < n; i++) {
        const char *def = opts[i].secret ? "(secret)" : (opts[i].def ? opts[i].def : "");
        fprintf(out, "  --%-*s %-*s %s", fw, opts[i].flag, ew, opts[i].env ? opts[i].env : "",
                opts[i].help);
        if (*def)
            fprintf(out, " [default: %s]", def);
        fputc('\n', out);
    }
    fprintf(out, "  --%-*s %-*s %s\n", fw, "help", ew, "", "print this help and exit");

    /* The settings every deployment shares, so one --help shows the whole picture even
     * where this program does not read some of them. */
    static const char *const shared[][2] = {
        {"DATABASE_URL", "PostgreSQL conninfo or URI"},
        {"REDIS_URL", "Redis cache: redis://host:port or unix:///path"},
        {"KGS_SOCKET", "Unix socket of the key generation service"},
        {"PORT", "HTTP port of shortener"},
        {"BASE_URL", "scheme and host used in short_url"},
        {"DEFAULT_TTL", "seconds a link lives when the caller names no expiry"},
    };
    bool header = false;
    for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]); i++) {
        bool mine = false;
        for (size_t k = 0; k < n && !mine; k++)
            mine = opts[k].env && strcmp(opts[k].env, shared[i][0]) == 0;
        if (mine)
            continue;
        if (!header)
            fprintf(out, "\nRead by the other shortener programs, not by this one:\n");
        header = true;
        fprintf(out, "  %-*s %-*s %s\n", fw + 2, "", ew, shared[i][0], shared[i][1]);
    }
}

void config_usage_flags(FILE *out, const struct config_opt *opts, size_t n, int indent)
{
    for (size_t i = 0; i < n; i++) {
        const struct config_opt *o = &opts[i];
        char flag[80];

        /* What the flag takes: an integer's bounds say more than "N" would. A bool with a
         * variable takes a value as a flag too; a switch takes none. */
        if (o->type == CONFIG_INT)
            snprintf(flag, sizeof(flag), "--%s %lld..%lld", o->flag, o->min, o->max);
        else if (o->type == CONFIG_STR)
            snprintf(flag, sizeof(flag), "--%s VALUE", o->flag);
        else
            snprintf(flag, sizeof(flag), "--%s%s", o->flag, o->env ? "[=BOOL]" : "");
        fprintf(out, "%*s%-24s %s", indent, "", flag, o->help);
        if (o->secret)
            fprintf(out, " (secret)");
        else if (o->def && *o->def && o->type != CONFIG_BOOL)
            fprintf(out, " [default: %s]", o->def);
        fputc('\n', out);
    }
}

int config_env_file_beside(const char *exe, char *buf, size_t len)
{
    const char *slash = strrchr(exe, '/');
    int n;

    if (exe[0] != '/' || !slash)
        return -EINVAL;
    n = snprintf(buf, len, "%.*s/../var/env", (int)(slash - exe), exe);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int config_env_file_path(char *buf, size_t len)
{
    const char *named = getenv("SHORTENER_ENV_FILE");
    char exe[PATH_MAX];
    ssize_t n;

    if (named) {
        int w = snprintf(buf, len, "%s", named);
        return w < 0 || (size_t)w >= len ? -ENAMETOOLONG : 0;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0)
        return -errno;
    exe[n] = '\0';
    return config_env_file_beside(exe, buf, len);
}

int config_load_env_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int rc = 0;

    if (!f)
        return errno == ENOENT ? 0 : -errno;
    while (fgets(line, sizeof(line), f)) {
        char *eq, *end;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        eq = strchr(line, '=');
        if (!eq || eq == line) {
            rc = -EINVAL;
            goto out;
        }
        *eq = '\0';
        end = eq + 1;
        /* Values may be quoted the way a shell would write them. */
        size_t vlen = strlen(end);
        if (vlen >= 2 && (end[0] == '\'' || end[0] == '"') && end[vlen - 1] == end[0]) {
            end[vlen - 1] = '\0';
            end++;
        }
        if (setenv(line, end, 0) < 0) {
            rc = -errno;
            goto out;
        }
    }
out:
    fclose(f);
    return rc;
}
