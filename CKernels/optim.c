/* optim.c: optimiser updates over a flat parameter array. */
#include "fclf_internal.h"

#include <math.h>

FCLF_CLONES void fclf_adam_update(float *p, float *m, float *v, const float *g, int64_t count, float lr, float beta1,
                      float beta2, float eps, int64_t t) {
    /* Bias corrections in double: beta2^t for t in the tens of thousands loses digits in float. */
    const float c1 = (float)(1.0 / (1.0 - pow(beta1, (double)t)));
    const float c2 = (float)(1.0 / (1.0 - pow(beta2, (double)t)));
    for (int64_t i = 0; i < count; i++) {
        float gi = g[i];
        float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr * (mi * c1) / (sqrtf(vi * c2) + eps);
    }
}

FCLF_CLONES void fclf_sgd_momentum_update(float *p, float *buf, const float *g, int64_t count, float lr, float momentum) {
    for (int64_t i = 0; i < count; i++) {
        float b = momentum * buf[i] + g[i];
        buf[i] = b;
        p[i] -= lr * b;
    }
}
