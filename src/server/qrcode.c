/* QR code images (see qrcode.h). */
#include "qrcode.h"

#include <errno.h>
#include <png.h>
#include <qrencode.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qrcode_image_release(struct qrcode_image *img)
{
    free(img->data);
    img->data = NULL;
    img->len = 0;
}

/* A growing byte buffer; on failure it is freed and stays NULL. */
struct buf {
    unsigned char *p;
    size_t len, cap;
    bool failed;
};

static void buf_put(struct buf *b, const void *data, size_t len)
{
    if (b->failed)
        return;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            free(b->p);
            *b = (struct buf){.failed = true};
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_printf(struct buf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        b->failed = true;
        return;
    }
    buf_put(b, tmp, (size_t)n);
}

/* Level M restores up to 15% of damaged modules: enough for print and screens, and the code
 * stays small enough for phones to read from a distance. */
static QRcode *encode(const char *text)
{
    if (!text[0])
        return NULL;
    return QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
}

unsigned qrcode_modules(const char *text)
{
    QRcode *qr = encode(text);
    unsigned n = qr ? (unsigned)qr->width + 2 * QRCODE_QUIET_ZONE : 0;
    QRcode_free(qr);
    return n;
}

static bool dark(const QRcode *qr, int x, int y)
{
    return qr->data[y * qr->width + x] & 1;
}

/* One path of horizontal runs of dark modules: a few kilobytes even for large codes. */
static int render_svg(const QRcode *qr, unsigned size, struct buf *b)
{
    int w = qr->width, total = w + 2 * QRCODE_QUIET_ZONE;

    buf_printf(b,
               "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" height=\"%u\" ",
               size, size);
    buf_printf(b, "viewBox=\"0 0 %d %d\" shape-rendering=\"crispEdges\">", total, total);
    buf_printf(b, "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"", total,
               total);
    for (int y = 0; y < w; y++)
        for (int x = 0; x < w;) {
            if (!dark(qr, x, y)) {
                x++;
                continue;
            }
            int run = 1;
            while (x + run < w && dark(qr, x + run, y))
                run++;
            buf_printf(b, "M%d %dh%dv1h-%dz", x + QRCODE_QUIET_ZONE, y + QRCODE_QUIET_ZONE, run,
                       run);
            x += run;
        }
    buf_printf(b, "\"/></svg>\n");
    return b->failed ? -ENOMEM : 0;
}

static void png_write(png_structp png, png_bytep data, png_size_t len)
{
    buf_put(png_get_io_ptr(png), data, len);
}

static void png_flush(png_structp png)
{
    (void)png;
}

/* The module (0 .. width-1 inside the quiet zone; outside it, anything else) that pixel p
 * shows. */
static int module_at(unsigned p, unsigned scale, unsigned offset, unsigned total, unsigned size)
{
    if (scale)
        return p < offset ? -1 : (int)((p - offset) / scale);
    return (int)(p * total / size) - QRCODE_QUIET_ZONE;
}

static int render_png(const QRcode *qr, unsigned size, struct buf *b)
{
    int w = qr->width;
    unsigned total = (unsigned)w + 2 * QRCODE_QUIET_ZONE;
    /* Whole pixels per module when they fit; the rest of the width is extra quiet zone.
     * Below one pixel per module, modules are sampled (such a code is too small to read). */
    unsigned scale = size / total;
    unsigned offset = scale ? (size - scale * total) / 2 + QRCODE_QUIET_ZONE * scale : 0;
    size_t rowbytes = (size + 7) / 8;
    png_structp png = NULL;
    png_infop info = NULL;
    unsigned char *row = NULL;
    int rc = -ENOMEM;

    row = malloc(rowbytes);
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (png)
        info = png_create_info_struct(png);
    if (!row || !png || !info)
        goto out;
    if (setjmp(png_jmpbuf(png))) {
        rc = -ENOMEM;
        goto out;
    }
    png_set_write_fn(png, b, png_write, png_flush);
    png_set_IHDR(png, info, size, size, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    /* Two colours in long runs: no filter, the fastest zlib level and a small window lose
     * almost nothing, and zlib's default state (over 256 KiB, fresh pages for every image)
     * cost more than the drawing. */
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
    png_set_compression_level(png, 1);
    png_set_compression_window_bits(png, 10);
    png_set_compression_mem_level(png, 4);
    png_write_info(png, info);
    /* A row of pixels depends only on its module row: each is drawn once and written as
     * many times as it is tall. */
    int drawn = -2;
    for (unsigned py = 0; py < size; py++) {
        int my = module_at(py, scale, offset, total, size);
        if (my < 0 || my >= w)
            my = -1;
        if (my != drawn) {
            /* Bit 1 is white in a grayscale PNG. */
            memset(row, 0xff, rowbytes);
            for (unsigned px = 0; my >= 0 && px < size; px++) {
                int mx = module_at(px, scale, offset, total, size);
                if (mx >= 0 && mx < w && dark(qr, mx, my))
                    row[px / 8] &= (unsigned char)~(0x80u >> (px % 8));
            }
            drawn = my;
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    rc = b->failed ? -ENOMEM : 0;
out:
    if (png)
        png_destroy_write_struct(&png, info ? &info : NULL);
    free(row);
    return rc;
}

int qrcode_render(const char *text, enum qrcode_format fmt, unsigned size, struct qrcode_image *out)
{
    struct buf b = {0};
    QRcode *qr;
    int rc;

    *out = (struct qrcode_image){0};
    if (size < QRCODE_SIZE_MIN || size > QRCODE_SIZE_MAX)
        return -EINVAL;
    qr = encode(text);
    if (!qr)
        return errno == ENOMEM ? -ENOMEM : -EINVAL;
    rc = fmt == QRCODE_PNG ? render_png(qr, size, &b) : render_svg(qr, size, &b);
    QRcode_free(qr);
    if (rc < 0) {
        free(b.p);
        return rc;
    }
    out->data = b.p;
    out->len = b.len;
    return 0;
}
