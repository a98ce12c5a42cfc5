/* image.c: JPEG and PNG decoding to RGBA, EXIF orientation, PNG writing.
 * libjpeg reports errors by calling error_exit, which by default exits the process: ours longjmps back
 * to the decode call instead, and corrupt-data warnings (such as a truncated file, which libjpeg would
 * silently pad with gray) are treated as errors. libpng's simplified API returns its errors. */
#include "fclf_image.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

static int fail(char *err, size_t errlen, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

void fclf_image_free(fclf_rgba_image *image) {
    if (!image) return;
    free(image->rgba);
    image->rgba = NULL;
    image->width = image->height = 0;
}

/* ---- JPEG ---- */

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    int warned;
} jpeg_error;

static void jpeg_error_exit(j_common_ptr cinfo) {
    jpeg_error *e = (jpeg_error *)cinfo->err;
    cinfo->err->format_message(cinfo, e->message);
    longjmp(e->jump, 1);
}

/* A corrupt-data warning refuses the file at once: decoding on would pad every missing row with gray, and a
 * few hundred bytes claiming 8000x8000 pixels then cost seconds before being refused (fuzz regression input
 * Tests/FashionCLFTests/Fixtures/fuzz/photo/jpeg-8000x8000-no-scan-data.jpg). */
static void jpeg_emit(j_common_ptr cinfo, int level) {
    jpeg_error *e = (jpeg_error *)cinfo->err;
    if (level < 0) {
        cinfo->err->format_message(cinfo, e->message);
        e->warned = 1;
        longjmp(e->jump, 1);
    }
}

/* EXIF orientation (1-8) from an APP1 "Exif" marker, 1 when absent or unreadable. */
static int exif_orientation(const uint8_t *d, size_t n) {
    if (n < 14 || memcmp(d, "Exif\0\0", 6) != 0) return 1;
    const uint8_t *t = d + 6;
    size_t len = n - 6;
    int le = t[0] == 'I';
    if (!((t[0] == 'I' && t[1] == 'I') || (t[0] == 'M' && t[1] == 'M'))) return 1;
#define U16(p) (le ? (uint32_t)(p)[0] | (uint32_t)(p)[1] << 8 : (uint32_t)(p)[0] << 8 | (uint32_t)(p)[1])
#define U32(p) (le ? U16(p) | U16((p) + 2) << 16 : U16(p) << 16 | U16((p) + 2))
    uint32_t ifd = U32(t + 4);
    if ((size_t)ifd + 2 > len) return 1;
    uint32_t entries = U16(t + ifd);
    for (uint32_t i = 0; i < entries; i++) {
        size_t at = ifd + 2 + 12 * (size_t)i;
        if (at + 12 > len) break;
        if (U16(t + at) == 0x0112) {
            uint32_t v = U16(t + at + 8);
            return v >= 1 && v <= 8 ? (int)v : 1;
        }
    }
#undef U16
#undef U32
    return 1;
}

/* Applies EXIF orientation o: the stored image is turned so that it displays upright. */
static int orient(fclf_rgba_image *img, int o, char *err, size_t errlen) {
    if (o <= 1) return FCLF_IMAGE_OK;
    const int32_t w = img->width, h = img->height;
    const int swap = o >= 5; /* 5-8 transpose the axes */
    const int32_t nw = swap ? h : w, nh = swap ? w : h;
    uint32_t *dst = malloc((size_t)w * h * 4);
    if (!dst) return fail(err, errlen, FCLF_IMAGE_NO_MEMORY, "no memory to rotate a %dx%d image", w, h);
    const uint32_t *src = (const uint32_t *)img->rgba;
    for (int32_t y = 0; y < nh; y++)
        for (int32_t x = 0; x < nw; x++) {
            int32_t sx, sy; /* source of displayed pixel (x, y) */
            switch (o) {
            case 2: sx = w - 1 - x; sy = y; break;          /* mirror horizontally */
            case 3: sx = w - 1 - x; sy = h - 1 - y; break;  /* rotate 180 */
            case 4: sx = x; sy = h - 1 - y; break;          /* mirror vertically */
            case 5: sx = y; sy = x; break;                  /* transpose */
            case 6: sx = y; sy = h - 1 - x; break;          /* rotate 90 clockwise to display */
            case 7: sx = w - 1 - y; sy = h - 1 - x; break;  /* transverse */
            default: sx = w - 1 - y; sy = x; break;         /* 8: rotate 90 counter-clockwise */
            }
            dst[(size_t)y * nw + x] = src[(size_t)sy * w + sx];
        }
    free(img->rgba);
    img->rgba = (uint8_t *)dst;
    img->width = nw;
    img->height = nh;
    return FCLF_IMAGE_OK;
}

static int decode_jpeg(FILE *f, const char *path, int64_t max_pixels, fclf_rgba_image *out, char *err,
                       size_t errlen) {
    struct jpeg_decompress_struct cinfo;
    jpeg_error jerr;
    memset(&jerr, 0, sizeof jerr);
    uint8_t *volatile rgba = NULL;
    uint8_t *volatile row = NULL;
    cinfo.err = jpeg_std_error(&jerr.base);
    jerr.base.error_exit = jpeg_error_exit;
    jerr.base.emit_message = jpeg_emit;
    if (setjmp(jerr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(rgba);
        free(row);
        return fail(err, errlen, FCLF_IMAGE_FORMAT, jerr.warned ? "%s: corrupt or truncated JPEG (%s)" : "%s: corrupt JPEG (%s)",
                    path, jerr.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(&cinfo, TRUE);
    if ((int64_t)cinfo.image_width * cinfo.image_height > max_pixels) {
        int32_t w = (int32_t)cinfo.image_width, h = (int32_t)cinfo.image_height;
        jpeg_destroy_decompress(&cinfo);
        return fail(err, errlen, FCLF_IMAGE_TOO_LARGE, "%s: %dx%d pixels is above the limit of %lld; downscale the photo",
                    path, w, h, (long long)max_pixels);
    }
    int o = 1;
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1) o = exif_orientation(m->data, m->data_length);
    cinfo.out_color_space = JCS_RGB; /* grayscale and YCbCr both come out as RGB */
    jpeg_start_decompress(&cinfo);
    const int32_t w = (int32_t)cinfo.output_width, h = (int32_t)cinfo.output_height;
    rgba = malloc((size_t)w * h * 4);
    row = malloc((size_t)w * 3);
    if (!rgba || !row) {
        jpeg_destroy_decompress(&cinfo);
        free(rgba);
        free(row);
        return fail(err, errlen, FCLF_IMAGE_NO_MEMORY, "%s: no memory for %dx%d pixels", path, w, h);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[1] = {row};
        int32_t y = (int32_t)cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, rows, 1);
        for (int32_t x = 0; x < w; x++) {
            uint8_t *p = rgba + ((size_t)y * w + x) * 4;
            p[0] = row[3 * x]; p[1] = row[3 * x + 1]; p[2] = row[3 * x + 2]; p[3] = 255;
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    out->rgba = rgba;
    out->width = w;
    out->height = h;
    return orient(out, o, err, errlen);
}

/* ---- PNG ---- */

static int decode_png(const char *path, int64_t max_pixels, fclf_rgba_image *out, char *err, size_t errlen) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&image, path))
        return fail(err, errlen, FCLF_IMAGE_FORMAT, "%s: bad PNG (%s)", path, image.message);
    if ((int64_t)image.width * image.height > max_pixels) {
        png_image_free(&image);
        return fail(err, errlen, FCLF_IMAGE_TOO_LARGE, "%s: %ux%u pixels is above the limit of %lld; downscale the photo",
                    path, image.width, image.height, (long long)max_pixels);
    }
    image.format = PNG_FORMAT_RGBA; /* 16-bit, gray, palette and tRNS are all converted to 8-bit RGBA */
    uint8_t *rgba = malloc(PNG_IMAGE_SIZE(image));
    if (!rgba) {
        png_image_free(&image);
        return fail(err, errlen, FCLF_IMAGE_NO_MEMORY, "%s: no memory for %ux%u pixels", path, image.width, image.height);
    }
    if (!png_image_finish_read(&image, NULL, rgba, 0, NULL)) {
        free(rgba);
        return fail(err, errlen, FCLF_IMAGE_FORMAT, "%s: corrupt or truncated PNG (%s)", path, image.message);
    }
    out->rgba = rgba;
    out->width = (int32_t)image.width;
    out->height = (int32_t)image.height;
    return FCLF_IMAGE_OK;
}

int fclf_image_decode(const char *path, int64_t max_pixels, fclf_rgba_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errlen, FCLF_IMAGE_IO, "%s: cannot open (no such file, or not readable)", path);
    uint8_t magic[8] = {0};
    size_t n = fread(magic, 1, sizeof magic, f);
    int rc;
    if (n >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) {
        rewind(f);
        rc = decode_jpeg(f, path, max_pixels, out, err, errlen);
        fclose(f);
    } else if (n == 8 && memcmp(magic, "\x89PNG\r\n\x1a\n", 8) == 0) {
        fclose(f);
        rc = decode_png(path, max_pixels, out, err, errlen);
    } else {
        fclose(f);
        rc = fail(err, errlen, FCLF_IMAGE_FORMAT, "%s: not a JPEG or PNG file", path);
    }
    if (rc != FCLF_IMAGE_OK) fclf_image_free(out);
    return rc;
}

int fclf_image_encode_png(const uint8_t *rgba, int32_t width, int32_t height, uint8_t **out, size_t *size, char *err,
                          size_t errlen) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)width;
    image.height = (png_uint_32)height;
    image.format = PNG_FORMAT_RGBA;
    png_alloc_size_t n = 0;
    *out = NULL;
    if (!png_image_write_to_memory(&image, NULL, &n, 0, rgba, 0, NULL))  /* first call: the size */
        return fail(err, errlen, FCLF_IMAGE_FORMAT, "cannot encode PNG (%s)", image.message);
    uint8_t *buf = malloc(n);
    if (!buf) return fail(err, errlen, FCLF_IMAGE_NO_MEMORY, "no memory for a %zu-byte PNG", (size_t)n);
    if (!png_image_write_to_memory(&image, buf, &n, 0, rgba, 0, NULL)) {
        free(buf);
        return fail(err, errlen, FCLF_IMAGE_FORMAT, "cannot encode PNG (%s)", image.message);
    }
    *out = buf;
    *size = n;
    return FCLF_IMAGE_OK;
}
