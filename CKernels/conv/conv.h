/* conv.h: what the convolution's files share: the path choice, the small-K direct path (direct.c) and the
 * backward pass's products (conv2d.c). Every function takes the variant (fclf_isa) its entry point resolved. */
#ifndef FCLF_CONV_H
#define FCLF_CONV_H

#include "im2col.h"

/* Below this K = c*kh*kw a convolution runs as K row-AXPYs per output plane instead of a GEMM (direct.c):
 * conv1 (K = 9) would pad K to the micro-kernel's tile and then move its 2.7 MB output through tmp once
 * more. */
enum { FCLF_CONV_SMALL_K = 16 };
/* Largest output plane of a convolution fused with its pooling, oh rows of the taps' row length (oh*ow floats
 * from col, oh*(ow + kw - 1) from x): two planes live on the stack. */
enum { FCLF_CONV_FUSED_PLANE_MAX = 2048 };

/* Element-wise passes over the batch get threads only when there is enough memory traffic to share. */
static inline int fclf_conv_big(fclf_conv2d_shape s) {
    return (double)(s.n * s.c * s.kh * s.kw * s.oh * s.ow) >= 65536.0;
}

/* Whether this shape's products pack straight from x instead of an explicit im2col matrix: every shape but
 * the small-K direct path, which reads col. Both give the same bits. Packing from x paid off from a few
 * images on (predict_bench, 1 thread: 10,000 images at 13,000 against 11,800 images/s); since the packers
 * are vectorised it does for one image too (fclf_predict p50 80 -> 76 us). */
static inline int fclf_conv_packs_from_x(fclf_conv2d_shape s) { return s.c * s.kh * s.kw >= FCLF_CONV_SMALL_K; }

/* A padded input in zero-framed planes of oh + kh - 1 rows by ow + kw - 1 columns, its pixels at (pad_t, pad_l):
 * every tap of every output falls inside, so the products read it as 'valid' (conv2d.c for the GEMM's packers,
 * window_pool.c for inference's window kernel). frame_planes WRITES planes [p0, p1) (one per image and
 * channel) of xf from x's. */
static inline int64_t fclf_conv_framed_rows(fclf_conv2d_shape s) { return s.oh + s.kh - 1; }
static inline int64_t fclf_conv_framed_cols(fclf_conv2d_shape s) { return s.ow + s.kw - 1; }
void fclf_conv_frame_planes(float *restrict xf, const float *restrict x, int64_t p0, int64_t p1, fclf_conv2d_shape s);
/* Whether x's planes already are their frames (no padding, sizes that agree). */
static inline int fclf_conv_x_is_framed(fclf_conv2d_shape s) {
    return s.pad_t == 0 && s.pad_l == 0 && fclf_conv_framed_rows(s) == s.h && fclf_conv_framed_cols(s) == s.w;
}

/* off[k]: tap k = (ci, u, v)'s offset from an output pixel's first tap in one image's input whose channel planes lie
 * plane floats apart and rows wrow apart (im2col's row order: channel, row, column). The window kernel
 * (window_pool.c) and the plane tiles (plane.c) index their int32 offsets this way. */
static inline void fclf_conv_tap_offsets(int32_t *off, int64_t plane, int64_t wrow, fclf_conv2d_shape s) {
    for (int64_t c = 0, k = 0; c < s.c; c++)
        for (int64_t u = 0; u < s.kh; u++)
            for (int64_t v = 0; v < s.kw; v++) off[k++] = (int32_t)(c * plane + u * wrow + v);
}

/* Where the small-K kernels (direct.c) read one image's K tap rows: tap k's value under output pixel p at
 * src + off[k] + p, for the len = (oh - 1) ld + ow pixels of an output plane whose rows lie ld apart (plane =
 * oh ld floats). From the im2col matrix (conv2d.c's unpooled path): src = col + i P, off[k] = k n P, ld = ow.
 * From x itself (the pooled path, conv_pool.c): src = image i of x, or its zero-framed copy when padded, off[k] =
 * (ci fh + u) fw + v for tap (ci, u, v), ld = fw; each output row then carries kw - 1 more pixels, computed and
 * left out by the pool (forward) or given a zero gradient (backward). Each output pixel's taps are the same values
 * in the same order either way. */
typedef struct {
    int64_t off[FCLF_CONV_SMALL_K];
    int64_t ld, len, plane;
} fclf_conv_taps;
fclf_conv_taps fclf_conv_taps_col(fclf_conv2d_shape s);
fclf_conv_taps fclf_conv_taps_x(fclf_conv2d_shape s);
/* Floats of a padded image's zero-framed planes the pooled path keeps on the stack (c fh fw). */
enum { FCLF_CONV_FRAME_MAX = 4096 };
/* One thread's taps: their layout, and where they lie, col (x NULL) or x, with the thread's frame
 * (FCLF_CONV_FRAME_MAX floats) for a padded image. source: the layout for col or x; image: image i's tap rows,
 * col + i P, or x's image i, copied into frame when the shape is padded. */
typedef struct {
    fclf_conv_taps t;
    const float *col, *x;
    float *frame;
} fclf_conv_tap_source;
fclf_conv_tap_source fclf_conv_tap_source_of(const float *col, const float *x, float *frame, fclf_conv2d_shape s);
const float *fclf_conv_tap_image(const fclf_conv_tap_source *src, int64_t i, fclf_conv2d_shape s);

/* Where the small-K weight gradient reads dz_i[o]: dy (masked by ReLU on y when relu), or, for a convolution
 * fused with the 2x2 max pool after it, the pooled gradient routed back to the winners in a per-thread
 * plane of the taps' layout (planes must hold 2 t.plane floats). The routed plane is what the separate pool's backward writes,
 * so the sums are the same. */
typedef struct {
    const float *dy, *y;               /* unpooled: dy [n, oc, oh*ow], y for the ReLU mask */
    const float *pooled_dy, *pooled_y; /* fused: [n, oc, (oh/2)*(ow/2)]; pooled_y may be NULL */
    const int32_t *argmax;
    float *planes;
} fclf_conv_grad_source;

/* direct.c. _forward: fclf_conv2d_forward for K < SMALL_K (WRITES col and y). _image: one image's output
 * planes (plane o at y + o t->plane) from its tap source src, w [oc, K], b [oc] (may be NULL). _weight_grad:
 * ACCUMULATES dw and db (may be NULL) from the gradient source g and the tap sources of col (x NULL) or of x
 * (col NULL: then g is pooled). */
void fclf_conv_direct_forward(int isa, float *y, float *col, const float *x, const float *w, const float *b, int relu,
                              fclf_conv2d_shape s);
void fclf_conv_direct_image(int isa, float *restrict y, const float *restrict src, const fclf_conv_taps *t,
                            const float *restrict w, const float *restrict b, int64_t oc, int64_t K, int relu);
void fclf_conv_direct_weight_grad(int isa, float *restrict dw, float *restrict db, const fclf_conv_grad_source *g,
                                  const float *col, const float *x, int relu, fclf_conv2d_shape s);

/* conv2d.c. db[o] += the sum of row o of dz [oc, n*P] in tmp; and the backward pass's products once dz is
 * in tmp (and db has been summed from it). */
void fclf_conv_db_row(float *restrict db, const float *restrict tmp, int64_t o, fclf_conv2d_shape s);
void fclf_conv_backward_from_dz(int isa, float *dx, float *dw, float *dcol, const float *tmp, const float *col,
                                const float *x, const float *w, fclf_conv2d_shape s);

#endif
