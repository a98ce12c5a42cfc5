/* activation.c: ReLU forward and backward, and a residual block's elementwise add. Memory-bound and
 * cheap: stays on the calling thread.
 * Both operands are loaded unconditionally so the select vectorises; a branch on the sign of y
 * mispredicts half the time (fclf-profile: ReLU backward on conv1 went from 2.4 ms to 0.1 ms). */
#include "fclf_internal.h"

FCLF_CLONES void fclf_relu_forward(float *y, const float *x, int64_t count) {
    for (int64_t i = 0; i < count; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

FCLF_CLONES void fclf_relu_backward(float *dx, const float *dy, const float *y, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        float g = dy[i];
        dx[i] = y[i] > 0.0f ? g : 0.0f;
    }
}

FCLF_CLONES void fclf_add(float *y, const float *a, const float *b, int64_t count) {
    for (int64_t i = 0; i < count; i++) y[i] = a[i] + b[i];
}
