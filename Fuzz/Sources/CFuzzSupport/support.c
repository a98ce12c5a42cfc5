#include "fuzz_support.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

uint32_t fclf_fuzz_crc32(const uint8_t *bytes, size_t n) { return (uint32_t)crc32(0, bytes, (uInt)n); }

int fclf_fuzz_write_gzip(const char *path, const uint8_t *bytes, size_t n) {
    gzFile f = gzopen(path, "wb");
    if (!f) return 1;
    int ok = gzwrite(f, bytes, (unsigned)n) == (int)n;
    return gzclose(f) == Z_OK && ok ? 0 : 1;
}

int fclf_fuzz_write_jpeg(const char *path, const uint8_t *rgb, int w, int h, int quality, int orientation,
                         int progressive) {
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    if (orientation >= 1 && orientation <= 8) {
        /* "Exif\0\0", little-endian TIFF header, IFD0 with one entry: Orientation (0x0112), SHORT, 1. */
        uint8_t exif[] = {'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0,
                          0x12, 0x01, 3, 0, 1, 0, 0, 0, (uint8_t)orientation, 0, 0, 0, 0, 0, 0, 0};
        jpeg_write_marker(&c, JPEG_APP0 + 1, exif, sizeof exif);
    }
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)c.next_scanline * w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return fclose(f) == 0 ? 0 : 1;
}

int fclf_fuzz_write_png(const char *path, const uint8_t *rgba, int w, int h, int bit_depth, int color_type,
                        int interlace) {
    const int channels[7] = {1, 0, 3, 1, 2, 0, 4};
    if (color_type < 0 || color_type > 6 || channels[color_type] == 0) return 1;
    if (color_type == 3) bit_depth = 8;
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    const int bytes = bit_depth == 16 ? 2 : 1, n = channels[color_type];
    uint8_t *row = malloc((size_t)w * n * bytes);
    png_color palette[256];
    int colors = 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!row || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(row);
        fclose(f);
        return 1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, bit_depth, color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (color_type == 3) { /* gray levels in steps of 16 */
        for (colors = 0; colors < 16; colors++)
            palette[colors].red = palette[colors].green = palette[colors].blue = (png_byte)(colors * 17);
        png_set_PLTE(png, info, palette, colors);
    }
    png_write_info(png, info);
    int passes = png_set_interlace_handling(png);
    for (int p = 0; p < passes; p++)
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                const uint8_t *s = rgba + ((size_t)y * w + x) * 4;
                uint8_t gray = (uint8_t)((299 * s[0] + 587 * s[1] + 114 * s[2]) / 1000);
                uint8_t v[4];
                switch (color_type) {
                case 0: v[0] = gray; break;
                case 2: v[0] = s[0]; v[1] = s[1]; v[2] = s[2]; break;
                case 3: v[0] = gray >> 4; break;
                case 4: v[0] = gray; v[1] = s[3]; break;
                default: memcpy(v, s, 4); break;
                }
                for (int c = 0; c < n; c++) {
                    if (bytes == 2) { row[(x * n + c) * 2] = v[c]; row[(x * n + c) * 2 + 1] = v[c]; }
                    else row[x * n + c] = v[c];
                }
            }
            png_write_row(png, row);
        }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    return fclose(f) == 0 ? 0 : 1;
}
