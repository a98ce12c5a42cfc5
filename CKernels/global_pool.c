/* global_pool.c: global average pooling, [n, c, h, w] -> [n, c]: the mean of each plane (summed in double,
 * in order), and its adjoint, which spreads each gradient evenly over its plane. */
#include "fclf_internal.h"

void fclf_global_avgpool_forward(float *y, const float *x, int64_t planes, int64_t hw) {
    for (int64_t p = 0; p < planes; p++) {
        double s = 0;
        for (int64_t j = 0; j < hw; j++) s += x[p * hw + j];
        y[p] = (float)(s / (double)hw);
    }
}

void fclf_global_avgpool_backward(float *dx, const float *dy, int64_t planes, int64_t hw) {
    const float inv = 1.0f / (float)hw;
    for (int64_t p = 0; p < planes; p++) {
        const float g = dy[p] * inv;
        for (int64_t j = 0; j < hw; j++) dx[p * hw + j] = g;
    }
}
