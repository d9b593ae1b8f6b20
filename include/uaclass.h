/* What a User-Agent says about a visitor: browser family, OS family, device class, and whether
 * it is a bot. Bots are recognised by the crawler-user-agents list (npm crawler-user-agents),
 * turned into a table at build time (deploy/gen-crawlers.py), plus a few words every crawler
 * list agrees on; the families by a short ordered list of tokens, the way browsers name
 * themselves. Classifying costs some microseconds (a substring search per pattern, a regular
 * expression for the few that need one), so callers cache answers per User-Agent string. */
#ifndef SHORTENER_UACLASS_H
#define SHORTENER_UACLASS_H

#include <stdbool.h>
#include <stddef.h>

/* One entry of the generated table: the pattern's text when regex is NULL; otherwise a POSIX
 * extended expression, run only when literal (text every match contains; "" for none) is in
 * the User-Agent. */
struct crawler_pattern {
    const char *literal;
    const char *regex;
};

extern const struct crawler_pattern crawler_patterns[];
extern const size_t crawler_npatterns;

enum ua_device { UA_DESKTOP, UA_MOBILE, UA_TABLET, UA_BOT, UA_OTHER };

struct ua_info {
    const char *browser; /* static strings: "Chrome", "Firefox", ..., "Other" */
    const char *os;      /* "Windows", "macOS", "iOS", "Android", "Linux", ..., "Other" */
    enum ua_device device;
    bool bot;
};

struct uaclass;

/* Compiles the table's expressions. NULL when out of memory; *failed (may be NULL) counts
 * expressions regcomp refused, which are then never matched. */
struct uaclass *uaclass_new(size_t *failed);
void uaclass_free(struct uaclass *u);

/* Classifies ua[0..len) (need not be NUL-terminated; bytes past UACLASS_MAX_LEN are not
 * looked at). NULL or empty: no User-Agent at all, which is "Other" everywhere. */
#define UACLASS_MAX_LEN 512
void uaclass_classify(const struct uaclass *u, const char *ua, size_t len, struct ua_info *out);

/* "desktop", "mobile", "tablet", "bot", "other" */
const char *uaclass_device_name(enum ua_device d);

#endif
