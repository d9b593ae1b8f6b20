/* `shortenerctl import FORMAT FILE`: links from a CSV file, with their keys, in batches.
 *
 * Formats (header names are matched without regard to case, spaces, '_', '-' or '.', in any
 * order; other columns are ignored, except in csv, our own format, where they are refused):
 *   csv     url (required), alias, expires_at (RFC 3339). A line without an alias gets a
 *           10-character key made from its url and owner, so a second run makes it again.
 *   yourls  the yourls_url table: keyword, url, title, timestamp, ip, clicks.
 *   shlink  the short URLs export of Shlink's web client (shortCode, longUrl, createdAt, tags
 *           joined with '|', visits, ...), or shlink-importer's CSV (Short code, Long URL, ...).
 *   bitly   Bitly's links export: Link (the bitlink, whose path is the key), Custom link (a
 *           custom back-half, preferred when present), Destination URL or long_url, and
 *           optionally Date created / created_at and Clicks / Engagements.
 *
 * Every line is checked as a create would be (the url by urlcheck against BASE_URL, the key
 * as an alias), and a line that fails is skipped with its reason; so is a line whose key
 * exists, which makes a second run over the same file import nothing. Bad tags are dropped
 * with a warning, the link imported. Dates without a zone are taken as UTC. */
#ifndef SHORTENER_IMPORT_H
#define SHORTENER_IMPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

#define IMPORT_BATCH_DEFAULT 1000
#define IMPORT_BATCH_MAX     10000
/* A record (a line, or several when a quoted field spans lines) longer than this is skipped. */
#define IMPORT_MAX_RECORD (64 * 1024)
/* Progress on a terminal, every this many lines. */
#define IMPORT_PROGRESS_LINES 100000

struct pg_conn;

struct import_opts {
    char *owner;     /* ID of the API key the links belong to; NULL: nobody */
    long long batch; /* lines per transaction */
};

/* The flags of `shortenerctl import`: --owner ID and --batch N, for config_load_args(). */
#define IMPORT_NOPTIONS 2
extern const struct config_opt import_options[IMPORT_NOPTIONS];

/* The format names, for messages: "csv, yourls, shlink, bitly". */
extern const char import_format_names[];

struct import_file;

/* Opens path (/dev/stdin reads standard input) as a file of the named format and reads its header.
 * Returns 0, or -EINVAL with a sentence in err when the format is unknown, the file cannot
 * be opened, is empty, is not text, or its header lacks what the format needs. Close with
 * import_close(). */
int import_open(struct import_file **out, const char *format, const char *path, char *err,
                size_t errlen);
void import_close(struct import_file *f);

struct import_settings {
    int64_t owner;        /* 0: nobody */
    long long batch;      /* 1..IMPORT_BATCH_MAX */
    const char *base_url; /* links to it are refused, as creates refuse them */
    bool progress;        /* say every IMPORT_PROGRESS_LINES lines how far it got */
    FILE *report;         /* one line per skipped line, warnings, progress */
    /* Called after each commit with the keys just imported (valid during the call only), to
     * remove what the cache says of them: the "unknown key" a redirect may have left. Returns
     * 0, or < 0 when that failed: counted, not fatal. May be NULL. */
    int (*evict)(void *ctx, const char *const *keys, size_t n);
    /* Asked after each batch: true stops the run there (a signal came, say). May be NULL. */
    bool (*stop)(void *ctx);
    void *ctx;
};

enum import_end { IMPORT_DONE, IMPORT_STOPPED, IMPORT_FAILED };

struct import_result {
    long long imported, skipped;
    long long not_evicted; /* imported keys whose cache entries may remain */
    long long line;        /* the last line dealt with */
    enum import_end end;   /* IMPORT_FAILED: the reason is in err */
};

/* Imports the rest of the file over conn, batch by batch. Returns 0 (the whole file read, or
 * stopped), or -EIO when PostgreSQL or reading failed, with the reason in err; *res counts
 * what was committed and skipped either way. */
int import_run(struct import_file *f, struct pg_conn *conn, const struct import_settings *s,
               struct import_result *res, char *err, size_t errlen);

#endif
