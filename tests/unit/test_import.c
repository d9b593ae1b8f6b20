/* Unit tests for src/ctl/import.c without a database: the formats' headers, each check a line
 * goes through and the reason it gets, dates as exporters write them, keys in short links,
 * tags, and the keys made for lines without one. */
#include "csv.c"
#include "import_store.c"
#include "import.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define NOW  1700000000LL
#define BASE "https://sho.rt"

static char err[512];

/* Opens content as a file of format fmt; returns import_open's result, the file in *out. */
static int open_text(const char *fmt, const char *content, size_t len, struct import_file **out)
{
    char path[] = "/tmp/test_import_XXXXXX";
    int fd = mkstemp(path);
    int rc;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
    err[0] = '\0';
    rc = import_open(out, fmt, path, err, sizeof(err));
    unlink(path);
    return rc;
}

#define OPEN(fmt, lit, out) open_text(fmt, lit, sizeof(lit) - 1, out)

static void header_ok(const char *fmt, const char *text, int url_col, int key_col)
{
    struct import_file *f;
    if (open_text(fmt, text, strlen(text), &f) != 0)
        fail_msg("%s header '%s' refused: %s", fmt, text, err);
    assert_int_equal(f->column[F_URL], url_col);
    assert_int_equal(f->column[F_KEY], key_col);
    import_close(f);
}

static void header_bad(const char *fmt, const char *text, size_t len, const char *needle)
{
    struct import_file *f = (struct import_file *)1;
    if (open_text(fmt, text, len, &f) != -EINVAL)
        fail_msg("%s header '%s' accepted", fmt, text);
    assert_null(f);
    if (!strstr(err, needle))
        fail_msg("'%s' not in '%s'", needle, err);
    for (const char *p = err; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
}

static void test_headers(void **state)
{
    (void)state;
    header_ok("csv", "url,alias,expires_at\n", 0, 1);
    header_ok("csv",
              "\xef\xbb\xbf"
              "Expires_At,ALIAS,Url\r\n",
              2, 1);
    header_ok("csv", "url\n", 0, -1);
    header_ok("csv", "url,alias,\n", 0, 1); /* a trailing separator */
    header_ok("yourls", "keyword,url,title,timestamp,ip,clicks\n", 1, 0);
    header_ok("yourls", "\"url\",\"keyword\"\n", 0, 1);
    header_ok("shlink", "createdAt,domain,shortCode,shortUrl,longUrl,title,tags,visits\n", 4, 2);
    header_ok("shlink", "Long URL,Short code,Tags,Domain,Title\n", 0, 1);
    header_ok("bitly", "Title,Link,Custom link,Destination URL,Date created\n", 3, 1);
    header_ok("bitly", "id,link,long_url,created_at\n", 2, 1);

    header_bad("csv", "link,alias\n", 11, "unknown column 'link'");
    header_bad("csv", "alias\n", 6, "has no url column (a csv file has url (required)");
    header_bad("csv", "url,URL\n", 8, "columns 'url' and 'URL' both give the url");
    header_bad("yourls", "url,title\n", 10, "has no keyword column");
    header_bad("shlink", "title\n", 6, "has no shortCode and no longUrl column");
    header_bad("bitly", "Link,bitlink,long_url\n", 22, "columns 'Link' and 'bitlink' both");
    header_bad("csv", "", 0, "is empty");
    header_bad("csv", "\n\n", 2, "is empty");
    header_bad("csv", "url,a\x01lias\n", 12, "binary data");
    header_bad("csv", "url,\xff\xfe\n", 7, "not UTF-8");
    header_bad("csv", "url,\xc0\xaf\n", 7, "not UTF-8"); /* an overlong '/' */
    header_bad("csv", "\"url\"x\n", 7, "not a header (text after the closing quote");
    header_bad("kutt", "url\n", 4, "unknown format 'kutt' (formats: csv, yourls, shlink, bitly)");
}

static void test_open_failures(void **state)
{
    struct import_file *f;
    (void)state;
    assert_int_equal(import_open(&f, "csv", "/nonexistent/x.csv", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "cannot open /nonexistent/x.csv: No such file"));
    assert_int_equal(import_open(&f, "csv", "/tmp", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "it is a directory"));
}

/* A record of the given fields, on line 7. */
static struct csv_record make_record(size_t n, const char *const *fields)
{
    struct csv_record rec = {.line = 7, .nfields = n};
    for (size_t i = 0; i < n; i++) {
        rec.field[i] = fields[i];
        rec.len[i] = strlen(fields[i]);
    }
    return rec;
}

/* Converts one line of fmt (header hdr); returns the entry, whose url the caller frees. */
static struct entry line_of(const char *fmt, const char *hdr, size_t n, const char *const *fields)
{
    struct import_settings s = {.owner = 0, .batch = 10, .base_url = BASE};
    struct import_file *f;
    struct csv_record rec = make_record(n, fields);
    struct entry e;

    if (open_text(fmt, hdr, strlen(hdr), &f) != 0)
        fail_msg("%s", err);
    convert(f, &rec, &s, NOW, &e);
    import_close(f);
    return e;
}

static void skipped(const char *fmt, const char *hdr, size_t n, const char *const *fields,
                    const char *reason)
{
    struct entry e = line_of(fmt, hdr, n, fields);
    if (!e.skip)
        fail_msg("line accepted, key '%s'; wanted: %s", e.key, reason);
    if (strcmp(e.reason, reason) != 0)
        fail_msg("reason '%s', wanted '%s'", e.reason, reason);
    free(e.url);
}

#define F(...)                                                                                     \
    (sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)), (const char *const[])     \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }

static void test_csv_lines(void **state)
{
    const char *hdr = "url,alias,expires_at\n";
    struct entry e;
    (void)state;

    e = line_of("csv", hdr, F("HTTPS://Example.COM/a?b=1,2", "my-link", "2024-01-01T00:00:00Z"));
    assert_false(e.skip);
    assert_string_equal(e.key, "my-link");
    assert_string_equal(e.url, "https://example.com/a?b=1,2");
    assert_int_equal(e.expires_at, 1704067200);
    assert_false(e.made_key);
    free(e.url);

    e = line_of("csv", hdr, F("https://example.com/", "", ""));
    assert_false(e.skip);
    assert_true(e.made_key);
    assert_int_equal(strlen(e.key), MADE_KEY_LEN);
    assert_int_equal(e.expires_at, 0);
    free(e.url);

    skipped("csv", hdr, F("https://example.com/", "ab", ""),
            "key 'ab' is not 3 to 64 characters long");
    skipped("csv", hdr, F("https://example.com/", "a b", ""),
            "key 'a b' has characters other than letters, digits, '_' and '-'");
    skipped("csv", hdr, F("https://example.com/", "Metrics", ""), "key 'Metrics' is reserved");
    skipped("csv", hdr, F("ftp://example.com/", "abc", ""),
            "the url must be absolute and start with http:// or https://");
    skipped("csv", hdr, F("https://sho.rt/abc", "abc", ""),
            "the url points at this service's own short links");
    skipped("csv", hdr, F("", "abc", ""), "the url is empty");
    skipped("csv", hdr, F("https://example.com/", "abc", "soon"),
            "expires_at 'soon' is not a date and time (RFC 3339)");
    skipped("csv", hdr, F("https://example.com/", "abc", "2023-01-01T00:00:00Z"),
            "expires_at is in the past");
    skipped("csv", hdr, F("https://example.com/", "abc", "2200-01-01T00:00:00Z"),
            "expires_at is more than 100 years away");
    skipped("csv", hdr, F("https://example.com/", "abc"), "2 fields where the header has 3");
    skipped("csv", hdr, F("https://example.com/"), "1 field where the header has 3");
}

static void test_vendor_lines(void **state)
{
    struct entry e;
    (void)state;

    e = line_of("yourls", "keyword,url,title,timestamp,ip,clicks\n",
                F("ozh", "https://ozh.org/", "t, \"q\"", "2015-03-04 05:06:07", "::1", "12"));
    assert_false(e.skip);
    assert_int_equal(e.created_at, 1425445567);
    assert_int_equal(e.visits, 12);
    free(e.url);
    skipped("yourls", "keyword,url\n", F("", "https://ozh.org/"), "no key: keyword is empty");
    skipped("yourls", "keyword,url,clicks\n", F("abc", "https://ozh.org/", "-1"),
            "visit count '-1' is not a whole number from 0 to 1000000000000000");
    skipped("yourls", "keyword,url,timestamp\n", F("abc", "https://ozh.org/", "yesterday"),
            "creation time 'yesterday' is not a date and time");
    skipped("yourls", "keyword,url,timestamp\n", F("abc", "https://ozh.org/", "2099-01-01"),
            "creation time '2099-01-01' is in the future");

    e = line_of(
        "shlink", "shortCode,longUrl,tags,visits,createdAt\n",
        F("abc12", "https://e.com/", "a|b| a |my tag|c-d", "5", "2023-05-01T10:20:30+02:00"));
    assert_false(e.skip);
    assert_string_equal(e.tags, "a,b,c-d");
    assert_string_equal(e.warning, "tags left out: 'my tag' (a link has at most 10 tags of 1 to "
                                   "32 letters, digits, '_' and '-')");
    assert_int_equal(e.created_at, 1682929230);
    free(e.url);

    e = line_of("bitly", "Link,Custom link,Destination URL\n",
                F("https://bit.ly/3xYz", "bit.ly/sale", "https://e.com/"));
    assert_string_equal(e.key, "sale");
    free(e.url);
    e = line_of("bitly", "Link,Custom link,Destination URL\n",
                F("bit.ly/3xYz", "", "https://e.com/"));
    assert_string_equal(e.key, "3xYz");
    free(e.url);
    skipped("bitly", "Link,Destination URL\n", F("bit.ly/a/b", "https://e.com/"),
            "key 'a/b' has characters other than letters, digits, '_' and '-'");
}

static void test_parse_time(void **state)
{
    static const struct {
        const char *text;
        int64_t want;
    } good[] = {
        {"2024-01-01T00:00:00Z", 1704067200},       {"2024-01-01 00:00:00", 1704067200},
        {"2024-01-01T00:00:00", 1704067200},        {"2024-01-01 00:00:00 UTC", 1704067200},
        {" 2024-01-01T00:00:00.123Z ", 1704067200}, {"2024-01-01T02:00:00+02:00", 1704067200},
        {"2024-01-01T02:00:00+0200", 1704067200},   {"2024-01-01T02:00:00+02", 1704067200},
        {"2023-12-31T19:00:00-0500", 1704067200},   {"2024-01-01", 1704067200},
    };
    static const char *const bad[] = {
        "",
        "2024",
        "01/02/2024",
        "2024-01-01T00:00",
        "2024-13-01T00:00:00Z",
        "2024-01-01T00:00:00+2",
        "2024-01-01T00:00:00 PST",
        "yesterday",
        "2024-01-01T00:00:00Z trailing garbage that is long",
    };
    int64_t t;
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (parse_time(good[i].text, strlen(good[i].text), &t) != 0)
            fail_msg("'%s' refused", good[i].text);
        if (t != good[i].want)
            fail_msg("'%s' gave %lld", good[i].text, (long long)t);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse_time(bad[i], strlen(bad[i]), &t) == 0)
            fail_msg("'%s' accepted", bad[i]);
}

static void test_key_from_link(void **state)
{
    static const char *const cases[][2] = {
        {"bit.ly/3xYz", "3xYz"},
        {"https://bit.ly/3xYz", "3xYz"},
        {"HTTP://bit.ly/3xYz/", "3xYz"},
        {"3xYz", "3xYz"},
        {"brand.co/spring-sale", "spring-sale"},
        {"bit.ly/a/b", "a/b"},
        {"https://bit.ly/", ""},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *s = cases[i][0];
        size_t len = strlen(s);
        key_from_link(&s, &len);
        if (len != strlen(cases[i][1]) || memcmp(s, cases[i][1], len) != 0)
            fail_msg("'%s' gave '%.*s'", cases[i][0], (int)len, s);
    }
}

static void test_tags(void **state)
{
    struct entry e;
    (void)state;
    memset(&e, 0, sizeof(e));
    take_tags("a|b|c|d|e|f|g|h|i|j|k|a", 23, '|', &e);
    assert_string_equal(e.tags, "a,b,c,d,e,f,g,h,i,j");
    assert_non_null(strstr(e.warning, "tags left out: 'k'"));
    memset(&e, 0, sizeof(e));
    take_tags("||", 2, '|', &e);
    assert_string_equal(e.tags, "");
    assert_string_equal(e.warning, "");
    memset(&e, 0, sizeof(e));
    take_tags("\x1b[0m|ok", 7, '|', &e);
    assert_string_equal(e.tags, "ok");
    assert_non_null(strstr(e.warning, "'\\x1b[0m'"));
}

static void test_made_keys(void **state)
{
    char a[MADE_KEY_LEN + 1], b[MADE_KEY_LEN + 1], c[MADE_KEY_LEN + 1];
    (void)state;
    make_key("https://example.com/", 0, a);
    make_key("https://example.com/", 0, b);
    assert_string_equal(a, b);
    assert_true(linkkey_is_key(a, strlen(a)));
    for (size_t i = 0; i < MADE_KEY_LEN; i++)
        assert_non_null(
            strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", a[i]));
    make_key("https://example.com/", 5, c);
    assert_string_not_equal(a, c);
    make_key("https://example.com/x", 0, c);
    assert_string_not_equal(a, c);
}

static void test_shown(void **state)
{
    char buf[200];
    (void)state;
    assert_string_equal(shown(buf, sizeof(buf), "abc", 3), "'abc'");
    assert_string_equal(shown(buf, sizeof(buf), "a'\\\n\0", 5), "'a\\x27\\x5c\\x0a\\x00'");
    assert_string_equal(shown(buf, sizeof(buf), "0123456789012345678901234567890123456789xyz", 43),
                        "'0123456789012345678901234567890123456789...'");
}

static int setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers),    cmocka_unit_test(test_open_failures),
        cmocka_unit_test(test_csv_lines),  cmocka_unit_test(test_vendor_lines),
        cmocka_unit_test(test_parse_time), cmocka_unit_test(test_key_from_link),
        cmocka_unit_test(test_tags),       cmocka_unit_test(test_made_keys),
        cmocka_unit_test(test_shown),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
