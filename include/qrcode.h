/* QR codes as images: the matrix from libqrencode (error correction level M, 8-bit mode),
 * drawn with the quiet zone of 4 modules the standard asks for, as SVG text written here or
 * as a 1-bit grayscale PNG through libpng. Pure functions: no I/O, no server state. */
#ifndef SHORTENER_QRCODE_H
#define SHORTENER_QRCODE_H

#include <stddef.h>

#define QRCODE_QUIET_ZONE   4
#define QRCODE_SIZE_MIN     64
#define QRCODE_SIZE_MAX     2048
#define QRCODE_SIZE_DEFAULT 512

enum qrcode_format { QRCODE_SVG, QRCODE_PNG };

/* An image in memory: data (heap-allocated, len bytes) belongs to the caller, who frees it
 * with qrcode_image_release(). */
struct qrcode_image {
    unsigned char *data;
    size_t len;
};

void qrcode_image_release(struct qrcode_image *img);

/* Draws text as a QR code in fmt, size pixels per side (the SVG's width and height; its
 * viewBox counts modules, so it scales without blur). The PNG is exactly size x size: modules
 * are whole pixels when size allows, and what is left over widens the quiet zone. Returns 0,
 * -EINVAL when text is empty or too long for a QR code, -ENOMEM. */
int qrcode_render(const char *text, enum qrcode_format fmt, unsigned size,
                  struct qrcode_image *out);

/* The modules per side of text's code, quiet zone included; 0 when it cannot be encoded. */
unsigned qrcode_modules(const char *text);

#endif
