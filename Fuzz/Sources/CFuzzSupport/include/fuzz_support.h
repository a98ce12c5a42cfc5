/* fuzz_support.h: what the Swift harnesses need from C: zlib (the model file's CRC-32, gzip for IDX seeds),
 * libFuzzer's default mutator (for the CRC-fixing custom mutator), and small JPEG/PNG writers for the
 * photo seeds. */
#ifndef FCLF_FUZZ_SUPPORT_H
#define FCLF_FUZZ_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* zlib's crc32 of n bytes (the model file's checksum). */
uint32_t fclf_fuzz_crc32(const uint8_t *bytes, size_t n);
/* Writes bytes as a gzip file; 0 on success. */
int fclf_fuzz_write_gzip(const char *path, const uint8_t *bytes, size_t n);

/* libFuzzer's driver (what its own main() calls) and its built-in mutator (for a custom mutator); both are
 * defined by libFuzzer, linked by -sanitize=fuzzer. */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*test_one_input)(const uint8_t *data, size_t size));
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* A baseline JPEG of w x h RGB pixels at the given quality, with an EXIF orientation marker when
 * orientation is 1-8 and progressive when progressive != 0; 0 on success. */
int fclf_fuzz_write_jpeg(const char *path, const uint8_t *rgb, int w, int h, int quality, int orientation,
                         int progressive);
/* A PNG of w x h RGBA pixels stored with bit depth 8 or 16 and a libpng colour type (0 gray, 2 RGB, 3 palette
 * of the first 256 distinct colours or gray levels, 4 gray+alpha, 6 RGBA), Adam7-interlaced when interlace != 0. */
int fclf_fuzz_write_png(const char *path, const uint8_t *rgba, int w, int h, int bit_depth, int color_type,
                        int interlace);

#endif
