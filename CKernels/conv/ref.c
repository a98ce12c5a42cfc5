/* ref.c: the convolution's naive references (tests only): direct loops, sums in double. */
#include "conv.h"

#include <stdlib.h>
#include <string.h>

void fclf_conv2d_forward_ref(float *y, const float *x, const float *w, const float *b, fclf_conv2d_shape s) {
    for (int64_t i = 0; i < s.n; i++)
        for (int64_t o = 0; o < s.oc; o++)
            for (int64_t oy = 0; oy < s.oh; oy++)
                for (int64_t ox = 0; ox < s.ow; ox++) {
                    double acc = b ? b[o] : 0.0;
                    for (int64_t ci = 0; ci < s.c; ci++)
                        for (int64_t ki = 0; ki < s.kh; ki++)
                            for (int64_t kj = 0; kj < s.kw; kj++) {
                                int64_t iy = oy + ki - s.pad_t, ix = ox + kj - s.pad_l;
                                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                                acc += (double)x[((i * s.c + ci) * s.h + iy) * s.w + ix] *
                                       w[((o * s.c + ci) * s.kh + ki) * s.kw + kj];
                            }
                    y[((i * s.oc + o) * s.oh + oy) * s.ow + ox] = (float)acc;
                }
}

void fclf_conv2d_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                              fclf_conv2d_shape s) {
    if (dx) memset(dx, 0, (size_t)(s.n * s.c * s.h * s.w) * sizeof(float));
    for (int64_t i = 0; i < s.n; i++)
        for (int64_t o = 0; o < s.oc; o++)
            for (int64_t oy = 0; oy < s.oh; oy++)
                for (int64_t ox = 0; ox < s.ow; ox++) {
                    float g = dy[((i * s.oc + o) * s.oh + oy) * s.ow + ox];
                    if (db) db[o] += g;
                    for (int64_t ci = 0; ci < s.c; ci++)
                        for (int64_t ki = 0; ki < s.kh; ki++)
                            for (int64_t kj = 0; kj < s.kw; kj++) {
                                int64_t iy = oy + ki - s.pad_t, ix = ox + kj - s.pad_l;
                                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                                int64_t xi = ((i * s.c + ci) * s.h + iy) * s.w + ix;
                                int64_t wi = ((o * s.c + ci) * s.kh + ki) * s.kw + kj;
                                dw[wi] += g * x[xi];
                                if (dx) dx[xi] += g * w[wi];
                            }
                }
}

/* The convolution with activation (ref above), then each 2x2 window's first maximum (row by row). */
void fclf_conv2d_pool_forward_ref(float *y, int32_t *argmax, const float *x, const float *w, const float *b, int relu,
                                  fclf_conv2d_shape s) {
    const int64_t P = s.oh * s.ow, oh2 = s.oh / 2, ow2 = s.ow / 2;
    float *full = malloc((size_t)(s.n * s.oc * P) * sizeof(float));
    if (!full) abort(); /* tests only */
    fclf_conv2d_forward_ref(full, x, w, b, s);
    if (relu)
        for (int64_t e = 0; e < s.n * s.oc * P; e++) full[e] = full[e] > 0.0f ? full[e] : 0.0f;
    for (int64_t pl = 0; pl < s.n * s.oc; pl++)
        for (int64_t oy = 0; oy < oh2; oy++)
            for (int64_t ox = 0; ox < ow2; ox++) {
                int64_t best = 2 * oy * s.ow + 2 * ox;
                for (int64_t dy = 0; dy < 2; dy++)
                    for (int64_t dx = 0; dx < 2; dx++) {
                        const int64_t at = (2 * oy + dy) * s.ow + 2 * ox + dx;
                        if (full[pl * P + at] > full[pl * P + best]) best = at;
                    }
                y[(pl * oh2 + oy) * ow2 + ox] = full[pl * P + best];
                if (argmax) argmax[(pl * oh2 + oy) * ow2 + ox] = (int32_t)best;
            }
    free(full);
}

/* Given the pooling's winners (and, for ReLU, the pooled y), the pooled dy routed to the winners (where y > 0
 * when y is given), then the convolution's backward ref. */
void fclf_conv2d_pool_backward_ref(float *dx, float *dw, float *db, const float *dy, const int32_t *argmax,
                                   const float *y, const float *x, const float *w, fclf_conv2d_shape s) {
    const int64_t P = s.oh * s.ow, Q = (s.oh / 2) * (s.ow / 2);
    float *dz = calloc((size_t)(s.n * s.oc * P), sizeof(float));
    if (!dz) abort(); /* tests only */
    for (int64_t pl = 0; pl < s.n * s.oc; pl++)
        for (int64_t q = 0; q < Q; q++)
            if (!y || y[pl * Q + q] > 0.0f) dz[pl * P + argmax[pl * Q + q]] += dy[pl * Q + q];
    fclf_conv2d_backward_ref(dx, dw, db, dz, x, w, s);
    free(dz);
}
