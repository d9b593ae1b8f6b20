/* libFuzzer driver for the import formats (src/ctl/import.c): the first byte picks yourls,
 * shlink, bitly or csv and whether the format's full header goes in front; the rest is the
 * file. Every record becomes either a link with a valid key, a checked URL, sane times and
 * visits, or a skip with a printable reason. */
#include "import.c"
/* What import.c calls besides lib/: the CSV reader, and the store it never reaches here. */
#include "csv.c"
#include "import_store.c"

#include <stdint.h>
#include <sys/mman.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const headers[] = {
    "keyword,url,title,timestamp,ip,clicks\n",
    "createdAt,domain,shortCode,shortUrl,longUrl,title,tags,visits\n",
    "Link,Custom link,Destination URL,Date created,Clicks\n",
    "url,alias,expires_at\n",
};

static void printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct import_settings s = {.base_url = "https://sho.rt", .batch = 100};
    const struct csv_record *rec;
    struct import_file *f = NULL;
    char path[64], err[512];
    struct entry e;
    int fd, rc, which;

    if (size < 1)
        return 0;
    which = data[0] & 3;
    fd = memfd_create("import", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (data[0] & 4) {
        size_t hl = strlen(headers[which]);
        if (write(fd, headers[which], hl) != (ssize_t)hl)
            goto out;
    }
    if (write(fd, data + 1, size - 1) != (ssize_t)(size - 1))
        goto out;
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    if (import_open(&f, formats[which].name, path, err, sizeof(err)) < 0) {
        printable(err);
        goto out;
    }
    while ((rc = csv_read(f->reader, &rec)) != 0) {
        if (rc == -EBADMSG)
            continue;
        if (rc < 0)
            break;
        convert(f, rec, &s, 1795441637, &e);
        if (e.skip) {
            if (!e.reason[0])
                __builtin_trap();
            printable(e.reason);
            free(e.url);
            continue;
        }
        printable(e.warning);
        if (!e.url || !linkkey_is_key(e.key, strlen(e.key)))
            __builtin_trap();
        char *again = NULL;
        if (urlcheck_validate(e.url, strlen(e.url), s.base_url, &again) != URLCHECK_OK)
            __builtin_trap();
        free(again);
        if (e.visits < 0 || e.created_at < 0 || (e.expires_at && e.expires_at <= 1795441637))
            __builtin_trap();
        free(e.url);
    }
    import_close(f);
out:
    close(fd);
    return 0;
}
