/* im2col.c: the explicit im2col matrix and its adjoint (col2im), and the offset lists the vector packers
 * read the implicit one with; all walk the rows and columns of im2col.h. */
#include "im2col.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

void fclf_im2col_row_offsets(const fclf_conv2d_shape *s, int64_t k0, int64_t count, int64_t *restrict off) {
    if (count <= 0) return;
    fclf_im2col_row r = fclf_im2col_row_at(s, k0);
    for (int64_t q = 0; q < count; q++, fclf_im2col_next_row(s, &r)) off[q] = r.off;
}

void fclf_im2col_column_bases(const fclf_conv2d_shape *s, int64_t j0, int64_t count, int64_t *restrict base) {
    if (count <= 0) return;
    fclf_im2col_column c = fclf_im2col_column_at(s, j0);
    for (int64_t q = 0; q < count; q++, fclf_im2col_next_column(s, &c)) base[q] = c.base;
}

void fclf_im2col_image(float *restrict col, int64_t ld, const float *restrict x, fclf_conv2d_shape s) {
    const int64_t K = s.c * s.kh * s.kw;
    fclf_im2col_row t = fclf_im2col_row_at(&s, 0);
    for (int64_t k = 0; k < K; k++, fclf_im2col_next_row(&s, &t)) {
        float *row = col + k * ld;
        int64_t ox0, ox1;
        fclf_im2col_ox_range(&s, t.kj, &ox0, &ox1);
        for (int64_t oy = 0; oy < s.oh; oy++) {
            int64_t iy = oy + t.ki - s.pad_t;
            float *r = row + oy * s.ow;
            if (iy < 0 || iy >= s.h) {
                memset(r, 0, (size_t)s.ow * sizeof(float));
                continue;
            }
            const float *src = x + t.off + (oy - s.pad_t) * s.w - s.pad_l;
            /* A loop, not memcpy: rows are short (11 floats in conv2) and a call per row cost
             * more than the copy (fclf-profile: conv2 forward 1.27 ms -> see README). */
            for (int64_t ox = 0; ox < ox0; ox++) r[ox] = 0.0f;
            for (int64_t ox = ox0; ox < ox1; ox++) r[ox] = src[ox];
            for (int64_t ox = ox1; ox < s.ow; ox++) r[ox] = 0.0f;
        }
    }
}

/* The sums are added in (tap, output row) order. */
static void col2im(float *restrict dx, const float *restrict dcol, int64_t ld, fclf_conv2d_shape s) {
    memset(dx, 0, (size_t)(s.c * s.h * s.w) * sizeof(float));
    const int64_t K = s.c * s.kh * s.kw;
    fclf_im2col_row t = fclf_im2col_row_at(&s, 0);
    for (int64_t k = 0; k < K; k++, fclf_im2col_next_row(&s, &t)) {
        const float *row = dcol + k * ld;
        int64_t ox0, ox1;
        fclf_im2col_ox_range(&s, t.kj, &ox0, &ox1);
        for (int64_t oy = 0; oy < s.oh; oy++) {
            int64_t iy = oy + t.ki - s.pad_t;
            if (iy < 0 || iy >= s.h) continue;
            const float *r = row + oy * s.ow;
            float *dst = dx + t.off + (oy - s.pad_t) * s.w - s.pad_l;
            for (int64_t ox = ox0; ox < ox1; ox++) dst[ox] += r[ox];
        }
    }
}

#if defined(__x86_64__)
/* The same sums for output rows of at most 16 pixels (conv2's are 11, too short for the compiler's vector
 * loop: the scalar adds took about 5% of a batch-32 step). Each plane is accumulated in an L1 buffer whose
 * rows are padded to ACC_STRIDE, so one row of a tap is a zero-masked load and a full-width add; lanes past
 * the row add exact zeros, which leaves every sum (started at +0) bit for bit as above. Masked stores to dx
 * itself were slower than the scalar loop on Zen 4. Channels run outermost (one plane in the buffer at a
 * time), then the taps of that channel in the walker's order. */
enum { ACC_STRIDE = 32, ACC_ROWS = 64 };
static int col2im_fits_wide(fclf_conv2d_shape s) {
    return s.ow <= 16 && s.w <= 16 && s.kw <= 16 && s.h <= ACC_ROWS;
}

/* a[0 .. n) += r[0 .. n) for n <= 16, with full-width adds (a's row has room: ACC_STRIDE). */
typedef void (*acc_row_fn)(float *restrict a, const float *restrict r, int64_t n);

/* Channel ci's taps summed into acc (zeroed first), rows ACC_STRIDE apart, in the walker's order; the one
 * walk both variants below run, each with its own row add. */
static inline __attribute__((always_inline)) void col2im_channel(float *restrict acc, const float *restrict dcol,
                                                                 int64_t ld, fclf_conv2d_shape s, int64_t ci,
                                                                 acc_row_fn add_row) {
    const int64_t KK = s.kh * s.kw;
    memset(acc, 0, (size_t)(s.h * ACC_STRIDE) * sizeof(float));
    fclf_im2col_row t = fclf_im2col_row_at(&s, ci * KK);
    for (int64_t k = ci * KK; k < (ci + 1) * KK; k++, fclf_im2col_next_row(&s, &t)) {
        const float *row = dcol + k * ld;
        int64_t ox0, ox1;
        fclf_im2col_ox_range(&s, t.kj, &ox0, &ox1);
        if (ox1 <= ox0) continue;
        for (int64_t oy = 0; oy < s.oh; oy++) {
            int64_t iy = oy + t.ki - s.pad_t;
            if (iy < 0 || iy >= s.h) continue;
            add_row(acc + iy * ACC_STRIDE + t.kj - s.pad_l + ox0, row + oy * s.ow + ox0, ox1 - ox0);
        }
    }
}

__attribute__((target("avx512f"), always_inline)) static inline void add_row__avx512f(float *restrict a,
                                                                                     const float *restrict r,
                                                                                     int64_t n) {
    _mm512_storeu_ps(a, _mm512_add_ps(_mm512_loadu_ps(a), _mm512_maskz_loadu_ps(fclf_lanes16(n), r)));
}

__attribute__((target("avx512f"))) static void col2im__avx512f(float *restrict dx, const float *restrict dcol,
                                                               int64_t ld, fclf_conv2d_shape s) {
    float acc[ACC_ROWS * ACC_STRIDE] __attribute__((aligned(64)));
    for (int64_t ci = 0; ci < s.c; ci++) {
        col2im_channel(acc, dcol, ld, s, ci, add_row__avx512f);
        /* Rows are w <= 16 floats: one vector each, whose lanes past w are overwritten by the next row;
         * rows within 16 floats of the plane's end are masked so nothing past it is written (a memcpy call
         * per 13-float row showed up in perf). */
        float *plane = dx + ci * s.h * s.w;
        const __mmask16 row_mask = fclf_lanes16(s.w);
        for (int64_t iy = 0; iy < s.h; iy++) {
            const __m512 v = _mm512_loadu_ps(acc + iy * ACC_STRIDE);
            if (iy * s.w + 16 <= s.h * s.w)
                _mm512_storeu_ps(plane + iy * s.w, v);
            else
                _mm512_mask_storeu_ps(plane + iy * s.w, row_mask, v);
        }
    }
}

/* The same for AVX2: each 16-lane row is two 8-lane halves, the first a plain load when the row fills it
 * (conv2's rows are 11 or 12 pixels), the rest masked; lanes past the row add exact zeros as above. */
__attribute__((target("avx2"), always_inline)) static inline void add_row__avx2(float *restrict a, const float *restrict r,
                                                                               int64_t n) {
    const __m256 lo = n >= 8 ? _mm256_loadu_ps(r) : _mm256_maskload_ps(r, fclf_lanes8(n));
    _mm256_storeu_ps(a, _mm256_add_ps(_mm256_loadu_ps(a), lo));
    if (n > 8) _mm256_storeu_ps(a + 8, _mm256_add_ps(_mm256_loadu_ps(a + 8), _mm256_maskload_ps(r + 8, fclf_lanes8(n - 8))));
}

__attribute__((target("avx2"))) static void col2im__avx2(float *restrict dx, const float *restrict dcol, int64_t ld,
                                                         fclf_conv2d_shape s) {
    float acc[ACC_ROWS * ACC_STRIDE] __attribute__((aligned(32)));
    for (int64_t ci = 0; ci < s.c; ci++) {
        col2im_channel(acc, dcol, ld, s, ci, add_row__avx2);
        /* Rows of w <= 16 floats as two halves whose lanes past w are overwritten by the next row; the rows
         * within 16 floats of the plane's end are copied exactly. */
        float *plane = dx + ci * s.h * s.w;
        for (int64_t iy = 0; iy < s.h; iy++) {
            const float *a = acc + iy * ACC_STRIDE;
            if (iy * s.w + 16 <= s.h * s.w) {
                _mm256_storeu_ps(plane + iy * s.w, _mm256_load_ps(a));
                _mm256_storeu_ps(plane + iy * s.w + 8, _mm256_load_ps(a + 8));
            } else {
                memcpy(plane + iy * s.w, a, (size_t)s.w * sizeof(float));
            }
        }
    }
}
#endif

void fclf_col2im_image(int isa, float *restrict dx, const float *restrict dcol, int64_t ld, fclf_conv2d_shape s) {
#if defined(__x86_64__)
    if (isa == FCLF_ISA_AVX512F && col2im_fits_wide(s)) {
        col2im__avx512f(dx, dcol, ld, s);
        return;
    }
    if (isa == FCLF_ISA_AVX2 && col2im_fits_wide(s)) {
        col2im__avx2(dx, dcol, ld, s);
        return;
    }
#endif
    (void)isa;
    col2im(dx, dcol, ld, s);
}
