/* pool.c: 2x2 max pooling with stride 2, forward and backward.
 * The forward pass records the winning index so the backward pass is a scatter, not a recomparison. */
#include "fclf_internal.h"

#include <string.h>

/* Inputs below this many floats are pooled on the calling thread (a fork/join costs about as much as
 * pooling 50k floats). */
#define POOL_PAR_MIN (1 << 18)

/* One plane: output row by row from two input rows, selects instead of branches (the winner of a window
 * is unpredictable). */
FCLF_CLONES static void pool_plane(float *restrict y, int32_t *restrict am, const float *restrict x, int64_t h,
                                   int64_t w) {
    const int64_t oh = h / 2, ow = w / 2;
    for (int64_t oy = 0; oy < oh; oy++) {
        const float *r0 = x + 2 * oy * w, *r1 = r0 + w;
        float *yr = y + oy * ow;
        int32_t *ar = am + oy * ow;
        const int32_t base = (int32_t)(2 * oy * w), iw = (int32_t)w;
        for (int64_t ox = 0; ox < ow; ox++) {
            float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
            int32_t i0 = base + (int32_t)(2 * ox), best = i0;
            float m = a;
            best = b > m ? i0 + 1 : best;
            m = b > m ? b : m;
            best = c > m ? i0 + iw : best;
            m = c > m ? c : m;
            best = d > m ? i0 + iw + 1 : best;
            m = d > m ? d : m;
            yr[ox] = m;
            ar[ox] = best;
        }
    }
}

void fclf_maxpool2x2_forward(float *y, int32_t *argmax, const float *x, int64_t planes, int64_t h, int64_t w) {
    const int64_t oh = h / 2, ow = w / 2;
    FCLF_PARALLEL_IF(planes * h * w >= POOL_PAR_MIN,
        for (FCLF_STATIC_RANGE(pl, planes)) pool_plane(y + pl * oh * ow, argmax + pl * oh * ow, x + pl * h * w, h, w););
}

/* With y (the forward output), a window whose maximum is not positive passes no gradient: that is the mask of
 * a ReLU before the pool (the winner is the window's maximum), applied here on the pooled quarter of the
 * values so that the layer before need not read its whole output again. The values routed are the same. */
static void unpool_plane(float *restrict dxp, const float *restrict dyp, const int32_t *restrict ap,
                         const float *restrict yp, int64_t h, int64_t w) {
    const int64_t cells = (h / 2) * (w / 2);
    memset(dxp, 0, (size_t)(h * w) * sizeof(float));
    if (yp)
        for (int64_t o = 0; o < cells; o++) dxp[ap[o]] += yp[o] > 0.0f ? dyp[o] : 0.0f;
    else
        for (int64_t o = 0; o < cells; o++) dxp[ap[o]] += dyp[o];
}

void fclf_maxpool2x2_backward(float *dx, const float *dy, const int32_t *argmax, const float *y, int64_t planes,
                              int64_t h, int64_t w) {
    const int64_t cells = (h / 2) * (w / 2);
    FCLF_PARALLEL_IF(planes * h * w >= POOL_PAR_MIN,
        for (FCLF_STATIC_RANGE(pl, planes))
            unpool_plane(dx + pl * h * w, dy + pl * cells, argmax + pl * cells, y ? y + pl * cells : NULL, h, w););
}

void fclf_maxpool2x2_forward_ref(float *y, const float *x, int64_t planes, int64_t h, int64_t w) {
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oy = 0; oy < h / 2; oy++)
            for (int64_t ox = 0; ox < w / 2; ox++) {
                float m = x[(pl * h + 2 * oy) * w + 2 * ox];
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) {
                        float v = x[(pl * h + 2 * oy + dy) * w + 2 * ox + dx];
                        if (v > m) m = v;
                    }
                y[(pl * (h / 2) + oy) * (w / 2) + ox] = m;
            }
}
