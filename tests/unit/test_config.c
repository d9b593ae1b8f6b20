/* Unit tests for lib/config.c: one table read from defaults, the environment, flags and an
 * env file, in that order of strength. Variables are prefixed TCFG_ so the test's own
 * environment cannot interfere. */
#include "../../lib/config.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

struct test_cfg {
    char *name;
    long long port;
    bool verbose;
    char *secret;
};

static const struct config_opt opts[] = {
    {"TCFG_NAME", "name", CONFIG_STR, 0, 0, "def", "a name", false,
     offsetof(struct test_cfg, name)},
    {"TCFG_PORT", "port", CONFIG_INT, 1, 65535, "8080", "a port", false,
     offsetof(struct test_cfg, port)},
    {"TCFG_VERBOSE", "verbose", CONFIG_BOOL, 0, 0, "0", "chatty", false,
     offsetof(struct test_cfg, verbose)},
    {"TCFG_SECRET", "secret", CONFIG_STR, 0, 0, "hunter2", "a secret", true,
     offsetof(struct test_cfg, secret)},
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static char err[256];

static int clear_env(void **state)
{
    (void)state;
    unsetenv("TCFG_NAME");
    unsetenv("TCFG_PORT");
    unsetenv("TCFG_VERBOSE");
    unsetenv("TCFG_SECRET");
    unsetenv("TCFG_FILE_A");
    unsetenv("TCFG_FILE_B");
    unsetenv("TCFG_FILE_C");
    unsetenv("TCFG_FILE_D");
    return 0;
}

/* Runs config_load over a NULL-terminated argument list (argv[0] included). */
static int load(struct test_cfg *cfg, int *next, char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    memset(cfg, 0, sizeof(*cfg));
    err[0] = '\0';
    return config_load(opts, NOPTS, cfg, argc, argv, next, err, sizeof(err));
}

static void test_defaults(void **state)
{
    struct test_cfg cfg;
    char *argv[] = {"prog", NULL};
    int next = -1;
    (void)state;
    assert_int_equal(load(&cfg, &next, argv), 0);
    assert_string_equal(cfg.name, "def");
    assert_int_equal(cfg.port, 8080);
    assert_false(cfg.verbose);
    assert_string_equal(cfg.secret, "hunter2");
    assert_int_equal(next, 1);
    config_release(opts, NOPTS, &cfg);
    assert_null(cfg.name);
    assert_null(cfg.secret);
}

static void test_null_default_is_empty(void **state)
{
    static const struct config_opt one[] = {
        {"TCFG_NAME", "name", CONFIG_STR, 0, 0, NULL, "unset", false,
         offsetof(struct test_cfg, name)},
    };
    struct test_cfg cfg = {0};
    char *argv[] = {"prog", NULL};
    (void)state;
    assert_int_equal(config_load(one, 1, &cfg, 1, argv, NULL, err, sizeof(err)), 0);
    assert_string_equal(cfg.name, "");
    config_release(one, 1, &cfg);
}

static void test_precedence(void **state)
{
    struct test_cfg cfg;
    char *plain[] = {"prog", NULL};
    char *flags[] = {"prog", "--name=flag", "--port", "9000", NULL};
    (void)state;
    setenv("TCFG_NAME", "env", 1);
    setenv("TCFG_PORT", "7000", 1);
    setenv("TCFG_VERBOSE", "yes", 1);
    assert_int_equal(load(&cfg, NULL, plain), 0);
    assert_string_equal(cfg.name, "env");
    assert_int_equal(cfg.port, 7000);
    assert_true(cfg.verbose);
    config_release(opts, NOPTS, &cfg);

    assert_int_equal(load(&cfg, NULL, flags), 0);
    assert_string_equal(cfg.name, "flag");
    assert_int_equal(cfg.port, 9000);
    assert_true(cfg.verbose); /* no flag: the environment still counts */
    config_release(opts, NOPTS, &cfg);

    /* An empty variable is set: it overrides the default. */
    setenv("TCFG_NAME", "", 1);
    assert_int_equal(load(&cfg, NULL, plain), 0);
    assert_string_equal(cfg.name, "");
    config_release(opts, NOPTS, &cfg);
}

static void test_flag_forms(void **state)
{
    struct test_cfg cfg;
    char *argv[] = {"prog", "--name", "a b", "--port=1", "--verbose", "--secret=x=y", NULL};
    char *empty[] = {"prog", "--name=", NULL};
    char *twice[] = {"prog", "--name=one", "--name", "two", NULL};
    int next = 0;
    (void)state;
    assert_int_equal(load(&cfg, &next, argv), 0);
    assert_string_equal(cfg.name, "a b");
    assert_int_equal(cfg.port, 1);
    assert_true(cfg.verbose);
    assert_string_equal(cfg.secret, "x=y");
    assert_int_equal(next, 6);
    config_release(opts, NOPTS, &cfg);

    assert_int_equal(load(&cfg, NULL, empty), 0);
    assert_string_equal(cfg.name, "");
    config_release(opts, NOPTS, &cfg);

    /* The last one wins, and the first copy is not leaked (ASan build). */
    assert_int_equal(load(&cfg, NULL, twice), 0);
    assert_string_equal(cfg.name, "two");
    config_release(opts, NOPTS, &cfg);
}

static void test_stops_at_first_argument(void **state)
{
    struct test_cfg cfg;
    char *argv[] = {"prog", "--port=2", "apikey", "--port=3", "create", NULL};
    char *bool_then_arg[] = {"prog", "--verbose", "migrate", NULL};
    char *dash[] = {"prog", "-", "--port=3", NULL};
    int next = 0;
    (void)state;
    assert_int_equal(load(&cfg, &next, argv), 0);
    assert_int_equal(cfg.port, 2);
    assert_int_equal(next, 2);
    config_release(opts, NOPTS, &cfg);

    /* A bool flag without '=' takes no value: the next word is an argument. */
    assert_int_equal(load(&cfg, &next, bool_then_arg), 0);
    assert_true(cfg.verbose);
    assert_int_equal(next, 2);
    config_release(opts, NOPTS, &cfg);

    assert_int_equal(load(&cfg, &next, dash), 0);
    assert_int_equal(cfg.port, 8080);
    assert_int_equal(next, 1);
    config_release(opts, NOPTS, &cfg);
}

static void test_bools(void **state)
{
    static const char *const yes[] = {"1", "true", "TRUE", "yes", "Yes", "on", "ON"};
    static const char *const no[] = {"0", "false", "False", "no", "NO", "off", ""};
    static const char *const bad[] = {"2", "y", "n", "enable", " 1", "1 ", "truee", "-1"};
    struct test_cfg cfg = {0};
    (void)state;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        cfg.verbose = false;
        assert_int_equal(config_set(&opts[2], &cfg, yes[i], err, sizeof(err)), 0);
        assert_true(cfg.verbose);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        cfg.verbose = true;
        assert_int_equal(config_set(&opts[2], &cfg, no[i], err, sizeof(err)), 0);
        assert_false(cfg.verbose);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (config_set(&opts[2], &cfg, bad[i], err, sizeof(err)) != -EINVAL)
            fail_msg("bool '%s' accepted", bad[i]);
        assert_non_null(strstr(err, "TCFG_VERBOSE"));
    }
}

static void test_int_bounds(void **state)
{
    static const char *const bad[] = {
        "0", "65536", "-1", "abc", "", "12x", "1.5", "0x10", "99999999999999999999999"};
    struct test_cfg cfg = {0};
    (void)state;
    assert_int_equal(config_set(&opts[1], &cfg, "1", err, sizeof(err)), 0);
    assert_int_equal(cfg.port, 1);
    assert_int_equal(config_set(&opts[1], &cfg, "65535", err, sizeof(err)), 0);
    assert_int_equal(cfg.port, 65535);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (config_set(&opts[1], &cfg, bad[i], err, sizeof(err)) != -EINVAL)
            fail_msg("port '%s' accepted", bad[i]);
        assert_int_equal(cfg.port, 65535);
        assert_non_null(strstr(err, "1 to 65535"));
    }
}

static void test_bad_values_from_env_and_flags(void **state)
{
    struct test_cfg cfg;
    char *plain[] = {"prog", NULL};
    char *flag[] = {"prog", "--port=70000", NULL};
    (void)state;
    setenv("TCFG_PORT", "http", 1);
    assert_int_equal(load(&cfg, NULL, plain), -EINVAL);
    assert_non_null(strstr(err, "TCFG_PORT"));
    config_release(opts, NOPTS, &cfg);
    unsetenv("TCFG_PORT");

    assert_int_equal(load(&cfg, NULL, flag), -EINVAL);
    assert_non_null(strstr(err, "70000"));
    config_release(opts, NOPTS, &cfg);
}

static void test_unknown_and_missing(void **state)
{
    struct test_cfg cfg;
    char *unknown[] = {"prog", "--nam=x", NULL};
    char *unknown_eq[] = {"prog", "--bogus", NULL};
    char *prefix[] = {"prog", "--names=x", NULL};
    char *missing[] = {"prog", "--port", NULL};
    (void)state;
    assert_int_equal(load(&cfg, NULL, unknown), -EINVAL);
    assert_non_null(strstr(err, "unknown option '--nam=x'"));
    config_release(opts, NOPTS, &cfg);
    assert_int_equal(load(&cfg, NULL, unknown_eq), -EINVAL);
    assert_non_null(strstr(err, "--bogus"));
    config_release(opts, NOPTS, &cfg);
    assert_int_equal(load(&cfg, NULL, prefix), -EINVAL);
    config_release(opts, NOPTS, &cfg);
    assert_int_equal(load(&cfg, NULL, missing), -EINVAL);
    assert_non_null(strstr(err, "needs a value"));
    config_release(opts, NOPTS, &cfg);
}

static void test_help(void **state)
{
    struct test_cfg cfg;
    char *help[] = {"prog", "--help", NULL};
    char *h[] = {"prog", "--port=1", "-h", NULL};
    char *late[] = {"prog", "--port=0", "--help", NULL};
    char *after_arg[] = {"prog", "cmd", "--help", NULL};
    (void)state;
    assert_int_equal(load(&cfg, NULL, help), CONFIG_HELP);
    config_release(opts, NOPTS, &cfg);
    assert_int_equal(load(&cfg, NULL, h), CONFIG_HELP);
    config_release(opts, NOPTS, &cfg);
    /* Flags are applied in order: a bad one before --help is reported. */
    assert_int_equal(load(&cfg, NULL, late), -EINVAL);
    config_release(opts, NOPTS, &cfg);
    /* After the first argument, --help belongs to the subcommand. */
    assert_int_equal(load(&cfg, NULL, after_arg), 0);
    config_release(opts, NOPTS, &cfg);
}

static void test_usage(void **state)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    (void)state;
    assert_non_null(out);
    config_usage(out, opts, NOPTS);
    fclose(out);
    assert_non_null(strstr(text, "--name"));
    assert_non_null(strstr(text, "TCFG_NAME"));
    assert_non_null(strstr(text, "[default: def]"));
    assert_non_null(strstr(text, "--port"));
    assert_non_null(strstr(text, "[default: 8080]"));
    assert_non_null(strstr(text, "--secret"));
    assert_non_null(strstr(text, "(secret)"));
    assert_null(strstr(text, "hunter2"));
    assert_non_null(strstr(text, "--help"));
    /* The product's shared settings are named even by a program that does not read them. */
    assert_non_null(strstr(text, "Read by the other shortener programs"));
    assert_non_null(strstr(text, "DATABASE_URL"));
    assert_non_null(strstr(text, "DEFAULT_TTL"));
    free(text);
}

static char env_path[64];

static void write_env_file(const char *content)
{
    int fd;
    snprintf(env_path, sizeof(env_path), "/tmp/test_config.XXXXXX");
    fd = mkstemp(env_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
}

static void test_env_file(void **state)
{
    (void)state;
    write_env_file("# a comment\n"
                   "\n"
                   "TCFG_FILE_A=plain\n"
                   "TCFG_FILE_B='single quoted'\n"
                   "TCFG_FILE_C=\"double=quoted\"\r\n"
                   "TCFG_FILE_D=\n"
                   "TCFG_NAME=from-file\n");
    setenv("TCFG_NAME", "from-env", 1);
    assert_int_equal(config_load_env_file(env_path), 0);
    unlink(env_path);
    assert_string_equal(getenv("TCFG_FILE_A"), "plain");
    assert_string_equal(getenv("TCFG_FILE_B"), "single quoted");
    assert_string_equal(getenv("TCFG_FILE_C"), "double=quoted");
    assert_string_equal(getenv("TCFG_FILE_D"), "");
    /* The environment already set it: the file does not override. */
    assert_string_equal(getenv("TCFG_NAME"), "from-env");
}

static void test_env_file_feeds_config(void **state)
{
    struct test_cfg cfg;
    char *argv[] = {"prog", NULL};
    (void)state;
    write_env_file("TCFG_PORT=4242\n");
    assert_int_equal(config_load_env_file(env_path), 0);
    unlink(env_path);
    assert_int_equal(load(&cfg, NULL, argv), 0);
    assert_int_equal(cfg.port, 4242);
    config_release(opts, NOPTS, &cfg);
}

static void test_env_file_errors(void **state)
{
    (void)state;
    assert_int_equal(config_load_env_file("/nonexistent/dir/env"), 0);

    write_env_file("TCFG_FILE_A=ok\njust words\n");
    assert_int_equal(config_load_env_file(env_path), -EINVAL);
    unlink(env_path);
    write_env_file("=value\n");
    assert_int_equal(config_load_env_file(env_path), -EINVAL);
    unlink(env_path);
}

static void test_int_rejects_blanks_and_plus(void **state)
{
    struct test_cfg cfg;
    (void)state;
    setenv("TCFG_PORT", " 80", 1);
    assert_int_equal(load(&cfg, NULL, (char *[]){"prog", NULL}), -EINVAL);
    config_release(opts, NOPTS, &cfg);
    setenv("TCFG_PORT", "+80", 1);
    assert_int_equal(load(&cfg, NULL, (char *[]){"prog", NULL}), -EINVAL);
    config_release(opts, NOPTS, &cfg);
    setenv("TCFG_PORT", "80", 1);
    assert_int_equal(load(&cfg, NULL, (char *[]){"prog", NULL}), 0);
    assert_int_equal(cfg.port, 80);
    config_release(opts, NOPTS, &cfg);
}

static void test_double_dash_ends_flags(void **state)
{
    struct test_cfg cfg;
    int next = -1;
    (void)state;
    assert_int_equal(load(&cfg, &next, (char *[]){"prog", "--port", "81", "--", "--name", NULL}),
                     0);
    assert_int_equal(cfg.port, 81);
    assert_int_equal(next, 4);
    assert_string_equal(cfg.name, "def");
    config_release(opts, NOPTS, &cfg);
}

/* A subcommand's table: flags only, no environment variables. */
struct test_args {
    char *rate;      /* no default: NULL unless given */
    long long batch; /* default 10 */
    long long burst; /* no default: left as the caller set it */
    bool dry;        /* a switch */
};

#define A struct test_args
static const struct config_opt flags[] = {
    CONFIG_FLAG_STR(A, "rate", NULL, "N/s, N/min or N/h", rate),
    CONFIG_FLAG_INT(A, "batch", 1, 100, CONFIG_XSTR(10), "rows at once", batch),
    CONFIG_FLAG_INT(A, "burst", 1, 1000, NULL, "requests at once", burst),
    CONFIG_FLAG_SWITCH(A, "dry", "change nothing", dry),
};
#undef A
#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

/* Runs config_load_args over a NULL-terminated list of a subcommand's arguments. */
static int load_args(struct test_args *a, char **args, int maxargs, int *nargs, char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    memset(a, 0, sizeof(*a));
    a->burst = -1;
    err[0] = '\0';
    return config_load_args(flags, NFLAGS, a, argc, argv, args, maxargs, nargs, err, sizeof(err));
}

static void test_flags_defaults_and_unset(void **state)
{
    struct test_args a;
    int nargs = -1;
    (void)state;
    assert_int_equal(load_args(&a, NULL, 0, &nargs, (char *[]){NULL}), 0);
    assert_null(a.rate); /* not given, and no default: left alone */
    assert_int_equal(a.batch, 10);
    assert_int_equal(a.burst, -1);
    assert_false(a.dry);
    assert_int_equal(nargs, 0);
    config_release(flags, NFLAGS, &a);

    /* Given, even empty, is told apart from not given. */
    assert_int_equal(load_args(&a, NULL, 0, NULL, (char *[]){"--rate=", "--burst", "7", NULL}), 0);
    assert_non_null(a.rate);
    assert_string_equal(a.rate, "");
    assert_int_equal(a.burst, 7);
    config_release(flags, NFLAGS, &a);
}

static void test_flags_do_not_read_the_environment(void **state)
{
    struct test_args a;
    (void)state;
    /* Nothing named after a flag-only option is looked up, whatever the environment holds. */
    setenv("TCFG_NAME", "env", 1);
    setenv("RATE", "1/s", 1);
    setenv("BATCH", "50", 1);
    assert_int_equal(load_args(&a, NULL, 0, NULL, (char *[]){NULL}), 0);
    assert_null(a.rate);
    assert_int_equal(a.batch, 10);
    config_release(flags, NFLAGS, &a);
    unsetenv("RATE");
    unsetenv("BATCH");
}

static void test_switch(void **state)
{
    struct test_args a;
    (void)state;
    assert_int_equal(load_args(&a, NULL, 0, NULL, (char *[]){"--dry", NULL}), 0);
    assert_true(a.dry);
    config_release(flags, NFLAGS, &a);

    static const char *const valued[] = {"--dry=yes", "--dry=1", "--dry=", "--dry=0"};
    for (size_t i = 0; i < sizeof(valued) / sizeof(valued[0]); i++) {
        assert_int_equal(load_args(&a, NULL, 0, NULL, (char *[]){(char *)valued[i], NULL}),
                         -EINVAL);
        assert_non_null(strstr(err, "'--dry' takes no value"));
        config_release(flags, NFLAGS, &a);
    }
    /* A switch takes no value, so the next word is not swallowed. */
    char *args[1];
    int nargs = 0;
    assert_int_equal(load_args(&a, args, 1, &nargs, (char *[]){"--dry", "0", NULL}), 0);
    assert_true(a.dry);
    assert_int_equal(nargs, 1);
    assert_string_equal(args[0], "0");
    config_release(flags, NFLAGS, &a);
}

static void test_int_flag_bounds(void **state)
{
    static const char *const bad[] = {
        "0", "101", "-1", "ten", "", "5x", " 5", "+5", "1.5", "0x5", "99999999999999999999999"};
    struct test_args a;
    (void)state;
    assert_int_equal(load_args(&a, NULL, 0, NULL, (char *[]){"--batch", "1", NULL}), 0);
    assert_int_equal(a.batch, 1);
    config_release(flags, NFLAGS, &a);
    assert_int_equal(load_args(&a, NULL, 0, NULL, (char *[]){"--batch=100", NULL}), 0);
    assert_int_equal(a.batch, 100);
    config_release(flags, NFLAGS, &a);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (load_args(&a, NULL, 0, NULL, (char *[]){"--batch", (char *)bad[i], NULL}) != -EINVAL)
            fail_msg("--batch '%s' accepted", bad[i]);
        /* Named by its flag, since it has no variable. */
        assert_non_null(strstr(err, "--batch: expected an integer from 1 to 100"));
        config_release(flags, NFLAGS, &a);
    }
    assert_int_equal(load_args(&a, NULL, 0, NULL, (char *[]){"--batch", NULL}), -EINVAL);
    assert_non_null(strstr(err, "'--batch' needs a value"));
    config_release(flags, NFLAGS, &a);
    assert_int_equal(load_args(&a, NULL, 0, NULL, (char *[]){"--batch=", NULL}), -EINVAL);
    config_release(flags, NFLAGS, &a);
}

static void test_positional_args(void **state)
{
    struct test_args a;
    char *args[2];
    int nargs = -1;
    (void)state;
    /* Flags before, between and after the arguments, which keep their order. */
    assert_int_equal(
        load_args(&a, args, 2, &nargs,
                  (char *[]){"--rate", "5/s", "one", "--dry", "two", "--batch=3", NULL}),
        0);
    assert_int_equal(nargs, 2);
    assert_string_equal(args[0], "one");
    assert_string_equal(args[1], "two");
    assert_string_equal(a.rate, "5/s");
    assert_true(a.dry);
    assert_int_equal(a.batch, 3);
    config_release(flags, NFLAGS, &a);

    /* Fewer than the most is the caller's to judge. */
    assert_int_equal(load_args(&a, args, 2, &nargs, (char *[]){"--dry", NULL}), 0);
    assert_int_equal(nargs, 0);
    config_release(flags, NFLAGS, &a);

    assert_int_equal(load_args(&a, args, 1, &nargs, (char *[]){"one", "two", NULL}), -EINVAL);
    assert_non_null(strstr(err, "unexpected argument 'two'"));
    config_release(flags, NFLAGS, &a);
    assert_int_equal(load_args(&a, NULL, 0, &nargs, (char *[]){"now", NULL}), -EINVAL);
    assert_non_null(strstr(err, "'now'"));
    config_release(flags, NFLAGS, &a);
}

static void test_args_unknown_and_short(void **state)
{
    static const char *const bad[] = {"--bogus", "--rat=1/s", "--dryer", "-n", "-", "-5"};
    struct test_args a;
    char *args[1];
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (load_args(&a, args, 1, NULL, (char *[]){(char *)bad[i], NULL}) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
        assert_non_null(strstr(err, "unknown option"));
        assert_non_null(strstr(err, bad[i]));
        config_release(flags, NFLAGS, &a);
    }
}

static void test_args_double_dash_and_help(void **state)
{
    struct test_args a;
    char *args[2];
    int nargs = 0;
    (void)state;
    /* After "--" every word is an argument, even one that looks like a flag. */
    assert_int_equal(
        load_args(&a, args, 2, &nargs, (char *[]){"--dry", "--", "--batch=5", "-h", NULL}), 0);
    assert_int_equal(nargs, 2);
    assert_string_equal(args[0], "--batch=5");
    assert_string_equal(args[1], "-h");
    assert_int_equal(a.batch, 10);
    config_release(flags, NFLAGS, &a);

    /* --help anywhere before "--", even after arguments: a command's arguments are its own. */
    assert_int_equal(load_args(&a, args, 2, &nargs, (char *[]){"one", "--help", NULL}),
                     CONFIG_HELP);
    config_release(flags, NFLAGS, &a);
    assert_int_equal(load_args(&a, args, 2, &nargs, (char *[]){"-h", NULL}), CONFIG_HELP);
    config_release(flags, NFLAGS, &a);
}

static void test_switch_in_a_program_table(void **state)
{
    /* The two kinds in one table, read by config_load: the program's flags stop at the first
     * argument as always. */
    static const struct config_opt mixed[] = {
        {"TCFG_PORT", "port", CONFIG_INT, 1, 65535, "8080", "a port", false,
         offsetof(struct test_cfg, port)},
        CONFIG_FLAG_SWITCH(struct test_cfg, "verbose", "chatty", verbose),
    };
    struct test_cfg cfg = {0};
    char *argv[] = {"prog", "--verbose", "--port", "80", "cmd", "--verbose=1", NULL};
    char *valued[] = {"prog", "--verbose=1", NULL};
    int next = 0;
    (void)state;
    assert_int_equal(config_load(mixed, 2, &cfg, 6, argv, &next, err, sizeof(err)), 0);
    assert_true(cfg.verbose);
    assert_int_equal(cfg.port, 80);
    assert_int_equal(next, 4);
    assert_int_equal(config_load(mixed, 2, &cfg, 2, valued, &next, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "takes no value"));

    /* Its --help names it, with no variable. */
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    assert_non_null(out);
    config_usage(out, mixed, 2);
    fclose(out);
    assert_non_null(strstr(text, "--verbose"));
    assert_non_null(strstr(text, "TCFG_PORT"));
    free(text);
}

static void test_usage_flags(void **state)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    (void)state;
    assert_non_null(out);
    config_usage_flags(out, flags, NFLAGS, 4);
    fclose(out);
    assert_non_null(strstr(text, "    --rate VALUE "));
    assert_non_null(strstr(text, "--batch 1..100 "));
    assert_non_null(strstr(text, "rows at once [default: 10]\n"));
    assert_non_null(strstr(text, "--burst 1..1000 "));
    assert_non_null(strstr(text, "requests at once\n"));
    assert_non_null(strstr(text, "--dry "));
    assert_null(strstr(text, "--dry="));
    assert_null(strstr(text, "[default: 0]")); /* a switch is off unless given: no default */
    free(text);
}

/* The env file is found beside the binary, never in the current directory. */
static void test_env_file_beside_the_binary(void **state)
{
    char buf[64];
    (void)state;
    assert_int_equal(config_env_file_beside("/opt/s/bin/shortenerctl", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/opt/s/bin/../var/env");
    assert_int_equal(config_env_file_beside("/shortenerctl", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/../var/env");
    assert_int_equal(config_env_file_beside("bin/shortenerctl", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(config_env_file_beside("shortenerctl", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(
        config_env_file_beside("/a/very/long/directory/name/that/does/not/fit/x", buf, 32),
        -ENAMETOOLONG);
}

static void test_env_file_path_named_or_beside_self(void **state)
{
    char buf[PATH_MAX], exe[PATH_MAX], want[PATH_MAX + 16];
    ssize_t n;
    (void)state;
    setenv("SHORTENER_ENV_FILE", "/etc/shortener/env", 1);
    assert_int_equal(config_env_file_path(buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/etc/shortener/env");
    unsetenv("SHORTENER_ENV_FILE");
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    snprintf(want, sizeof(want), "%s/../var/env", exe);
    assert_int_equal(config_env_file_path(buf, sizeof(buf)), 0);
    assert_string_equal(buf, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_null_default_is_empty, clear_env),
        cmocka_unit_test_setup(test_precedence, clear_env),
        cmocka_unit_test_setup(test_flag_forms, clear_env),
        cmocka_unit_test_setup(test_stops_at_first_argument, clear_env),
        cmocka_unit_test_setup(test_bools, clear_env),
        cmocka_unit_test_setup(test_int_bounds, clear_env),
        cmocka_unit_test_setup(test_bad_values_from_env_and_flags, clear_env),
        cmocka_unit_test_setup(test_unknown_and_missing, clear_env),
        cmocka_unit_test_setup(test_help, clear_env),
        cmocka_unit_test_setup(test_usage, clear_env),
        cmocka_unit_test_setup(test_env_file, clear_env),
        cmocka_unit_test_setup(test_env_file_feeds_config, clear_env),
        cmocka_unit_test_setup(test_env_file_errors, clear_env),
        cmocka_unit_test_setup(test_int_rejects_blanks_and_plus, clear_env),
        cmocka_unit_test_setup(test_double_dash_ends_flags, clear_env),
        cmocka_unit_test_setup(test_flags_defaults_and_unset, clear_env),
        cmocka_unit_test_setup(test_flags_do_not_read_the_environment, clear_env),
        cmocka_unit_test_setup(test_switch, clear_env),
        cmocka_unit_test_setup(test_int_flag_bounds, clear_env),
        cmocka_unit_test_setup(test_positional_args, clear_env),
        cmocka_unit_test_setup(test_args_unknown_and_short, clear_env),
        cmocka_unit_test_setup(test_args_double_dash_and_help, clear_env),
        cmocka_unit_test_setup(test_switch_in_a_program_table, clear_env),
        cmocka_unit_test_setup(test_usage_flags, clear_env),
        cmocka_unit_test_setup(test_env_file_beside_the_binary, clear_env),
        cmocka_unit_test_setup(test_env_file_path_named_or_beside_self, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
