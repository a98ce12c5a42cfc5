/* direct.h: what the few-tap convolutions (direct.c: the driver, the portable loops and the AVX-512 kernels)
 * share with their AVX2 kernels (direct_avx2.c), as winograd.h and window_pool.h do for theirs. */
#ifndef FCLF_CONV_DIRECT_H
#define FCLF_CONV_DIRECT_H

#include "conv.h"

/* dz_i[o] in the taps' layout: dy's plane itself (unpooled: the col path, ld = ow), or routed into slot's plane. */
static inline const float *fclf_conv_grad_plane(int isa, const fclf_conv_grad_source *g, const fclf_conv_taps *t,
                                                int64_t i, int64_t o, int slot, fclf_conv2d_shape s) {
    const int64_t P = s.oh * s.ow, Q = (s.oh / 2) * (s.ow / 2), at = i * s.oc + o;
    if (!g->pooled_dy) return g->dy + at * P;
    float *plane = g->planes + slot * t->plane;
    /* callers go image by image */
    if (i + 2 < s.n) fclf_unpool_prefetch(g->pooled_dy, g->argmax, g->pooled_y, (at + 2 * s.oc) * Q, Q);
    fclf_unpool_plane(isa, plane, g->pooled_dy + at * Q, g->argmax + at * Q, g->pooled_y ? g->pooled_y + at * Q : NULL,
                      s.oh, s.ow, t->ld);
    return plane;
}

#if defined(__x86_64__)
/* direct_avx2.c: conv1's shape (K = 9) with AVX2 + FMA, one image's forward pass and the weight gradient's rows
 * [o0, o1) (ACCUMULATES dw, db), as their AVX-512 twins in direct.c. */
void fclf_k9_forward_image__avx2(float *restrict y, const float *restrict src, const fclf_conv_taps *t,
                                 const float *restrict w, const float *restrict b, int64_t oc, int relu);
void fclf_k9_grad_rows__avx2(float *restrict dw, float *restrict db, const fclf_conv_grad_source *g,
                             const fclf_conv_tap_source *taps, int relu, int64_t o0, int64_t o1, fclf_conv2d_shape s);
#endif

#endif
