/* fclf_image.h: decoding photos (JPEG via libjpeg-turbo, PNG via libpng) to 8-bit RGBA, and writing PNG.
 * Internal to fashionclf. Every function reports failure through its return value and a one-line
 * message in err; none exits, prints or longjmps out. */
#ifndef FCLF_IMAGE_H
#define FCLF_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t width, height;
    uint8_t *rgba; /* width * height * 4 bytes, row-major, straight (not premultiplied) alpha */
} fclf_rgba_image;

enum {
    FCLF_IMAGE_OK = 0,
    FCLF_IMAGE_IO = 1,        /* cannot open or read the file */
    FCLF_IMAGE_FORMAT = 2,    /* not a JPEG or PNG, or corrupt or truncated */
    FCLF_IMAGE_TOO_LARGE = 3, /* more pixels than the caller's limit */
    FCLF_IMAGE_NO_MEMORY = 4,
};

/* The largest photo file read (bytes): far above any real photo of the largest allowed pixel count. */
#define FCLF_IMAGE_MAX_FILE (256 << 20)

/* Decodes JPEG (with its EXIF orientation applied) or PNG (any bit depth and colour type, interlaced or
 * not) bytes into out->rgba (malloc'd: release with fclf_image_free). Refuses images with more than
 * max_pixels pixels before allocating for them. `name` only labels the messages. */
int fclf_image_decode_memory(const void *data, size_t size, const char *name, int64_t max_pixels, fclf_rgba_image *out,
                             char *err, size_t errlen);
/* The same for a file (a regular file of at most FCLF_IMAGE_MAX_FILE bytes, read whole). */
int fclf_image_decode(const char *path, int64_t max_pixels, fclf_rgba_image *out, char *err, size_t errlen);
void fclf_image_free(fclf_rgba_image *image);

/* Encodes 8-bit RGBA as PNG in memory: *out is malloc'd (release with free), *size its length. */
int fclf_image_encode_png(const uint8_t *rgba, int32_t width, int32_t height, uint8_t **out, size_t *size, char *err,
                          size_t errlen);

#endif
