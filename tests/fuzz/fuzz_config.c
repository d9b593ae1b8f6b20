/* libFuzzer driver for settings (lib/config.c): a value for each kind of option, a command
 * line of NUL-separated words. (Env files are not fuzzed: each variable they set stays in the
 * process.) Integers end up in their bounds, strings are
 * what was given, and every refusal is a printable sentence. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz_cfg {
    char *name;
    long long port;
    long long delta;
    bool on;
};

static const struct config_opt opts[] = {
    {"FZCFG_NAME", "name", CONFIG_STR, 0, 0, "x", "a string", false, offsetof(struct fz_cfg, name)},
    {"FZCFG_PORT", "port", CONFIG_INT, 1, 65535, "8080", "a port", false,
     offsetof(struct fz_cfg, port)},
    {"FZCFG_DELTA", "delta", CONFIG_INT, -100, 100, "0", "signed", false,
     offsetof(struct fz_cfg, delta)},
    {"FZCFG_ON", "on", CONFIG_BOOL, 0, 0, "0", "a switch", false, offsetof(struct fz_cfg, on)},
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static void printable(const char *s)
{
    if (!*s)
        __builtin_trap();
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            __builtin_trap();
}

static void in_bounds(const struct fz_cfg *c)
{
    if (c->port < 1 || c->port > 65535 || c->delta < -100 || c->delta > 100)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_cfg cfg = {.port = 8080};
    char *text = malloc(size + 1), *argv[34], err[512];
    int argc = 1, next = 0, rc;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    unsetenv("FZCFG_NAME");
    unsetenv("FZCFG_PORT");
    unsetenv("FZCFG_DELTA");
    unsetenv("FZCFG_ON");

    /* One value for each option, as from the environment. */
    for (size_t i = 0; i < NOPTS; i++) {
        err[0] = '\0';
        rc = config_set(&opts[i], &cfg, text, err, sizeof(err));
        if (rc == 0 && opts[i].type == CONFIG_STR && strcmp(cfg.name, text) != 0)
            __builtin_trap();
        if (rc != 0 && rc != -ENOMEM) {
            /* The message quotes the value: printable only when the value is. */
            bool plain = true;
            for (const char *p = text; *p; p++)
                plain &= (unsigned char)*p >= 0x20 && *p != 0x7f;
            if (plain)
                printable(err);
        }
    }
    in_bounds(&cfg);
    free(cfg.name);
    memset(&cfg, 0, sizeof(cfg));

    /* NUL-separated words as a command line. */
    argv[0] = "fuzz";
    for (char *p = text; p < text + size && argc < 33; p += strlen(p) + 1)
        argv[argc++] = p;
    argv[argc] = NULL;
    rc = config_load(opts, NOPTS, &cfg, argc, argv, &next, err, sizeof(err));
    if (rc == 0) {
        in_bounds(&cfg);
        if (next < 1 || next > argc)
            __builtin_trap();
    } else if (rc != CONFIG_HELP && rc != -EINVAL && rc != -ENOMEM) {
        __builtin_trap();
    }
    config_release(opts, NOPTS, &cfg);

    free(text);
    return 0;
}
