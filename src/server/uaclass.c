/* User-Agent classification (see uaclass.h). */
#include "uaclass.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

struct uaclass {
    regex_t *re; /* one per pattern; compiled only for patterns with an expression */
    bool *ok;    /* which of them compiled */
    size_t n;
};

/* Words of clients that announce themselves as automated without being in the list (the list
 * names products; these are what new products are called). Matched case-insensitively. */
static const char *const bot_words[] = {"bot", "crawler", "spider", "crawling", "headless"};

struct uaclass *uaclass_new(size_t *failed)
{
    struct uaclass *u = calloc(1, sizeof(*u));
    size_t bad = 0;

    if (!u)
        return NULL;
    u->n = crawler_npatterns;
    u->re = calloc(u->n, sizeof(*u->re));
    u->ok = calloc(u->n, sizeof(*u->ok));
    if (!u->re || !u->ok) {
        uaclass_free(u);
        return NULL;
    }
    for (size_t i = 0; i < u->n; i++) {
        if (!crawler_patterns[i].regex)
            continue;
        u->ok[i] = regcomp(&u->re[i], crawler_patterns[i].regex, REG_EXTENDED | REG_NOSUB) == 0;
        bad += !u->ok[i];
    }
    if (failed)
        *failed = bad;
    return u;
}

void uaclass_free(struct uaclass *u)
{
    if (!u)
        return;
    for (size_t i = 0; u->ok && i < u->n; i++)
        if (u->ok[i])
            regfree(&u->re[i]);
    free(u->re);
    free(u->ok);
    free(u);
}

static bool has(const char *s, const char *word)
{
    return strstr(s, word) != NULL;
}

static bool has_nocase(const char *s, const char *word)
{
    return strcasestr(s, word) != NULL;
}

static bool in_list(const struct uaclass *u, const char *ua)
{
    for (size_t i = 0; i < u->n; i++) {
        const struct crawler_pattern *p = &crawler_patterns[i];
        if (!p->regex) {
            if (has(ua, p->literal))
                return true;
            continue;
        }
        if (p->literal[0] && !has(ua, p->literal))
            continue;
        if (u->ok[i] && regexec(&u->re[i], ua, 0, NULL, 0) == 0)
            return true;
    }
    return false;
}

static bool is_bot(const struct uaclass *u, const char *ua)
{
    for (size_t i = 0; i < sizeof(bot_words) / sizeof(bot_words[0]); i++)
        if (has_nocase(ua, bot_words[i]))
            return true;
    return in_list(u, ua);
}

/* First match wins: browsers that build on Chrome or Safari also name those, so they come
 * before them. */
static const struct {
    const char *token;
    const char *name;
} browsers[] = {
    {"Edg/", "Edge"},
    {"EdgA/", "Edge"},
    {"EdgiOS/", "Edge"},
    {"Edge/", "Edge"},
    {"OPR/", "Opera"},
    {"Opera", "Opera"},
    {"SamsungBrowser/", "Samsung Internet"},
    {"YaBrowser/", "Yandex Browser"},
    {"UCBrowser/", "UC Browser"},
    {"Vivaldi/", "Vivaldi"},
    {"Brave", "Brave"},
    {"FxiOS/", "Firefox"},
    {"Firefox/", "Firefox"},
    {"CriOS/", "Chrome"},
    {"Chromium/", "Chromium"},
    {"Chrome/", "Chrome"},
    {"MSIE ", "Internet Explorer"},
    {"Trident/", "Internet Explorer"},
    {"Safari/", "Safari"},
    {"curl/", "curl"},
    {"Wget/", "Wget"},
    {"python-requests/", "Python Requests"},
    {"Go-http-client/", "Go"},
};

static const struct {
    const char *token;
    const char *name;
} systems[] = {
    {"Windows Phone", "Windows Phone"},
    {"Windows", "Windows"},
    {"iPhone", "iOS"},
    {"iPad", "iOS"},
    {"iPod", "iOS"},
    {"Android", "Android"},
    {"CrOS", "Chrome OS"},
    {"Mac OS X", "macOS"},
    {"Macintosh", "macOS"},
    {"FreeBSD", "FreeBSD"},
    {"Linux", "Linux"},
};

static enum ua_device device_of(const char *ua, const char *os)
{
    if (has(ua, "iPad") || has(ua, "Tablet") || has(ua, "Kindle") || has(ua, "Silk/") ||
        (strcmp(os, "Android") == 0 && !has(ua, "Mobile")))
        return UA_TABLET;
    if (has(ua, "Mobi") || has(ua, "iPhone") || has(ua, "iPod") || strcmp(os, "Windows Phone") == 0)
        return UA_MOBILE;
    if (strcmp(os, "Windows") == 0 || strcmp(os, "macOS") == 0 || strcmp(os, "Linux") == 0 ||
        strcmp(os, "Chrome OS") == 0 || strcmp(os, "FreeBSD") == 0)
        return UA_DESKTOP;
    return UA_OTHER;
}

void uaclass_classify(const struct uaclass *u, const char *ua, size_t len, struct ua_info *out)
{
    char text[UACLASS_MAX_LEN + 1];

    out->browser = "Other";
    out->os = "Other";
    out->device = UA_OTHER;
    out->bot = false;
    if (!ua || len == 0)
        return;
    if (len > UACLASS_MAX_LEN)
        len = UACLASS_MAX_LEN;
    memcpy(text, ua, len);
    text[len] = '\0';
    /* A NUL inside ends the text for the matchers: what follows it is not looked at. */
    for (size_t i = 0; i < sizeof(browsers) / sizeof(browsers[0]); i++)
        if (has(text, browsers[i].token)) {
            out->browser = browsers[i].name;
            break;
        }
    for (size_t i = 0; i < sizeof(systems) / sizeof(systems[0]); i++)
        if (has(text, systems[i].token)) {
            out->os = systems[i].name;
            break;
        }
    out->bot = is_bot(u, text);
    out->device = out->bot ? UA_BOT : device_of(text, out->os);
}

const char *uaclass_device_name(enum ua_device d)
{
    static const char *const names[] = {[UA_DESKTOP] = "desktop",
                                        [UA_MOBILE] = "mobile",
                                        [UA_TABLET] = "tablet",
                                        [UA_BOT] = "bot",
                                        [UA_OTHER] = "other"};
    return (unsigned)d < sizeof(names) / sizeof(names[0]) ? names[d] : "other";
}
