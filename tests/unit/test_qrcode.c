/* Unit tests for src/server/qrcode.c: sizes, the quiet zone, refusals. That the codes decode
 * is checked with zbarimg in tests/integration/test_qr.py. */
#include "../../src/server/qrcode.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static unsigned be32(const unsigned char *p)
{
    return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
}

static void test_png_is_exactly_size(void **state)
{
    static const unsigned sizes[] = {64, 65, 100, 333, 512, 2048};
    (void)state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct qrcode_image img;
        assert_int_equal(qrcode_render("https://sho.rt/abc1234", QRCODE_PNG, sizes[i], &img), 0);
        assert_true(img.len > 33);
        assert_memory_equal(img.data, "\x89PNG\r\n\x1a\n", 8);
        assert_int_equal(be32(img.data + 16), sizes[i]);
        assert_int_equal(be32(img.data + 20), sizes[i]);
        assert_int_equal(img.data[24], 1); /* bit depth */
        assert_int_equal(img.data[25], 0); /* grayscale */
        qrcode_image_release(&img);
    }
}

static void test_svg_has_quiet_zone(void **state)
{
    struct qrcode_image img;
    char view[64];
    (void)state;
    unsigned modules = qrcode_modules("https://sho.rt/abc1234");
    assert_int_equal(modules, 25 + 2 * QRCODE_QUIET_ZONE); /* version 2 at level M */
    assert_int_equal(qrcode_render("https://sho.rt/abc1234", QRCODE_SVG, 300, &img), 0);
    char *text = strndup((const char *)img.data, img.len);
    snprintf(view, sizeof(view), "viewBox=\"0 0 %u %u\"", modules, modules);
    assert_non_null(strstr(text, view));
    assert_non_null(strstr(text, "width=\"300\" height=\"300\""));
    /* The first dark module is the finder pattern's corner, just inside the quiet zone. */
    assert_non_null(strstr(text, "d=\"M4 4h7v1h-7z"));
    free(text);
    qrcode_image_release(&img);
}

static void test_refusals(void **state)
{
    struct qrcode_image img;
    char big[8000];
    (void)state;
    assert_int_equal(qrcode_render("", QRCODE_SVG, 512, &img), -EINVAL);
    assert_int_equal(qrcode_render("x", QRCODE_PNG, 63, &img), -EINVAL);
    assert_int_equal(qrcode_render("x", QRCODE_PNG, 2049, &img), -EINVAL);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(qrcode_render(big, QRCODE_SVG, 512, &img), -EINVAL);
    assert_null(img.data);
    assert_int_equal(qrcode_modules(big), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_is_exactly_size),
        cmocka_unit_test(test_svg_has_quiet_zone),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
