/* The CSV reader: one pass over the bytes through a small state machine, a fixed input
 * buffer and one record buffer of the caller's limit, so memory stays the same whatever the
 * length of the file. A record is kept whole in that buffer until the caller is done with it;
 * nothing else of the file is kept.
 *
 * Lenient where spreadsheets and exporters are sloppy (a quote inside an unquoted field is
 * kept as it is, a lone CR ends a line), strict where data would be lost silently (text after
 * a closing quote, a quoted field never closed). */
#include "csv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CSV_INPUT_SIZE 65536

enum csv_state {
    ST_FIELD_START, /* before the first byte of a field */
    ST_UNQUOTED,
    ST_QUOTED,
    ST_QUOTE,   /* a quote inside a quoted field: its end, or the first of a doubled pair */
    ST_DISCARD, /* a bad record: skipping to the end of the line */
};

struct csv_reader {
    csv_source_fn source;
    void *ctx;
    size_t max_record;

    unsigned char in[CSV_INPUT_SIZE];
    size_t in_pos, in_len;
    bool started; /* the byte order mark has been looked for */
    bool eof;
    bool after_cr; /* the last byte ended a line with CR: an LF right after belongs to it */
    long long line;

    /* The record being read: field data, each field NUL-terminated, in buf. */
    enum csv_state state;
    char *buf;
    size_t used; /* bytes of buf in use */
    size_t raw;  /* bytes of the file the record has taken so far */
    size_t start[CSV_MAX_FIELDS];
    size_t nfields;
    bool bad;
    char error[160];
    struct csv_record rec;
};

ssize_t csv_source_fd(void *ctx, void *buf, size_t n)
{
    ssize_t got;

    do
        got = read(*(const int *)ctx, buf, n);
    while (got < 0 && errno == EINTR);
    return got;
}

struct csv_reader *csv_reader_new(csv_source_fn source, void *ctx, size_t max_record)
{
    struct csv_reader *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    /* Unquoting only ever shortens a record, and each field's NUL takes the place of the
     * separator or line end after it: max_record + 1 bytes hold any record within the limit. */
    r->buf = malloc(max_record + 1);
    if (!r->buf) {
        free(r);
        return NULL;
    }
    r->source = source;
    r->ctx = ctx;
    r->max_record = max_record;
    r->line = 1;
    return r;
}

void csv_reader_free(struct csv_reader *r)
{
    if (!r)
        return;
    free(r->buf);
    free(r);
}

const char *csv_error(const struct csv_reader *r)
{
    return r->error;
}

/* Refills the input buffer. Returns 1 with more bytes, 0 at the end, or a negative errno. */
static int fill(struct csv_reader *r)
{
    ssize_t got;

    if (r->eof)
        return 0;
    got = r->source(r->ctx, r->in, sizeof(r->in));
    if (got < 0) {
        int e = errno ? errno : EIO;
        snprintf(r->error, sizeof(r->error), "cannot read: %s", strerror(e));
        return -e;
    }
    if (got == 0) {
        r->eof = true;
        return 0;
    }
    r->in_pos = 0;
    r->in_len = (size_t)got;
    return 1;
}

/* Skips a UTF-8 byte order mark at the very start. The first read may be short, so up to
 * three bytes are gathered first. */
static int skip_bom(struct csv_reader *r)
{
    static const unsigned char bom[3] = {0xef, 0xbb, 0xbf};
    unsigned char head[3];
    size_t have = 0;

    r->started = true;
    while (have < sizeof(head)) {
        ssize_t got = r->source(r->ctx, head + have, sizeof(head) - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno ? errno : EIO;
            snprintf(r->error, sizeof(r->error), "cannot read: %s", strerror(e));
            return -e;
        }
        if (got == 0) {
            r->eof = true;
            break;
        }
        have += (size_t)got;
    }
    if (have == sizeof(head) && memcmp(head, bom, sizeof(bom)) == 0)
        have = 0;
    memcpy(r->in, head, have);
    r->in_pos = 0;
    r->in_len = have;
    return 0;
}

static void bad(struct csv_reader *r, const char *why)
{
    if (!r->bad)
        snprintf(r->error, sizeof(r->error), "%s", why);
    r->bad = true;
    r->state = ST_DISCARD;
}

static void put(struct csv_reader *r, char c)
{
    r->buf[r->used++] = c;
}

static void end_field(struct csv_reader *r)
{
    put(r, '\0');
}

/* Starts a field at the current end of buf, or marks the record bad when it has too many. */
static bool start_field(struct csv_reader *r)
{
    if (r->nfields == CSV_MAX_FIELDS) {
        char why[64];
        snprintf(why, sizeof(why), "more than %d fields", CSV_MAX_FIELDS);
        bad(r, why);
        return false;
    }
    r->start[r->nfields++] = r->used;
    return true;
}

static void reset_record(struct csv_reader *r)
{
    r->state = ST_FIELD_START;
    r->used = 0;
    r->raw = 0;
    r->nfields = 0;
    r->bad = false;
    r->error[0] = '\0';
    r->rec.line = r->line;
}

/* Hands the finished record out: 1, -EBADMSG for a bad one, or 2 for a blank line, which
 * the caller passes over. */
static int finish(struct csv_reader *r, const struct csv_record **rec)
{
    *rec = &r->rec;
    r->rec.nfields = 0;
    if (r->bad)
        return -EBADMSG;
    if (r->nfields == 0)
        return 2;
    /* A separator at the end of the line opened one more, empty, field. */
    if (r->state == ST_FIELD_START && !start_field(r))
        return -EBADMSG;
    end_field(r);
    r->rec.nfields = r->nfields;
    for (size_t i = 0; i < r->nfields; i++) {
        size_t end = i + 1 < r->nfields ? r->start[i + 1] : r->used;
        r->rec.field[i] = r->buf + r->start[i];
        r->rec.len[i] = end - r->start[i] - 1;
    }
    return 1;
}

/* One byte of a record that is not a line end outside quotes. */
static void consume(struct csv_reader *r, char c)
{
    switch (r->state) {
    case ST_FIELD_START:
        if (!start_field(r))
            return;
        if (c == '"') {
            r->state = ST_QUOTED;
        } else if (c == ',') {
            end_field(r);
        } else {
            put(r, c);
            r->state = ST_UNQUOTED;
        }
        return;
    case ST_UNQUOTED:
        if (c == ',') {
            end_field(r);
            r->state = ST_FIELD_START;
        } else {
            put(r, c);
        }
        return;
    case ST_QUOTED:
        if (c == '"') {
            r->state = ST_QUOTE;
            return;
        }
        if (c == '\n')
            r->line++;
        put(r, c);
        return;
    case ST_QUOTE:
        if (c == '"') {
            put(r, '"');
            r->state = ST_QUOTED;
        } else if (c == ',') {
            end_field(r);
            r->state = ST_FIELD_START;
        } else {
            bad(r, "text after the closing quote of a field");
        }
        return;
    case ST_DISCARD:
        return;
    }
}

int csv_read(struct csv_reader *r, const struct csv_record **rec)
{
    int rc;

    if (!r->started) {
        rc = skip_bom(r);
        if (rc < 0)
            return rc;
    }
    reset_record(r);
    for (;;) {
        if (r->in_pos == r->in_len) {
            rc = fill(r);
            if (rc < 0)
                return rc;
            if (rc == 0)
                break;
        }
        char c = (char)r->in[r->in_pos++];

        if (r->after_cr) {
            r->after_cr = false;
            if (c == '\n')
                continue; /* CRLF: the CR ended the line */
        }
        if ((c == '\n' || c == '\r') && r->state != ST_QUOTED) {
            r->line++;
            r->after_cr = c == '\r';
            if (r->state == ST_QUOTE)
                r->state = ST_UNQUOTED; /* the quoted field is complete */
            rc = finish(r, rec);
            if (rc != 2)
                return rc;
            reset_record(r);
            continue;
        }
        if (r->state == ST_DISCARD)
            continue;
        if (++r->raw > r->max_record) {
            char why[64];
            snprintf(why, sizeof(why), "longer than %zu bytes", r->max_record);
            bad(r, why);
            continue;
        }
        consume(r, c);
    }
    /* The end of the input ends the last record, if there is one. */
    if (r->state == ST_QUOTED)
        bad(r, "a quoted field is never closed");
    if (r->state == ST_QUOTE)
        r->state = ST_UNQUOTED;
    rc = finish(r, rec);
    return rc == 2 ? 0 : rc;
}
