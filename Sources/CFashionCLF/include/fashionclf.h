/*
 * fashionclf.h: classify 28x28 clothing images (Fashion-MNIST's 10 classes) with a trained fashionclf
 * model, from C or any language with a C FFI. Link with -lfashionclf (pkg-config fashionclf).
 *
 * Conventions
 * - Every call that can fail returns an fclf_status; FCLF_OK (0) is success. New codes may be added in
 *   later versions: treat any non-zero value as failure. Results come back through out-parameters; on
 *   failure no output is touched, except that *out of fclf_model_load* is set to NULL (and see
 *   fclf_predict_batch's FCLF_ERR_NUMERIC).
 * - fclf_last_error() gives a one-line detail of the last failure on the calling thread: what went
 *   wrong, where, and how to fix it. Every call that returns an fclf_status resets it to "" when it starts,
 *   so after FCLF_OK it is "".
 * - No call aborts, exits or prints, whatever it is given: bad input is reported as a status.
 * - Ownership: the library owns the strings it returns (static, or thread-local for fclf_last_error);
 *   never free them. A model from fclf_model_load* is the caller's, released with fclf_model_free.
 *   Pixel and output buffers always belong to the caller and are not kept after a call returns.
 * - Thread safety: a loaded model is immutable. Any number of threads may call fclf_predict* on the
 *   same model at once, with no lock held by the caller. fclf_model_free must not race with any other
 *   use of the same model. The only global state is a CPU-feature probe done once, thread-safely.
 * - Runtime: the library computes with OpenMP through LLVM's libomp (libomp.so.5); a process should not
 *   load a second OpenMP runtime (such as GCC's libgomp) beside it. Threads: fclf_set_threads(), else
 *   OMP_NUM_THREADS, else every core. A single image runs on the calling thread; with 2 or more threads
 *   allowed, a helper thread that the library starts on first use takes part of the convolutions when it
 *   is awake, and the caller never waits for it otherwise. That thread stays until the process exits: do
 *   not dlclose() the library before then. After a call it spins for the next one for 20 ms while calls
 *   come closer together than that, else for 1 ms, then sleeps: one image at 30 Hz uses about 5% of a core
 *   in all (docs/benchmarks.md, fclf-bench frames). Batches of more than 4 images use libomp's workers,
 *   which spin 200 ms after each call (KMP_BLOCKTIME): a batch every 100 ms keeps a core busy unless the
 *   process sets KMP_BLOCKTIME=1 (64 images at 10 Hz, measured: 108.8% -> 18.4% of a core, p50 7.7 ->
 *   8.6 ms).
 *
 * Example
 *     fclf_model *m = NULL;
 *     if (fclf_model_load_default(&m) != FCLF_OK) { fprintf(stderr, "%s\n", fclf_last_error()); return 1; }
 *     uint8_t pixels[FCLF_IMAGE_SIDE * FCLF_IMAGE_SIDE] = {0};   // 0 = background, 255 = garment
 *     float p[FCLF_NUM_CLASSES];
 *     int label;
 *     if (fclf_predict(m, pixels, p, &label) == FCLF_OK)
 *         printf("%s (%.1f%%)\n", fclf_class_name(label), 100.0 * p[label]);
 *     fclf_model_free(m);
 */
#ifndef FASHIONCLF_H
#define FASHIONCLF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The C API's version. 1.x releases only add: a program built against 1.m runs with any 1.n, n >= m. The
 * shared library's SONAME, libfashionclf.so.1, carries the major version. */
#define FCLF_VERSION_MAJOR 1
#define FCLF_VERSION_MINOR 1
#define FCLF_VERSION_PATCH 0
/* MAJOR * 10000 + MINOR * 100 + PATCH, as SQLite does: compare with fclf_version_number(). */
#define FCLF_VERSION_NUMBER (FCLF_VERSION_MAJOR * 10000 + FCLF_VERSION_MINOR * 100 + FCLF_VERSION_PATCH)
/* The classes and the input side of every model this library loads. */
#define FCLF_NUM_CLASSES 10
#define FCLF_IMAGE_SIDE 28
/* A prediction whose highest probability is below this should be shown as "unsure": the model gives its
 * answer less than an even chance of being right. Meaningful for calibrated models (fclf-train --calibrate,
 * which fits a temperature, and the fast and best presets, which store one their recipes fitted): their
 * probabilities match how often such answers are right on held-out images. fclf-classify marks photos with the
 * same rule. */
#define FCLF_UNSURE_BELOW 0.5f

#if defined(__GNUC__) || defined(__clang__)
#define FCLF_API __attribute__((visibility("default")))
#define FCLF_NODISCARD __attribute__((warn_unused_result))
#else
#define FCLF_API
#define FCLF_NODISCARD
#endif

/* Values are fixed and never reused. */
typedef enum fclf_status {
    FCLF_OK = 0,
    FCLF_ERR_INVALID_ARGUMENT = 1, /* a NULL pointer, a zero or too large count, a bad label */
    FCLF_ERR_IO = 2,               /* a file is missing or unreadable */
    FCLF_ERR_FORMAT = 3,           /* a file is not a fashionclf model / supported image, or is damaged */
    FCLF_ERR_NO_MEMORY = 4,        /* an allocation failed or a request would exceed the documented limits */
    FCLF_ERR_INTERNAL = 5,         /* a bug: please report it with fclf_last_error()'s text */
    FCLF_ERR_UNSUPPORTED = 6,      /* the request is valid but this build cannot do it */
    FCLF_ERR_NUMERIC = 7,          /* the model's output is not finite (NaN or infinite): its weights overflow
                                      float32; retrain it or use another model */
} fclf_status;

/* An opaque, immutable trained classifier. */
typedef struct fclf_model fclf_model;

/* Loads a model file written by `fclf-train --out FILE`. On success *out is a new model (free it with
 * fclf_model_free); on failure *out is NULL. Files are checked (magic, format version, architecture,
 * sizes, CRC-32) before use: a truncated, corrupted or foreign file gives FCLF_ERR_FORMAT. */
FCLF_API FCLF_NODISCARD fclf_status fclf_model_load(const char *path, fclf_model **out);

/* Loads the model built into the library: the `best` preset's (recipe 6) calibrated VGG-style network, trained by
 * fclf-train (README, "The default model"; fclf_model_metadata tells its recipe and test accuracy). */
FCLF_API FCLF_NODISCARD fclf_status fclf_model_load_default(fclf_model **out);

/* Loads a model from `size` bytes in memory (the contents of a model file): the same checks as
 * fclf_model_load. The bytes are copied; the caller may release them when this returns. */
FCLF_API FCLF_NODISCARD fclf_status fclf_model_load_memory(const void *data, size_t size, fclf_model **out);

/* Releases a model. NULL is a no-op. Freeing the same model twice, or using it after it was freed, is
 * undefined behaviour (as with free()): set your pointer to NULL. */
FCLF_API void fclf_model_free(fclf_model *model);

/* What the model says about itself, as one JSON object owned by the model (valid until fclf_model_free):
 * "format_version", "architecture", "layers", "parameters", "input", "classes", "temperature",
 * "unsure_below", "test_accuracy" and "created" (null when the file does not record them), then what
 * fclf-train recorded (preset, seed, epochs, ...). NULL for a NULL model. */
FCLF_API const char *fclf_model_metadata(const fclf_model *model);

/* Classifies one image: pixels[784], row-major, Fashion-MNIST's convention (0 = background, 255 = the
 * brightest garment pixel). Writes probabilities[10] (finite, summing to 1) and *label (0-9) unless NULL.
 * A model whose output for this image is not finite gives FCLF_ERR_NUMERIC (never NaN with FCLF_OK). */
FCLF_API FCLF_NODISCARD fclf_status fclf_predict(const fclf_model *model, const uint8_t pixels[784],
                                                 float probabilities[10], int *label);

/* Classifies count >= 1 images stored back to back (count * 784 bytes). Writes probabilities
 * [count * 10] and labels [count] unless NULL. count must be at most 1 << 26. FCLF_ERR_NUMERIC (an image
 * whose output is not finite; fclf_last_error() names the first) is the one failure after which the
 * outputs may have been written: their values are then unspecified. */
FCLF_API FCLF_NODISCARD fclf_status fclf_predict_batch(const fclf_model *model, const uint8_t *pixels,
                                                       size_t count, float *probabilities, int *labels);

/* Classifies a PNG or JPEG photo of a garment through the real-photo preprocessing of fclf-classify
 * (README, "Real photos"): EXIF orientation, alpha over white, background from the border, crop to the
 * garment, longest side to 28 pixels, negated when the background is light. A missing file gives
 * FCLF_ERR_IO; a file that is not a JPEG/PNG, or is corrupt or truncated, FCLF_ERR_FORMAT; more than
 * 64 million pixels, FCLF_ERR_NO_MEMORY (refused before decoding). */
FCLF_API FCLF_NODISCARD fclf_status fclf_predict_image_file(const fclf_model *model, const char *path,
                                                            float probabilities[10], int *label);

/* Classifies a PNG or JPEG photo held in memory (`size` bytes: an upload, a blob), through the same pipeline
 * as fclf_predict_image_file. Data that is not a JPEG/PNG, or is corrupt or truncated, gives
 * FCLF_ERR_FORMAT. */
FCLF_API FCLF_NODISCARD fclf_status fclf_predict_image_memory(const fclf_model *model, const void *data, size_t size,
                                                              float probabilities[10], int *label);

/* The byte layout of a raw frame's pixels. Values are fixed and never reused. */
typedef enum fclf_pixel_format {
    FCLF_PIXEL_GRAY8 = 0, /* 1 byte per pixel */
    FCLF_PIXEL_RGB8 = 1,  /* 3 bytes: red, green, blue */
    FCLF_PIXEL_RGBA8 = 2, /* 4 bytes: red, green, blue, alpha (straight, not premultiplied) */
    FCLF_PIXEL_BGR8 = 3,  /* 3 bytes: blue, green, red */
    FCLF_PIXEL_BGRA8 = 4, /* 4 bytes: blue, green, red, alpha */
} fclf_pixel_format;

/* Classifies a raw frame from a camera or a till through the photo pipeline of fclf_predict_image_file:
 * `height` rows, top row first, each starting `row_bytes` after the previous (row_bytes >= width * bytes
 * per pixel), in `format`. A bad size, stride or format gives FCLF_ERR_INVALID_ARGUMENT; more than 64
 * million pixels FCLF_ERR_NO_MEMORY. */
FCLF_API FCLF_NODISCARD fclf_status fclf_predict_pixels(const fclf_model *model, const uint8_t *pixels, int width,
                                                        int height, size_t row_bytes, fclf_pixel_format format,
                                                        float probabilities[10], int *label);

/* ---- Answers a shop can show: the label and whether to call it "unsure" (since 1.1) ---- */

/* Options of the fclf_classify* calls: bits, 0 for none. Bits this version does not define give
 * FCLF_ERR_INVALID_ARGUMENT, before any input is read. */
/* Test-time flip averaging: the probabilities of the image and of its left-right mirror image, averaged. A
 * garment's class does not depend on which way it faces, and models trained with flips (the fast and best
 * presets, the built-in model; not the seed CNN) have seen both, so an answer that changes with the mirror
 * comes from the picture rather than the garment: the answer is then also unsure. Costs a second
 * prediction. fclf-classify --flip-average. */
#define FCLF_FLIP_AVERAGE 1u

/* fclf_predict, fclf_predict_image_file, fclf_predict_image_memory and fclf_predict_pixels with the decision
 * fclf-classify shows: the same inputs and failures, plus `flags` (FCLF_FLIP_AVERAGE or 0), and *unsure
 * (unless NULL) set to 1 when the answer should be shown as "unsure" (its top probability, after flip
 * averaging, is below FCLF_UNSURE_BELOW; or, with FCLF_FLIP_AVERAGE, the image and its mirror name different
 * classes), else 0. probabilities[10] and *label are the averaged ones with FCLF_FLIP_AVERAGE; with flags 0
 * they are exactly fclf_predict*'s. On failure no output is written. */
FCLF_API FCLF_NODISCARD fclf_status fclf_classify(const fclf_model *model, const uint8_t pixels[784], unsigned flags,
                                                  float probabilities[10], int *label, int *unsure);
FCLF_API FCLF_NODISCARD fclf_status fclf_classify_image_file(const fclf_model *model, const char *path, unsigned flags,
                                                             float probabilities[10], int *label, int *unsure);
FCLF_API FCLF_NODISCARD fclf_status fclf_classify_image_memory(const fclf_model *model, const void *data, size_t size,
                                                               unsigned flags, float probabilities[10], int *label,
                                                               int *unsure);
FCLF_API FCLF_NODISCARD fclf_status fclf_classify_pixels(const fclf_model *model, const uint8_t *pixels, int width,
                                                         int height, size_t row_bytes, fclf_pixel_format format,
                                                         unsigned flags, float probabilities[10], int *label,
                                                         int *unsure);

/* "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
 * "Ankle boot"; NULL outside 0-9. Static strings. */
FCLF_API const char *fclf_class_name(int label);

/* A static description of a status ("invalid argument", ...); "unknown status" for other values. */
FCLF_API const char *fclf_status_string(fclf_status status);

/* The detail of the last failed call on this thread ("" if none). Valid until the next fclf_ call on
 * the same thread. */
FCLF_API const char *fclf_last_error(void);

/* The library's version, "MAJOR.MINOR.PATCH"; compare with the FCLF_VERSION_* macros of the header
 * you compiled against. */
FCLF_API const char *fclf_version(void);

/* The library's version as MAJOR * 10000 + MINOR * 100 + PATCH; compare with FCLF_VERSION_NUMBER. */
FCLF_API int fclf_version_number(void);

/* Threads for batch predictions started after this call, process-wide: n >= 1 that many, 0 (or less) the
 * default (OMP_NUM_THREADS, else every core). Results do not depend on it. */
FCLF_API void fclf_set_threads(int n);

#ifdef __cplusplus
}
#endif
#endif
