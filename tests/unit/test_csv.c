/* Unit tests for src/ctl/csv.c, the streaming CSV reader of shortenerctl import. Every input is
 * read in chunks of several sizes, down to one byte at a time, and must give the same records:
 * a quote, a CRLF or the byte order mark split across two reads is the ordinary case when a
 * file is streamed. */
#include "csv.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

struct mem_source {
    const char *data;
    size_t len, pos, chunk;
    int fail_errno; /* after the data, fail with this instead of ending */
};

static ssize_t mem_read(void *ctx, void *buf, size_t n)
{
    struct mem_source *m = ctx;
    size_t k = m->len - m->pos;

    if (k == 0 && m->fail_errno) {
        errno = m->fail_errno;
        return -1;
    }
    if (k > n)
        k = n;
    if (k > m->chunk)
        k = m->chunk;
    memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return (ssize_t)k;
}

/* Appends text to out, escaping what would be invisible. */
static void append(char *out, size_t size, const char *s, size_t len)
{
    size_t o = strlen(out);
    for (size_t i = 0; i < len && o + 5 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            o += (size_t)snprintf(out + o, size - o, "\\n");
        else if (c == '\r')
            o += (size_t)snprintf(out + o, size - o, "\\r");
        else if (c < 0x20 || c >= 0x7f)
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
        out[o] = '\0';
    }
}

/* Reads all of data in chunks of chunk bytes: "L<line>[f1|f2] ..." for records, "B<line>(why)"
 * for bad ones, "X(why)" for a failure. */
static void parse_all(const char *data, size_t len, size_t chunk, size_t max, char *out,
                      size_t size)
{
    struct mem_source m = {data, len, 0, chunk, 0};
    struct csv_reader *r = csv_reader_new(mem_read, &m, max);
    const struct csv_record *rec;
    char tmp[64];
    int rc;

    assert_non_null(r);
    out[0] = '\0';
    while ((rc = csv_read(r, &rec)) != 0) {
        if (rc == 1) {
            snprintf(tmp, sizeof(tmp), "L%lld[", rec->line);
            append(out, size, tmp, strlen(tmp));
            for (size_t i = 0; i < rec->nfields; i++) {
                if (i)
                    append(out, size, "|", 1);
                assert_int_equal(rec->field[i][rec->len[i]], '\0');
                append(out, size, rec->field[i], rec->len[i]);
            }
            append(out, size, "] ", 2);
        } else if (rc == -EBADMSG) {
            snprintf(tmp, sizeof(tmp), "B%lld(", rec->line);
            append(out, size, tmp, strlen(tmp));
            append(out, size, csv_error(r), strlen(csv_error(r)));
            append(out, size, ") ", 2);
        } else {
            append(out, size, "X(", 2);
            append(out, size, csv_error(r), strlen(csv_error(r)));
            append(out, size, ") ", 2);
            break;
        }
    }
    csv_reader_free(r);
}

static void expect_max(const char *data, size_t len, size_t max, const char *want)
{
    static const size_t chunks[] = {1, 2, 3, 7, 65536};
    char got[4096];

    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        parse_all(data, len, chunks[i], max, got, sizeof(got));
        if (strcmp(got, want) != 0)
            fail_msg("chunk %zu:\n got  '%s'\n want '%s'", chunks[i], got, want);
    }
}

#define EXPECT(lit, want)          expect_max(lit, sizeof(lit) - 1, 1024, want)
#define EXPECT_MAX(lit, max, want) expect_max(lit, sizeof(lit) - 1, max, want)

static void test_plain(void **state)
{
    (void)state;
    EXPECT("a,b\nc,d\n", "L1[a|b] L2[c|d] ");
    EXPECT("a,b\nc,d", "L1[a|b] L2[c|d] ");
    EXPECT("url\n", "L1[url] ");
    EXPECT("a,,b,\n,\n", "L1[a||b|] L2[|] ");
    EXPECT("a b , c\n", "L1[a b | c] ");
}

static void test_line_ends(void **state)
{
    (void)state;
    EXPECT("a,b\r\nc\r\n", "L1[a|b] L2[c] ");
    EXPECT("a\rb\rc", "L1[a] L2[b] L3[c] ");
    EXPECT("a\r\n\r\nb\n\nc\r\r\n", "L1[a] L3[b] L5[c] ");
    EXPECT("\n\n\na\n", "L4[a] ");
}

static void test_quoted(void **state)
{
    (void)state;
    EXPECT("\"a,b\",c\n", "L1[a,b|c] ");
    EXPECT("\"say \"\"hi\"\"\",x\n", "L1[say \"hi\"|x] ");
    EXPECT("\"\"\n", "L1[] ");
    EXPECT("\"\",\"\"\n", "L1[|] ");
    EXPECT("\"two\nlines\",x\nnext\n", "L1[two\\nlines|x] L3[next] ");
    EXPECT("\"crlf\r\ninside\"\r\nnext\r\n", "L1[crlf\\r\\ninside] L3[next] ");
    EXPECT("\"end\"", "L1[end] ");
    /* A quote inside an unquoted field is kept as it is, as spreadsheets write it. */
    EXPECT("5\" screen,x\n", "L1[5\" screen|x] ");
    EXPECT("https://e.com/?q=\"a\",b\n", "L1[https://e.com/?q=\"a\"|b] ");
}

static void test_bom(void **state)
{
    (void)state;
    EXPECT("\xef\xbb\xbfurl,alias\n", "L1[url|alias] ");
    EXPECT("\xef\xbb\xbf\"url\"\n", "L1[url] ");
    EXPECT("\xef\xbb\xbf", "");
    /* Only at the very start, and only whole. */
    EXPECT("a\n\xef\xbb\xbf"
           "b\n",
           "L1[a] L2[\\xef\\xbb\\xbfb] ");
    EXPECT("\xef\xbbx\n", "L1[\\xef\\xbbx] ");
    EXPECT("\xef\xbb", "L1[\\xef\\xbb] ");
}

static void test_empty(void **state)
{
    (void)state;
    EXPECT("", "");
    EXPECT("\n", "");
    EXPECT("\r\n\r\n", "");
}

static void test_bad_records(void **state)
{
    (void)state;
    EXPECT("\"a\"b,c\nd\n", "B1(text after the closing quote of a field) L2[d] ");
    EXPECT("ok\n\"never closed\nx\ny\n", "L1[ok] B2(a quoted field is never closed) ");
    EXPECT("\"a\"\"\n", "B1(a quoted field is never closed) ");
    /* The rest of a bad line is skipped, quotes and all. */
    EXPECT("\"a\"x\"y\nz\n", "B1(text after the closing quote of a field) L2[z] ");
    EXPECT("\"a\"x\r\nz\r\n", "B1(text after the closing quote of a field) L2[z] ");
}

static void test_too_long(void **state)
{
    (void)state;
    EXPECT_MAX("12345678\n123456789\nok\n", 8, "L1[12345678] B2(longer than 8 bytes) L3[ok] ");
    EXPECT_MAX("\"1234567\"\n", 8, "B1(longer than 8 bytes) ");
    EXPECT_MAX("123456789", 8, "B1(longer than 8 bytes) ");
    /* Line ends do not count; a CRLF is one line end. */
    EXPECT_MAX("1,3,5,78\r\n", 8, "L1[1|3|5|78] ");
}

static void test_fields(void **state)
{
    char line[CSV_MAX_FIELDS * 2 + 8];
    char want[CSV_MAX_FIELDS * 2 + 16];
    size_t n = 0;

    (void)state;
    for (int i = 0; i < CSV_MAX_FIELDS; i++) {
        line[n++] = 'x';
        line[n++] = i + 1 < CSV_MAX_FIELDS ? ',' : '\n';
    }
    line[n] = '\0';
    snprintf(want, sizeof(want), "L1[");
    for (int i = 0; i < CSV_MAX_FIELDS; i++)
        append(want, sizeof(want), i + 1 < CSV_MAX_FIELDS ? "x|" : "x] ",
               i + 1 < CSV_MAX_FIELDS ? 2 : 3);
    expect_max(line, n, sizeof(line), want);

    /* One more, even an empty one after a trailing separator, is too many. */
    line[n - 1] = ',';
    line[n++] = '\n';
    expect_max(line, n, sizeof(line), "B1(more than 256 fields) ");
}

static void test_nul_bytes(void **state)
{
    static const char data[] = "a\0b,c\n";
    (void)state;
    expect_max(data, sizeof(data) - 1, 64, "L1[a\\x00b|c] ");
}

static void test_read_error(void **state)
{
    struct mem_source m = {"a\nb", 3, 0, 2, EIO};
    struct csv_reader *r = csv_reader_new(mem_read, &m, 64);
    const struct csv_record *rec;

    (void)state;
    assert_int_equal(csv_read(r, &rec), 1);
    assert_int_equal(csv_read(r, &rec), -EIO);
    assert_non_null(strstr(csv_error(r), "cannot read"));
    csv_reader_free(r);
}

static void test_fd_source(void **state)
{
    int fds[2];
    const struct csv_record *rec;
    struct csv_reader *r;

    (void)state;
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "url,alias\r\n", 11), 11);
    close(fds[1]);
    r = csv_reader_new(csv_source_fd, &fds[0], 64);
    assert_int_equal(csv_read(r, &rec), 1);
    assert_int_equal(rec->nfields, 2);
    assert_string_equal(rec->field[1], "alias");
    assert_int_equal(csv_read(r, &rec), 0);
    assert_int_equal(csv_read(r, &rec), 0);
    csv_reader_free(r);
    close(fds[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),     cmocka_unit_test(test_line_ends),
        cmocka_unit_test(test_quoted),    cmocka_unit_test(test_bom),
        cmocka_unit_test(test_empty),     cmocka_unit_test(test_bad_records),
        cmocka_unit_test(test_too_long),  cmocka_unit_test(test_fields),
        cmocka_unit_test(test_nul_bytes), cmocka_unit_test(test_read_error),
        cmocka_unit_test(test_fd_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
