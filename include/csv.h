/* A streaming CSV reader (RFC 4180) for files of any length in bounded memory: quoted fields
 * with separators, doubled quotes and line breaks inside, LF, CRLF or CR line ends, a UTF-8
 * byte order mark at the start. A record longer than the limit, with too many fields or with
 * text after a closing quote is given back as a bad record with its line and the reason, and
 * reading goes on after the end of that line: one bad line never stops a file. Blank lines
 * are passed over. */
#ifndef SHORTENER_CSV_H
#define SHORTENER_CSV_H

#include <stddef.h>
#include <sys/types.h>

#define CSV_MAX_FIELDS 256

/* Where bytes come from: reads up to n bytes into buf, like read(2): the count, 0 at the end,
 * or -1 with errno set. */
typedef ssize_t (*csv_source_fn)(void *ctx, void *buf, size_t n);

/* A csv_source_fn over a file descriptor: ctx points at the int. */
ssize_t csv_source_fd(void *ctx, void *buf, size_t n);

struct csv_record {
    long long line; /* the line of the file the record starts on, from 1 */
    size_t nfields; /* 0 for a bad record */
    /* Each field is NUL-terminated for convenience, but the data itself may hold NUL bytes:
     * its length is len[i]. Valid until the next csv_read(). */
    const char *field[CSV_MAX_FIELDS];
    size_t len[CSV_MAX_FIELDS];
};

struct csv_reader;

/* A reader of records of at most max_record bytes as they stand in the file. NULL when out of
 * memory. Free with csv_reader_free(). */
struct csv_reader *csv_reader_new(csv_source_fn source, void *ctx, size_t max_record);
void csv_reader_free(struct csv_reader *r);

/* Reads the next record into *rec. Returns 1 with a record; 0 at the end of the input;
 * -EBADMSG for a bad record, whose line is in (*rec)->line and whose reason (a short
 * printable sentence) is csv_error(); or another negative errno when the source failed,
 * after which the reader is done. */
int csv_read(struct csv_reader *r, const struct csv_record **rec);

/* Why the last csv_read() gave -EBADMSG or failed. */
const char *csv_error(const struct csv_reader *r);

#endif
