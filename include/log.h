/* One line per event on stderr; journald or a file takes it from there. */
#ifndef SHORTENER_LOG_H
#define SHORTENER_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Set once at start-up, before any thread exists; the level is read-only afterwards. */
void log_init(const char *program, enum log_level level);

/* Parses "error", "warn", "info" or "debug"; returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

bool log_enabled(enum log_level level);

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The level is checked before the arguments are formatted. */
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)                                                                              \
    do {                                                                                           \
        if (log_enabled(LOG_WARN))                                                                 \
            log_write(LOG_WARN, __VA_ARGS__);                                                      \
    } while (0)
#define log_info(...)                                                                              \
    do {                                                                                           \
        if (log_enabled(LOG_INFO))                                                                 \
            log_write(LOG_INFO, __VA_ARGS__);                                                      \
    } while (0)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_DEBUG))                                                                \
            log_write(LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

#endif
