/* pool.c: 2x2 max pooling with stride 2, forward and backward.
 * The forward pass records the winning index so the backward pass is a scatter, not a recomparison. */
#include "fclf_internal.h"

#include <string.h>

/* Inputs below this many floats are pooled on the calling thread (a fork/join costs about as much as
 * pooling 50k floats). */
#define POOL_PAR_MIN (1 << 18)

void fclf_maxpool2x2_forward(float *y, int32_t *argmax, const float *x, int64_t planes, int64_t h, int64_t w) {
    const int64_t oh = h / 2, ow = w / 2;
#pragma omp parallel for schedule(static) if (FCLF_PAR(planes * h * w >= POOL_PAR_MIN))
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * h * w;
        float *yp = y + pl * oh * ow;
        int32_t *ap = argmax + pl * oh * ow;
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                /* Branch-free selects: the winner of a window is unpredictable. */
                int32_t i0 = (int32_t)(2 * oy * w + 2 * ox), iw = (int32_t)w;
                float a = xp[i0], b = xp[i0 + 1], c = xp[i0 + iw], d = xp[i0 + iw + 1];
                int32_t best = i0;
                float m = a;
                best = b > m ? i0 + 1 : best;
                m = b > m ? b : m;
                best = c > m ? i0 + iw : best;
                m = c > m ? c : m;
                best = d > m ? i0 + iw + 1 : best;
                m = d > m ? d : m;
                yp[oy * ow + ox] = m;
                ap[oy * ow + ox] = best;
            }
    }
}

void fclf_maxpool2x2_backward(float *dx, const float *dy, const int32_t *argmax, int64_t planes, int64_t h,
                              int64_t w) {
    const int64_t oh = h / 2, ow = w / 2;
#pragma omp parallel for schedule(static) if (FCLF_PAR(planes * h * w >= POOL_PAR_MIN))
    for (int64_t pl = 0; pl < planes; pl++) {
        float *dxp = dx + pl * h * w;
        memset(dxp, 0, (size_t)(h * w) * sizeof(float));
        const float *dyp = dy + pl * oh * ow;
        const int32_t *ap = argmax + pl * oh * ow;
        for (int64_t o = 0; o < oh * ow; o++) dxp[ap[o]] += dyp[o];
    }
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
