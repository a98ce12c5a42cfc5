/* conv.h: what the convolution's files share: the path choice, the small-K direct path (direct.c) and the
 * backward pass's products (conv2d.c). Every function takes the variant (fclf_isa) its entry point resolved. */
#ifndef FCLF_CONV_H
#define FCLF_CONV_H

#include "im2col.h"

/* Below this K = c*kh*kw a convolution runs as K row-AXPYs per output plane instead of a GEMM (direct.c):
 * conv1 (K = 9) would pad K to the micro-kernel's tile and then move its 2.7 MB output through tmp once
 * more. */
enum { FCLF_CONV_SMALL_K = 16 };
/* Largest output plane (oh*ow floats) of a convolution fused with its pooling: two planes live on the stack. */
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

/* Where the small-K weight gradient reads dz_i[o]: dy (masked by ReLU on y when relu), or, for a convolution
 * fused with the 2x2 max pool after it, the pooled gradient routed back to the winners in a per-thread
 * plane (planes must hold 2 x oh*ow floats). The routed plane is what the separate pool's backward writes,
 * so the sums are the same. */
typedef struct {
    const float *dy, *y;               /* unpooled: dy [n, oc, oh*ow], y for the ReLU mask */
    const float *pooled_dy, *pooled_y; /* fused: [n, oc, (oh/2)*(ow/2)]; pooled_y may be NULL */
    const int32_t *argmax;
    float *planes;
} fclf_conv_grad_source;

/* direct.c. _forward: fclf_conv2d_forward for K < SMALL_K (WRITES col and y). _image: one image's output
 * planes [oc, P] from its col rows (k at col + k*ld), w [oc, K], b [oc] (may be NULL). _weight_grad:
 * ACCUMULATES dw and db (may be NULL) from the gradient source g. */
void fclf_conv_direct_forward(int isa, float *y, float *col, const float *x, const float *w, const float *b, int relu,
                              fclf_conv2d_shape s);
void fclf_conv_direct_image(int isa, float *restrict y, const float *restrict col, int64_t ld, const float *restrict w,
                            const float *restrict b, int64_t oc, int64_t K, int64_t P, int relu);
void fclf_conv_direct_weight_grad(int isa, float *restrict dw, float *restrict db, const fclf_conv_grad_source *g,
                                  const float *restrict col, int relu, fclf_conv2d_shape s);

/* conv2d.c. db[o] += the sum of row o of dz [oc, n*P] in tmp; and the backward pass's products once dz is
 * in tmp (and db has been summed from it). */
void fclf_conv_db_row(float *restrict db, const float *restrict tmp, int64_t o, fclf_conv2d_shape s);
void fclf_conv_backward_from_dz(int isa, float *dx, float *dw, float *dcol, const float *tmp, const float *col,
                                const float *x, const float *w, fclf_conv2d_shape s);

#endif
