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
 *   wrong, where, and how to fix it.
 * - No call aborts, exits or prints, whatever it is given: bad input is reported as a status.
 * - Ownership: the library owns the strings it returns (static, or thread-local for fclf_last_error);
 *   never free them. A model from fclf_model_load* is the caller's, released with fclf_model_free.
 *   Pixel and output buffers always belong to the caller and are not kept after a call returns.
 * - Thread safety: a loaded model is immutable. Any number of threads may call fclf_predict* on the
 *   same model at once, with no lock held by the caller. fclf_model_free must not race with any other
 *   use of the same model. The only global state is a CPU-feature probe done once, thread-safely.
 * - Runtime: the library computes with OpenMP through LLVM's libomp (libomp.so.5); a process should not
 *   load a second OpenMP runtime (such as GCC's libgomp) beside it. OMP_NUM_THREADS sets its threads.
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

#define FCLF_VERSION_MAJOR 0
#define FCLF_VERSION_MINOR 1
#define FCLF_VERSION_PATCH 0
/* The classes and the input side of every model this library loads. */
#define FCLF_NUM_CLASSES 10
#define FCLF_IMAGE_SIDE 28
/* A prediction whose highest probability is below this should be shown as "unsure": the model gives its
 * answer less than an even chance of being right. Meaningful for calibrated models (fclf-train --calibrate,
 * the fast preset, which store a fitted temperature): their probabilities match how often such answers are
 * right on held-out images. fclf-classify marks photos with the same rule. */
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

/* Loads the model built into the library (the seed CNN, trained by fclf-train; see README). */
FCLF_API FCLF_NODISCARD fclf_status fclf_model_load_default(fclf_model **out);

/* Releases a model. NULL is a no-op. */
FCLF_API void fclf_model_free(fclf_model *model);

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

#ifdef __cplusplus
}
#endif
#endif
