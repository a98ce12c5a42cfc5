/* conv_pool.c: convolution + activation + 2x2 max pooling, fused.
 *
 * The first layer of an image model (c*kh*kw < 16) writes the largest activation of the network (conv1:
 * 2.8 MB per batch of 32), which the pool reads once and whose gradient the pool writes and the weight
 * gradient reads once more. Fused, each image's output planes are computed two at a time into an L1 buffer
 * and pooled from there, and the backward pass routes the pooled gradient into the same buffer: the full
 * activation and its gradient never reach memory. Values, winners and sums are those of the separate
 * layers (the pool's ReLU mask included), so the bits are the same. */
#include "conv.h"

int fclf_conv2d_pool_supported(fclf_conv2d_shape s) {
    return s.c * s.kh * s.kw < FCLF_CONV_SMALL_K && s.oh >= 2 && s.ow >= 2 && s.oh * s.ow <= FCLF_CONV_FUSED_PLANE_MAX;
}

static void conv_pool_image(int isa, float *restrict y, int32_t *restrict argmax, const float *restrict col, int64_t ld,
                            const float *restrict w, const float *restrict b, int relu, fclf_conv2d_shape s) {
    const int64_t K = s.c * s.kh * s.kw, P = s.oh * s.ow, Q = (s.oh / 2) * (s.ow / 2);
    float planes[2 * FCLF_CONV_FUSED_PLANE_MAX] __attribute__((aligned(64)));
    for (int64_t o = 0; o < s.oc; o += 2) {
        const int64_t pair = fclf_min64(2, s.oc - o);
        fclf_conv_direct_image(isa, planes, col, ld, w + o * K, b ? b + o : NULL, pair, K, P, relu);
        for (int64_t j = 0; j < pair; j++)
            fclf_pool_plane(isa, y + (o + j) * Q, argmax ? argmax + (o + j) * Q : NULL, planes + j * P, s.oh, s.ow);
    }
}

static void conv_pool_forward(int isa, float *y, int32_t *argmax, float *col, const float *x, const float *w,
                              const float *b, int relu, fclf_conv2d_shape s) {
    const int64_t P = s.oh * s.ow, NP = s.n * P, Q = (s.oh / 2) * (s.ow / 2);
    FCLF_PARALLEL_IF(fclf_conv_big(s), for (FCLF_STATIC_RANGE(i, s.n)) {
        fclf_im2col_image(col + i * P, NP, x + i * s.c * s.h * s.w, s);
        conv_pool_image(isa, y + i * s.oc * Q, argmax ? argmax + i * s.oc * Q : NULL, col + i * P, NP, w, b, relu, s);
    });
}

void fclf_conv2d_pool_forward(float *y, int32_t *argmax, float *col, const float *x, const float *w, const float *b,
                              int relu, fclf_conv2d_shape s) {
    conv_pool_forward(fclf_isa_active(), y, argmax, col, x, w, b, relu, s);
}

void fclf_conv2d_pool_forward_isa(int isa, float *y, int32_t *argmax, float *col, const float *x, const float *w,
                                  const float *b, int relu, fclf_conv2d_shape s) {
    conv_pool_forward(fclf_isa_usable(isa), y, argmax, col, x, w, b, relu, s);
}

/* Row o of dz [oc, n*P] routed back from the pooled gradient (only where the pooled y > 0 when given): what
 * the pool's backward pass, then dz_row without a mask, would write. */
static void dz_row_pooled(int isa, float *restrict tmp, float *restrict db, const float *restrict dy,
                          const int32_t *restrict argmax, const float *restrict y, int64_t o, fclf_conv2d_shape s) {
    const int64_t P = s.oh * s.ow, NP = s.n * P;
    fclf_unpool_channel(isa, tmp + o * NP, P, dy, argmax, y, s.n, s.oc, o, s.oh, s.ow);
    if (db) fclf_conv_db_row(db, tmp, o, s);
}

static void conv_pool_backward(int isa, float *dx, float *dw, float *db, float *dcol, float *tmp, const float *dy,
                               const int32_t *argmax, const float *y, const float *col, const float *x, const float *w,
                               fclf_conv2d_shape s) {
    const int64_t K = s.c * s.kh * s.kw, P = s.oh * s.ow;
    if (K < FCLF_CONV_SMALL_K && !dx) {
        if (P <= FCLF_CONV_FUSED_PLANE_MAX) { /* routed plane by plane into L1 */
            const fclf_conv_grad_source g = {NULL, NULL, dy, y, argmax, NULL};
            fclf_conv_direct_weight_grad(isa, dw, db, &g, col, 0, s);
        } else { /* routed into tmp, NCHW, as the separate pool would */
            fclf_maxpool2x2_backward_with(isa, tmp, dy, argmax, y, s.n * s.oc, s.oh, s.ow);
            const fclf_conv_grad_source g = {tmp, NULL, NULL, NULL, NULL, NULL};
            fclf_conv_direct_weight_grad(isa, dw, db, &g, col, 0, s);
        }
        return;
    }
    /* Routed straight into the GEMM layout [oc, n*P]: no full-size gradient in NCHW, no copy of it. */
    FCLF_PARALLEL_IF(fclf_conv_big(s), for (FCLF_STATIC_RANGE(o, s.oc)) dz_row_pooled(isa, tmp, db, dy, argmax, y, o, s););
    fclf_conv_backward_from_dz(isa, dx, dw, dcol, tmp, col, x, w, s);
}

void fclf_conv2d_pool_backward(float *dx, float *dw, float *db, float *dcol, float *tmp, const float *dy,
                               const int32_t *argmax, const float *y, const float *col, const float *x, const float *w,
                               fclf_conv2d_shape s) {
    conv_pool_backward(fclf_isa_active(), dx, dw, db, dcol, tmp, dy, argmax, y, col, x, w, s);
}

void fclf_conv2d_pool_backward_isa(int isa, float *dx, float *dw, float *db, float *dcol, float *tmp, const float *dy,
                                   const int32_t *argmax, const float *y, const float *col, const float *x,
                                   const float *w, fclf_conv2d_shape s) {
    conv_pool_backward(fclf_isa_usable(isa), dx, dw, db, dcol, tmp, dy, argmax, y, col, x, w, s);
}
