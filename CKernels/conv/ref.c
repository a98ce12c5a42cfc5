/* ref.c: the convolution's naive references (tests only): direct loops, sums in double. */
#include "conv.h"

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
