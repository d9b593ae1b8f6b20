/* shortenerctl import: a CSV file read once, from start to end, in bounded memory. Lines are
 * checked as they come and gathered into batches; a batch goes to import_store in one
 * statement, then its lines are reported in order: skipped ones with their reason. Nothing of
 * the file is kept from one batch to the next (the keys met so far are in PostgreSQL), so a
 * file of any length takes the same memory.
 *
 * The formats are one table: which header names give which field of a link. */
#include "import.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "csv.h"
#include "import_store.h"
#include "linkkey.h"
#include "numparse.h"
#include "request.h"
#include "timefmt.h"
#include "urlcheck.h"

/* As a create: an expiry at most 100 (Julian) years away. */
#define EXPIRES_MAX_OUT (100 * 31557600LL)
/* Exporters' clocks differ from ours; a link made a moment ago may look a little ahead. */
#define CREATED_SLACK 300
/* Visit counts the server can go on counting exactly (it adds in doubles in Redis). */
#define VISITS_MAX 1000000000000000LL
/* A batch also ends when its urls reach this many bytes, which bounds its memory whatever
 * the urls' lengths. */
#define BATCH_URL_BYTES (4 * 1024 * 1024)
/* Keys made from a url: 62^10 of them, so that a million urls in one file are unlikely to
 * share one (about 6 in 10^7) where 7 characters would make that likely (about 1 in 7). */
#define MADE_KEY_LEN 10
#define TAGS_TEXT    (REQUEST_TAGS_MAX * (REQUEST_TAG_MAX_LEN + 1))
#define REASON_LEN   200

#define T struct import_opts
const struct config_opt import_options[] = {
    CONFIG_FLAG_STR(T, "owner", NULL,
                    "ID of the API key the links belong to (see apikey list); without it, nobody",
                    owner),
    CONFIG_FLAG_INT(T, "batch", 1, IMPORT_BATCH_MAX, CONFIG_XSTR(IMPORT_BATCH_DEFAULT),
                    "lines per transaction", batch),
};
#undef T

/* What a column can give. */
enum field {
    F_KEY,
    F_CUSTOM_KEY, /* bitly: a custom back-half, preferred to the bitlink's */
    F_URL,
    F_EXPIRES_AT,
    F_CREATED_AT,
    F_VISITS,
    F_TAGS,
    F_COUNT
};

struct column_name {
    enum field field;
    const char *name; /* normalised: lower case, without ' ', '_', '-' or '.' */
};

struct format {
    const char *name;
    const char *key_column, *url_column; /* as the format's files spell them */
    const char *expects;                 /* for messages about the header */
    const struct column_name *names;
    size_t nnames;
    bool strict;        /* other columns are refused: csv is ours, a typo there loses data */
    bool key_optional;  /* a line without a key gets one made from its url */
    bool key_from_link; /* the key is the path of a short URL ("bit.ly/3xYz") */
    char tag_sep;
};

static const struct column_name csv_names[] = {
    {F_URL, "url"},
    {F_KEY, "alias"},
    {F_EXPIRES_AT, "expiresat"},
};

/* YOURLS's yourls_url table: keyword, url, title, timestamp, ip, clicks. */
static const struct column_name yourls_names[] = {
    {F_KEY, "keyword"},
    {F_URL, "url"},
    {F_CREATED_AT, "timestamp"},
    {F_VISITS, "clicks"},
};

/* Shlink: the web client's export (createdAt, domain, shortCode, shortUrl, longUrl, title,
 * tags, visits) and shlink-importer's CSV (Long URL, Short code, Tags, ...). */
static const struct column_name shlink_names[] = {
    {F_KEY, "shortcode"},          {F_URL, "longurl"}, {F_CREATED_AT, "createdat"},
    {F_CREATED_AT, "datecreated"}, {F_TAGS, "tags"},   {F_VISITS, "visits"},
    {F_VISITS, "visitscount"},
};

/* Bitly: its links export (Link, Custom link, Destination URL, ...) and the API's names. */
static const struct column_name bitly_names[] = {
    {F_KEY, "link"},
    {F_KEY, "bitlink"},
    {F_CUSTOM_KEY, "customlink"},
    {F_URL, "destinationurl"},
    {F_URL, "longurl"},
    {F_CREATED_AT, "datecreated"},
    {F_CREATED_AT, "createdat"},
    {F_CREATED_AT, "created"},
    {F_VISITS, "clicks"},
    {F_VISITS, "engagements"},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct format formats[] = {
    {"csv", "alias", "url", "url (required), alias, expires_at", csv_names, N(csv_names), true,
     true, false, 0},
    {"yourls", "keyword", "url", "keyword and url (and timestamp, clicks), as in yourls_url",
     yourls_names, N(yourls_names), false, false, false, 0},
    {"shlink", "shortCode", "longUrl",
     "shortCode and longUrl (and createdAt, tags, visits), as Shlink exports them", shlink_names,
     N(shlink_names), false, false, false, '|'},
    {"bitly", "Link", "Destination URL",
     "Link and Destination URL or long_url (and Custom link, Date created, Clicks), as Bitly "
     "exports them",
     bitly_names, N(bitly_names), false, false, true, 0},
};

const char import_format_names[] = "csv, yourls, shlink, bitly";

static const char *const field_names[F_COUNT] = {
    [F_KEY] = "key",           [F_CUSTOM_KEY] = "custom key",    [F_URL] = "url",
    [F_EXPIRES_AT] = "expiry", [F_CREATED_AT] = "creation time", [F_VISITS] = "visit count",
    [F_TAGS] = "tags",
};

struct import_file {
    const struct format *fmt;
    char *path;
    int fd;
    struct csv_reader *reader;
    size_t ncolumns;
    int column[F_COUNT]; /* index of the column giving each field, or -1 */
};

/* One line of a batch: a link to store, or the reason it is skipped. */
struct entry {
    long long line;
    bool skip;
    bool made_key; /* the key was made from the url */
    char key[ALIAS_MAX_LEN + 1];
    char *url; /* urlcheck's normalised copy */
    int64_t created_at, expires_at, visits;
    char tags[TAGS_TEXT + 1];
    char reason[REASON_LEN];  /* why it is skipped */
    char warning[REASON_LEN]; /* what was left out of it, when imported */
};

/* ------------------------------------------------------------------ text for messages */

/* Writes s[0..len-1] for a message: quoted, unprintable bytes as \xNN, cut at 40 bytes. */
static const char *shown(char *buf, size_t size, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i;

    buf[o++] = '\'';
    for (i = 0; i < len && i < 40 && o + 6 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 0xf];
        } else {
            buf[o++] = (char)c;
        }
    }
    if (i < len && o + 4 < size) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '\'';
    buf[o] = '\0';
    return buf;
}

static void set_reason(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_reason(char *buf, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, REASON_LEN, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ the header */

static bool utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            min = 0x10000;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        unsigned cp = c & (0x3f >> n);
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/* A header name as the table spells it: lower case, without ' ', '_', '-' or '.'. */
static void normalise(const char *s, size_t len, char *out, size_t size)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 1 < size; i++) {
        char c = s[i];
        if (c == ' ' || c == '_' || c == '-' || c == '.' || c == '\t')
            continue;
        out[o++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    out[o] = '\0';
}

static const struct format *format_find(const char *name)
{
    for (size_t i = 0; i < N(formats); i++)
        if (strcmp(formats[i].name, name) == 0)
            return &formats[i];
    return NULL;
}

/* Maps the header's columns to fields. Returns 0 or -EINVAL with the reason in err. */
static int map_header(struct import_file *f, const struct csv_record *h, const char *path,
                      char *err, size_t errlen)
{
    const struct format *fmt = f->fmt;
    char name[72], q[200], q2[200];

    for (int k = 0; k < F_COUNT; k++)
        f->column[k] = -1;
    f->ncolumns = h->nfields;
    for (size_t i = 0; i < h->nfields; i++) {
        const unsigned char *s = (const unsigned char *)h->field[i];
        for (size_t k = 0; k < h->len[i]; k++)
            if ((s[k] < 0x20 && s[k] != '\t') || s[k] == 0x7f) {
                snprintf(err, errlen,
                         "%s does not look like a CSV file: its first line holds binary data",
                         path);
                return -EINVAL;
            }
        if (!utf8_valid(s, h->len[i])) {
            snprintf(err, errlen,
                     "%s does not look like a CSV file: its first line is not UTF-8 text", path);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < h->nfields; i++) {
        const struct column_name *found = NULL;
        if (h->len[i] == 0)
            continue; /* a separator at the end of the line, as spreadsheets leave */
        normalise(h->field[i], h->len[i], name, sizeof(name));
        for (size_t k = 0; k < fmt->nnames && h->len[i] < sizeof(name); k++)
            if (strcmp(fmt->names[k].name, name) == 0)
                found = &fmt->names[k];
        if (!found) {
            if (!fmt->strict)
                continue;
            snprintf(err, errlen,
                     "%s: unknown column %s in the first line; a %s file names its columns "
                     "there: %s",
                     path, shown(q, sizeof(q), h->field[i], h->len[i]), fmt->name, fmt->expects);
            return -EINVAL;
        }
        int prev = f->column[found->field];
        if (prev >= 0) {
            snprintf(err, errlen, "%s: columns %s and %s both give the %s", path,
                     shown(q, sizeof(q), h->field[prev], h->len[prev]),
                     shown(q2, sizeof(q2), h->field[i], h->len[i]), field_names[found->field]);
            return -EINVAL;
        }
        f->column[found->field] = (int)i;
    }
    bool no_url = f->column[F_URL] < 0, no_key = f->column[F_KEY] < 0 && !fmt->key_optional;
    if (no_url || no_key) {
        snprintf(err, errlen, "%s: the first line has no %s%s%s column (a %s file has %s)", path,
                 no_key ? fmt->key_column : "", no_key && no_url ? " and no " : "",
                 no_url ? fmt->url_column : "", fmt->name, fmt->expects);
        return -EINVAL;
    }
    return 0;
}

int import_open(struct import_file **out, const char *format, const char *path, char *err,
                size_t errlen)
{
    const struct format *fmt = format_find(format);
    struct import_file *f = NULL;
    const struct csv_record *h;
    struct stat st;
    char q[200];
    int rc = -EINVAL;

    *out = NULL;
    if (!fmt) {
        snprintf(err, errlen, "unknown format %s (formats: %s)",
                 shown(q, sizeof(q), format, strlen(format)), import_format_names);
        return -EINVAL;
    }
    f = calloc(1, sizeof(*f));
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    f->fmt = fmt;
    f->fd = -1;
    f->path = strdup(path);
    if (!f->path) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", f->path, strerror(errno));
        goto out;
    }
    if (fstat(f->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "cannot read %s: it is a directory", f->path);
        goto out;
    }
    f->reader = csv_reader_new(csv_source_fd, &f->fd, IMPORT_MAX_RECORD);
    if (!f->reader) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    rc = csv_read(f->reader, &h);
    if (rc == 0) {
        snprintf(err, errlen, "%s is empty: its first line must name the columns (%s: %s)", f->path,
                 fmt->name, fmt->expects);
        rc = -EINVAL;
        goto out;
    }
    if (rc == -EBADMSG) {
        snprintf(err, errlen,
                 "%s does not look like a CSV file: its first line is not a header (%s)", f->path,
                 csv_error(f->reader));
        rc = -EINVAL;
        goto out;
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot read %s: %s", f->path, strerror(-rc));
        rc = -EINVAL;
        goto out;
    }
    rc = map_header(f, h, f->path, err, errlen);
    if (rc < 0)
        goto out;
    *out = f;
    return 0;
out:
    import_close(f);
    return rc;
}

void import_close(struct import_file *f)
{
    if (!f)
        return;
    csv_reader_free(f->reader);
    if (f->fd >= 0)
        close(f->fd);
    free(f->path);
    free(f);
}

/* ------------------------------------------------------------------ one line */

/* Reads a date as exporters write them into seconds since the epoch: RFC 3339, or with a
 * space for the 'T', no zone (taken as UTC, as YOURLS's MySQL timestamps are), " UTC", an
 * offset without its colon (+0000, as Bitly's API writes), or a bare date. */
static int parse_time(const char *s, size_t len, int64_t *out)
{
    char buf[64];
    size_t n, pos;

    while (len > 0 && s[0] == ' ')
        s++, len--;
    while (len > 0 && s[len - 1] == ' ')
        len--;
    if (len < 10 || len > 40)
        return -EINVAL;
    if (len == 10) {
        n = (size_t)snprintf(buf, sizeof(buf), "%.10sT00:00:00Z", s);
        return timefmt_parse(buf, n, out);
    }
    if (len < 19)
        return -EINVAL;
    memcpy(buf, s, 19);
    pos = 19;
    n = 19;
    if (s[pos] == '.' || s[pos] == ',') {
        buf[n++] = '.';
        pos++;
        while (pos < len && s[pos] >= '0' && s[pos] <= '9' && n < 40)
            buf[n++] = s[pos++];
    }
    while (pos < len && s[pos] == ' ')
        pos++;
    const char *zone = s + pos;
    size_t zlen = len - pos;
    if (zlen == 0 || (zlen == 3 && (memcmp(zone, "UTC", 3) == 0 || memcmp(zone, "GMT", 3) == 0))) {
        buf[n++] = 'Z';
    } else if ((zone[0] == '+' || zone[0] == '-') && (zlen == 3 || zlen == 5)) {
        /* +HH or +HHMM: the colon RFC 3339 wants */
        memcpy(buf + n, zone, 3);
        n += 3;
        buf[n++] = ':';
        memcpy(buf + n, zlen == 5 ? zone + 3 : "00", 2);
        n += 2;
    } else if (zlen <= 6) {
        memcpy(buf + n, zone, zlen);
        n += zlen;
    } else {
        return -EINVAL;
    }
    return timefmt_parse(buf, n, out);
}

/* The key in a short link: what follows its host ("bit.ly/3xYz", "https://bit.ly/3xYz/"). */
static void key_from_link(const char **s, size_t *len)
{
    const char *p = *s, *end = *s + *len;

    if ((size_t)(end - p) > 8 && strncasecmp(p, "https://", 8) == 0)
        p += 8;
    else if ((size_t)(end - p) > 7 && strncasecmp(p, "http://", 7) == 0)
        p += 7;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    if (slash)
        p = slash + 1;
    if (end > p && end[-1] == '/')
        end--;
    *s = p;
    *len = (size_t)(end - p);
}

/* The key of a line without one: made from its url and owner, the same on every run. */
static void make_key(const char *url, int64_t owner, char out[MADE_KEY_LEN + 1])
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    static const unsigned char context[] = "shortener import key v1";
    unsigned char hash[8];
    char prefix[24];
    crypto_generichash_state st;
    uint64_t v = 0;

    snprintf(prefix, sizeof(prefix), "%lld\n", (long long)owner);
    crypto_generichash_init(&st, context, sizeof(context) - 1, sizeof(hash));
    crypto_generichash_update(&st, (const unsigned char *)prefix, strlen(prefix));
    crypto_generichash_update(&st, (const unsigned char *)url, strlen(url));
    crypto_generichash_final(&st, hash, sizeof(hash));
    for (size_t i = 0; i < sizeof(hash); i++)
        v = (v << 8) | hash[i];
    for (int i = MADE_KEY_LEN - 1; i >= 0; i--) {
        out[i] = alphabet[v % 62];
        v /= 62;
    }
    out[MADE_KEY_LEN] = '\0';
}

static bool has_field(const struct import_file *f, const struct csv_record *rec, enum field k)
{
    return f->column[k] >= 0 && rec->len[f->column[k]] > 0;
}

static int check_key(const char *s, size_t len, struct entry *e)
{
    char q[200];

    switch (linkkey_check_alias(s, len)) {
    case LINKKEY_OK:
        memcpy(e->key, s, len);
        e->key[len] = '\0';
        return 0;
    case LINKKEY_BAD_LENGTH:
        set_reason(e->reason, "key %s is not %d to %d characters long", shown(q, sizeof(q), s, len),
                   ALIAS_MIN_LEN, ALIAS_MAX_LEN);
        return -EINVAL;
    case LINKKEY_BAD_CHARS:
        set_reason(e->reason, "key %s has characters other than letters, digits, '_' and '-'",
                   shown(q, sizeof(q), s, len));
        return -EINVAL;
    case LINKKEY_RESERVED:
        set_reason(e->reason, "key %s is reserved", shown(q, sizeof(q), s, len));
        return -EINVAL;
    }
    return -EINVAL;
}

static void append(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends to a REASON_LEN buffer, cutting what does not fit. */
static void append(char *buf, const char *fmt, ...)
{
    size_t used = strlen(buf);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf + used, REASON_LEN - used, fmt, ap);
    va_end(ap);
}

/* Whether tag t[0..n-1] is in the comma-separated list. */
static bool has_tag(const char *list, const char *t, size_t n)
{
    while (*list) {
        size_t len = strcspn(list, ",");
        if (len == n && memcmp(list, t, n) == 0)
            return true;
        list += len + (list[len] == ',');
    }
    return false;
}

/* Keeps the valid tags of s (joined with sep) in e->tags, each once, up to REQUEST_TAGS_MAX;
 * the others are named in e->warning. */
static void take_tags(const char *s, size_t len, char sep, struct entry *e)
{
    const char *end = s + len;
    size_t used = 0, kept = 0;
    bool dropped = false;
    char q[48];

    while (s < end) {
        const char *next = memchr(s, sep, (size_t)(end - s));
        const char *a = s, *b = next ? next : end;
        while (a < b && *a == ' ')
            a++;
        while (b > a && b[-1] == ' ')
            b--;
        size_t n = (size_t)(b - a);
        s = next ? next + 1 : end;
        if (n == 0 || has_tag(e->tags, a, n))
            continue;
        if (!linkkey_is_tag(a, n) || kept == REQUEST_TAGS_MAX) {
            append(e->warning, "%s%s",
                   dropped ? ", " : "tags left out: ", shown(q, sizeof(q), a, n));
            dropped = true;
            continue;
        }
        if (used)
            e->tags[used++] = ',';
        memcpy(e->tags + used, a, n);
        used += n;
        e->tags[used] = '\0';
        kept++;
    }
    if (dropped)
        append(e->warning, " (a link has at most %d tags of 1 to %d letters, digits, '_' and '-')",
               REQUEST_TAGS_MAX, REQUEST_TAG_MAX_LEN);
}

/* Turns a record into e: a link to import, or e->skip with the reason. */
static void convert(const struct import_file *f, const struct csv_record *rec,
                    const struct import_settings *s, int64_t now, struct entry *e)
{
    const struct format *fmt = f->fmt;
    enum urlcheck_result uc;
    const char *v;
    size_t len;
    char q[200];

    memset(e, 0, sizeof(*e));
    e->line = rec->line;
    e->skip = true;
    if (rec->nfields != f->ncolumns) {
        set_reason(e->reason, "%zu field%s where the header has %zu", rec->nfields,
                   rec->nfields == 1 ? "" : "s", f->ncolumns);
        return;
    }

    v = rec->field[f->column[F_URL]];
    len = rec->len[f->column[F_URL]];
    uc = urlcheck_validate(v, len, s->base_url, &e->url);
    if (uc != URLCHECK_OK) {
        set_reason(e->reason, "%s", urlcheck_describe(uc));
        return;
    }

    enum field kf = has_field(f, rec, F_CUSTOM_KEY) ? F_CUSTOM_KEY : F_KEY;
    if (!has_field(f, rec, kf)) {
        if (!fmt->key_optional) {
            set_reason(e->reason, "no key: %s is empty", fmt->key_column);
            return;
        }
        make_key(e->url, s->owner, e->key);
        e->made_key = true;
    } else {
        v = rec->field[f->column[kf]];
        len = rec->len[f->column[kf]];
        if (fmt->key_from_link)
            key_from_link(&v, &len);
        if (check_key(v, len, e) < 0)
            return;
    }

    if (has_field(f, rec, F_EXPIRES_AT)) {
        v = rec->field[f->column[F_EXPIRES_AT]];
        len = rec->len[f->column[F_EXPIRES_AT]];
        if (parse_time(v, len, &e->expires_at) < 0) {
            set_reason(e->reason, "expires_at %s is not a date and time (RFC 3339)",
                       shown(q, sizeof(q), v, len));
            return;
        }
        if (e->expires_at <= now) {
            set_reason(e->reason, "expires_at is in the past");
            return;
        }
        if (e->expires_at - now > EXPIRES_MAX_OUT) {
            set_reason(e->reason, "expires_at is more than 100 years away");
            return;
        }
    }

    if (has_field(f, rec, F_CREATED_AT)) {
        v = rec->field[f->column[F_CREATED_AT]];
        len = rec->len[f->column[F_CREATED_AT]];
        if (parse_time(v, len, &e->created_at) < 0 || e->created_at <= 0) {
            set_reason(e->reason, "creation time %s is not a date and time",
                       shown(q, sizeof(q), v, len));
            return;
        }
        if (e->created_at > now + CREATED_SLACK) {
            set_reason(e->reason, "creation time %s is in the future", shown(q, sizeof(q), v, len));
            return;
        }
    }

    if (has_field(f, rec, F_VISITS)) {
        long long n;
        v = rec->field[f->column[F_VISITS]];
        len = rec->len[f->column[F_VISITS]];
        if (numparse_ll_n(v, len, 0, VISITS_MAX, 0, &n) < 0) {
            set_reason(e->reason, "visit count %s is not a whole number from 0 to %lld",
                       shown(q, sizeof(q), v, len), VISITS_MAX);
            return;
        }
        e->visits = n;
    }

    if (has_field(f, rec, F_TAGS))
        take_tags(rec->field[f->column[F_TAGS]], rec->len[f->column[F_TAGS]], fmt->tag_sep, e);

    e->skip = false;
}

/* ------------------------------------------------------------------ batches */

struct batch {
    struct entry *entries;
    struct import_row *rows;
    struct import_status *status;
    const char **imported; /* keys of the links the last flush made */
    size_t n, cap;
    size_t url_bytes;
};

static void batch_clear(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->entries[i].url);
        b->entries[i].url = NULL;
    }
    b->n = 0;
    b->url_bytes = 0;
}

static void say(FILE *out, long long line, const char *what)
{
    fprintf(out, "line %lld: %s\n", line, what);
}

/* Why a line whose key the database turned down is skipped. */
static void refusal(const struct entry *e, const struct import_status *st, char *out)
{
    char q[200];
    const char *key = shown(q, sizeof(q), e->key, strlen(e->key));

    switch (st->outcome) {
    case IMPORT_DUPLICATE:
        if (e->made_key)
            set_reason(out,
                       "same url as line %lld (a line without alias gets its key from its "
                       "url)",
                       st->first_line);
        else
            set_reason(out, "duplicate key %s in the file (first on line %lld)", key,
                       st->first_line);
        break;
    case IMPORT_EXISTS:
        if (e->made_key)
            set_reason(out, "already imported (as key %s, made from its url)", key);
        else
            set_reason(out, "key %s already exists, with this url", key);
        break;
    case IMPORT_TAKEN:
        set_reason(out, "key %s already exists, with another url", key);
        break;
    case IMPORT_USED:
        set_reason(out,
                   "key %s belonged to a link that was deleted or expired; keys are never "
                   "given again",
                   key);
        break;
    case IMPORT_IMPORTED:
        out[0] = '\0';
        break;
    }
}

/* Stores the batch's links, then reports its lines in order. */
static int batch_flush(struct batch *b, struct pg_conn *conn, const struct import_settings *s,
                       struct import_result *res, char *err, size_t errlen)
{
    size_t nrows = 0;
    int rc;

    for (size_t i = 0; i < b->n; i++) {
        const struct entry *e = &b->entries[i];
        if (e->skip)
            continue;
        b->rows[nrows] = (struct import_row){.line = e->line,
                                             .key = e->key,
                                             .url = e->url,
                                             .created_at = e->created_at,
                                             .expires_at = e->expires_at,
                                             .visits = e->visits,
                                             .tags = e->tags};
        nrows++;
    }
    rc = import_store_batch(conn, b->rows, nrows, s->owner, b->status, err, errlen);
    if (rc < 0)
        return rc;
    /* Committed. A redirect may have cached a key as unknown before it was imported. */
    size_t nimported = 0;
    for (size_t i = 0; i < nrows; i++)
        if (b->status[i].outcome == IMPORT_IMPORTED)
            b->imported[nimported++] = b->rows[i].key;
    if (nimported > 0 && s->evict && s->evict(s->ctx, b->imported, nimported) < 0)
        res->not_evicted += (long long)nimported;
    nrows = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct entry *e = &b->entries[i];
        if (!e->skip) {
            const struct import_status *st = &b->status[nrows++];
            if (st->outcome == IMPORT_IMPORTED) {
                res->imported++;
                if (e->warning[0])
                    fprintf(s->report, "line %lld: warning: %s\n", e->line, e->warning);
                continue;
            }
            refusal(e, st, e->reason);
        }
        res->skipped++;
        say(s->report, e->line, e->reason);
    }
    res->line = b->n ? b->entries[b->n - 1].line : res->line;
    batch_clear(b);
    fflush(s->report);
    return 0;
}

int import_run(struct import_file *f, struct pg_conn *conn, const struct import_settings *s,
               struct import_result *res, char *err, size_t errlen)
{
    struct batch b = {0};
    const struct csv_record *rec;
    long long next_progress = IMPORT_PROGRESS_LINES;
    int64_t now = (int64_t)time(NULL);
    int rc = -EIO;

    memset(res, 0, sizeof(*res));
    res->end = IMPORT_FAILED;
    b.cap = (size_t)s->batch;
    b.entries = calloc(b.cap, sizeof(*b.entries));
    b.rows = calloc(b.cap, sizeof(*b.rows));
    b.status = calloc(b.cap, sizeof(*b.status));
    b.imported = calloc(b.cap, sizeof(*b.imported));
    if (!b.entries || !b.rows || !b.status || !b.imported) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (import_store_begin(conn, err, errlen) < 0)
        goto out;
    for (;;) {
        rc = csv_read(f->reader, &rec);
        if (rc == 0)
            break;
        if (rc < 0 && rc != -EBADMSG) {
            snprintf(err, errlen, "cannot read %s: %s", f->path, csv_error(f->reader));
            rc = -EIO;
            goto out;
        }
        if (s->progress && rec->line >= next_progress) {
            fprintf(s->report, "... %lld lines\n",
                    rec->line / IMPORT_PROGRESS_LINES * IMPORT_PROGRESS_LINES);
            next_progress = (rec->line / IMPORT_PROGRESS_LINES + 1) * IMPORT_PROGRESS_LINES;
        }
        struct entry *e = &b.entries[b.n++];
        if (rc == -EBADMSG) {
            memset(e, 0, sizeof(*e));
            e->line = rec->line;
            e->skip = true;
            set_reason(e->reason, "not a valid CSV record: %s", csv_error(f->reader));
        } else {
            convert(f, rec, s, now, e);
            if (e->url)
                b.url_bytes += strlen(e->url);
        }
        if (b.n == b.cap || b.url_bytes >= BATCH_URL_BYTES) {
            rc = batch_flush(&b, conn, s, res, err, errlen);
            if (rc < 0)
                goto out;
            if (s->stop && s->stop(s->ctx)) {
                res->end = IMPORT_STOPPED;
                rc = 0;
                goto out;
            }
        }
    }
    rc = batch_flush(&b, conn, s, res, err, errlen);
    if (rc < 0)
        goto out;
    res->end = IMPORT_DONE;
    rc = 0;
out:
    if (rc < 0) {
        res->end = IMPORT_FAILED;
        rc = -EIO;
    }
    if (b.entries)
        batch_clear(&b);
    free(b.entries);
    free(b.rows);
    free(b.status);
    free(b.imported);
    return rc;
}
