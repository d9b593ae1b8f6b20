/* libFuzzer driver for src/ctl/csv.c: any bytes, read one at a time and in one piece, with a
 * small record limit and a large one, must give the same records either way, good records
 * whose fields end in NUL at their length, bad ones with a printable reason; and the good
 * records, written back as CSV, must read back to themselves. */
#include "csv.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem_source {
    const uint8_t *data;
    size_t len, pos, chunk;
};

static ssize_t mem_read(void *ctx, void *buf, size_t n)
{
    struct mem_source *m = ctx;
    size_t k = m->len - m->pos;

    if (k > n)
        k = n;
    if (k > m->chunk)
        k = m->chunk;
    memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return (ssize_t)k;
}

struct out {
    char *p;
    size_t len, cap;
};

static void out_put(struct out *o, const void *s, size_t n)
{
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2 + 64;
        o->p = realloc(o->p, o->cap);
        if (!o->p)
            abort();
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

/* Reads everything: trace gets every outcome with its line, csv the good records written
 * back as CSV with every field quoted. Returns how many bad records there were. */
static int run(const uint8_t *data, size_t size, size_t chunk, size_t max, struct out *trace,
               struct out *csv)
{
    struct mem_source m = {data, size, 0, chunk};
    struct csv_reader *r = csv_reader_new(mem_read, &m, max);
    const struct csv_record *rec;
    long long last_line = 0;
    int rc, nbad = 0;

    if (!r)
        abort();
    while ((rc = csv_read(r, &rec)) != 0) {
        if (rc != 1 && rc != -EBADMSG)
            __builtin_trap(); /* a memory source never fails */
        if (rec->line <= last_line)
            __builtin_trap(); /* records start on later and later lines */
        last_line = rec->line;
        out_put(trace, &rec->line, sizeof(rec->line));
        if (rc == -EBADMSG) {
            const char *why = csv_error(r);
            if (!*why)
                __builtin_trap();
            for (const char *p = why; *p; p++)
                if (*p < 0x20 || *p > 0x7e)
                    __builtin_trap();
            out_put(trace, "!", 1);
            out_put(trace, why, strlen(why));
            nbad++;
            continue;
        }
        if (rec->nfields < 1 || rec->nfields > CSV_MAX_FIELDS)
            __builtin_trap();
        size_t total = 0;
        for (size_t i = 0; i < rec->nfields; i++) {
            if (rec->field[i][rec->len[i]] != '\0')
                __builtin_trap();
            total += rec->len[i];
            out_put(trace, &rec->len[i], sizeof(rec->len[i]));
            out_put(trace, rec->field[i], rec->len[i]);
            out_put(csv, i ? ",\"" : "\"", i ? 2 : 1);
            for (size_t k = 0; k < rec->len[i]; k++)
                out_put(csv, rec->field[i][k] == '"' ? "\"\"" : &rec->field[i][k],
                        rec->field[i][k] == '"' ? 2 : 1);
            out_put(csv, "\"", 1);
        }
        if (total > max)
            __builtin_trap();
        out_put(trace, "\n", 1);
        out_put(csv, "\r\n", 2);
    }
    csv_reader_free(r);
    return nbad;
}

static void check(const uint8_t *data, size_t size, size_t max)
{
    struct out t1 = {0}, c1 = {0}, t2 = {0}, c2 = {0}, t3 = {0}, c3 = {0};

    run(data, size, 1, max, &t1, &c1);
    run(data, size, 4096, max, &t2, &c2);
    if (t1.len != t2.len || (t1.len && memcmp(t1.p, t2.p, t1.len) != 0))
        __builtin_trap();
    /* Written back, the good records read back to the very same text. */
    if (run((const uint8_t *)c1.p, c1.len, 4096, c1.len + 1, &t3, &c3) != 0)
        __builtin_trap();
    if (c1.len != c3.len || (c1.len && memcmp(c1.p, c3.p, c1.len) != 0))
        __builtin_trap();
    free(t1.p);
    free(c1.p);
    free(t2.p);
    free(c2.p);
    free(t3.p);
    free(c3.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size, 48);
    check(data, size, 65536);
    return 0;
}
