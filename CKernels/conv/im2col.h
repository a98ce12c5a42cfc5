/* im2col.h: the one description of the im2col matrix of an NCHW batch x of shape s, used by the explicit
 * im2col and col2im (im2col.c) and by the GEMM packers that read the matrix straight from x (gemm/).
 *
 * col [c*kh*kw, n*oh*ow]: col[k][j] = x[n][ci][oy+ki-pad_t][ox+kj-pad_l], 0 outside the image, for the row
 * (tap) k = (ci, ki, kj) and the column (output pixel) j = (n, oy, ox), last index fastest. An element's
 * offset in x is a column's base (the padding folded in) plus a row's offset. */
#ifndef FCLF_CONV_IM2COL_H
#define FCLF_CONV_IM2COL_H

#include "../fclf_internal.h"

/* One column j = (n, oy, ox): its image offset with the padding folded in. */
typedef struct { int64_t base, oy, ox; } fclf_im2col_column;
/* One row k = (ci, ki, kj): the offset of its tap from a column's base. */
typedef struct { int64_t off, ki, kj; } fclf_im2col_row;

static inline fclf_im2col_column fclf_im2col_column_at(const fclf_conv2d_shape *s, int64_t j) {
    const int64_t P = s->oh * s->ow, n = j / P, pix = j - n * P, oy = pix / s->ow, ox = pix - oy * s->ow;
    return (fclf_im2col_column){n * s->c * s->h * s->w + (oy - s->pad_t) * s->w + (ox - s->pad_l), oy, ox};
}

static inline fclf_im2col_row fclf_im2col_row_at(const fclf_conv2d_shape *s, int64_t k) {
    const int64_t KK = s->kh * s->kw, ci = k / KK, r = k - ci * KK, ki = r / s->kw, kj = r - ki * s->kw;
    return (fclf_im2col_row){ci * s->h * s->w + ki * s->w + kj, ki, kj};
}

/* The walker: the next row or column, stepping instead of dividing (two 64-bit divisions per _at call: 3 us
 * of a 73 us single-image prediction). Each step adds 1 to the offset, plus a jump when the inner index
 * wraps and another when the outer one wraps too. */
static inline void fclf_im2col_next_row(const fclf_conv2d_shape *s, fclf_im2col_row *r) {
    r->off++;
    if (++r->kj == s->kw) { /* next tap row */
        r->kj = 0;
        r->off += s->w - s->kw;
        if (++r->ki == s->kh) { /* next channel */
            r->ki = 0;
            r->off += s->h * s->w - s->kh * s->w;
        }
    }
}

static inline void fclf_im2col_next_column(const fclf_conv2d_shape *s, fclf_im2col_column *c) {
    c->base++;
    if (++c->ox == s->ow) { /* next output row */
        c->ox = 0;
        c->base += s->w - s->ow;
        if (++c->oy == s->oh) { /* next image */
            c->oy = 0;
            c->base += s->c * s->h * s->w - s->oh * s->w;
        }
    }
}

/* Tap offsets of rows k0 .. k0+count-1, and bases of columns j0 .. j0+count-1 (im2col.c). */
void fclf_im2col_row_offsets(const fclf_conv2d_shape *s, int64_t k0, int64_t count, int64_t *restrict off);
void fclf_im2col_column_bases(const fclf_conv2d_shape *s, int64_t j0, int64_t count, int64_t *restrict base);

/* Whether some tap falls outside the image. Testing pad_t and pad_l alone is not enough: an even kernel with
 * 'same' padding has pad_t = (kh - 1) / 2 = 0 for kh = 2 and all of its padding below and to the right, where
 * the last output row's taps reach row h. Packers that skip the bounds check read past x there. */
static inline int fclf_im2col_padded(const fclf_conv2d_shape *s) {
    return s->pad_t > 0 || s->pad_l > 0 || s->oh - 1 + s->kh - 1 - s->pad_t >= s->h ||
           s->ow - 1 + s->kw - 1 - s->pad_l >= s->w;
}

/* col[k][j]: the input pixel under tap k of output pixel j, or 0 in the padding. */
static inline float fclf_im2col_tap(const fclf_conv2d_shape *s, const float *x, fclf_im2col_column c,
                                    fclf_im2col_row r) {
    const int64_t iy = c.oy + r.ki - s->pad_t, ix = c.ox + r.kj - s->pad_l;
    return (iy >= 0 && iy < s->h && ix >= 0 && ix < s->w) ? x[c.base + r.off] : 0.0f;
}

/* Output columns [*ox0, *ox1) whose input column under tap column kj is inside the image (empty: equal). */
static inline void fclf_im2col_ox_range(const fclf_conv2d_shape *s, int64_t kj, int64_t *ox0, int64_t *ox1) {
    *ox0 = s->pad_l - kj > 0 ? s->pad_l - kj : 0;
    *ox1 = s->w + s->pad_l - kj < s->ow ? s->w + s->pad_l - kj : s->ow;
    if (*ox1 < *ox0) *ox1 = *ox0;
}

/* Image i's columns of col [K, ld] from its NCHW image x_i (WRITES them); and the adjoint, dx_i = the sum of
 * the dcol entries im2col copied from each pixel (WRITES dx_i), with the AVX-512 sums when isa asks for them
 * and the shape fits. */
void fclf_im2col_image(float *restrict col, int64_t ld, const float *restrict x, fclf_conv2d_shape s);
void fclf_col2im_image(int isa, float *restrict dx, const float *restrict dcol, int64_t ld, fclf_conv2d_shape s);

#endif
