/* Writers for synthetic test images. Test-only. Return 0 on success. */
#ifndef FCLF_TEST_SUPPORT_H
#define FCLF_TEST_SUPPORT_H
#include <stdint.h>
/* Baseline JPEG of RGB pixels; orientation 1-8 adds an EXIF APP1 marker with that orientation tag. */
int fclf_test_write_jpeg(const char *path, const uint8_t *rgb, int width, int height, int orientation);
/* 16-bit grayscale PNG (big-endian samples as PNG stores them, given here as native uint16). */
int fclf_test_write_png_gray16(const char *path, const uint16_t *gray, int width, int height);
/* 8-bit RGBA PNG. */
int fclf_test_write_png_rgba(const char *path, const uint8_t *rgba, int width, int height);
/* 8-bit palette PNG: one index per pixel into colors RGB entries. */
int fclf_test_write_png_palette(const char *path, const uint8_t *indices, const uint8_t *rgb_colormap, int colors,
                                int width, int height);
/* 8-bit gray + alpha PNG (2 bytes per pixel). */
int fclf_test_write_png_gray_alpha(const char *path, const uint8_t *ga, int width, int height);
#endif
