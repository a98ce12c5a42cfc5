/* optim.c: optimiser updates over a flat parameter array. */
#include "fclf_internal.h"

#include <math.h>

/* AdamW: the decay factor first, then Adam's statements, so decay == 1 (Adam itself) gives Adam's bits. */
FCLF_CLONES static void adamw_range(float *restrict p, float *restrict m, float *restrict v, const float *restrict g,
                                    int64_t lo, int64_t hi, float lr, float beta1, float beta2, float eps, float c1,
                                    float c2, float decay) {
    for (int64_t i = lo; i < hi; i++) {
        float gi = g[i];
        float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float pi = p[i] * decay;
        pi -= lr * (mi * c1) / (sqrtf(vi * c2) + eps);
        p[i] = pi;
    }
}

/* Arrays from this size are updated on all threads (dense1's 205k weights: about 100 us on one). Each element's
 * update is independent, so the split does not change any bit. */
#define OPTIM_PAR_MIN 65536

/* The calling thread's share [lo, hi) of count elements, in whole blocks of 16 floats (a cache line: no two
 * threads write one). */
static inline void optim_share(int64_t count, int64_t *lo, int64_t *hi) {
    const int64_t blocks = (count + 15) / 16;
    *lo = fclf_min64(count, fclf_partition_bound(blocks, 0) * 16);
    *hi = fclf_min64(count, fclf_partition_bound(blocks, 1) * 16);
}

/* Adam is AdamW without decay: the factor is then exactly 1 and p * 1 is p, so these are Adam's bits. */
void fclf_adam_update(float *p, float *m, float *v, const float *g, int64_t count, float lr, float beta1, float beta2,
                      float eps, int64_t t) {
    fclf_adamw_update(p, m, v, g, count, lr, beta1, beta2, eps, 0.0f, t);
}

FCLF_CLONES void fclf_sgd_momentum_update(float *p, float *buf, const float *g, int64_t count, float lr, float momentum) {
    for (int64_t i = 0; i < count; i++) {
        float b = momentum * buf[i] + g[i];
        buf[i] = b;
        p[i] -= lr * b;
    }
}

void fclf_adamw_update(float *p, float *m, float *v, const float *g, int64_t count, float lr, float beta1,
                       float beta2, float eps, float weight_decay, int64_t t) {
    /* Bias corrections in double: beta2^t for t in the tens of thousands loses digits in float. */
    const float c1 = (float)(1.0 / (1.0 - pow(beta1, (double)t)));
    const float c2 = (float)(1.0 / (1.0 - pow(beta2, (double)t)));
    /* PyTorch's param.mul_(1 - lr * weight_decay): the factor in double, rounded once; exactly 1 for wd 0. */
    const float decay = (float)(1.0 - (double)lr * (double)weight_decay);
    FCLF_PARALLEL_IF(count >= OPTIM_PAR_MIN, {
        int64_t lo, hi;
        optim_share(count, &lo, &hi);
        adamw_range(p, m, v, g, lo, hi, lr, beta1, beta2, eps, c1, c2, decay);
    });
}

/* SGD with weight decay folded into the gradient, momentum, and optionally Nesterov's look-ahead. */
FCLF_CLONES static void sgd_decay_range(float *restrict p, float *restrict buf, const float *restrict g, int64_t lo,
                                        int64_t hi, float lr, float momentum, float weight_decay, int nesterov) {
    if (nesterov) {
        for (int64_t i = lo; i < hi; i++) {
            float gi = g[i] + weight_decay * p[i];
            float b = momentum * buf[i] + gi;
            buf[i] = b;
            p[i] -= lr * (gi + momentum * b);
        }
    } else {
        for (int64_t i = lo; i < hi; i++) {
            float gi = g[i] + weight_decay * p[i];
            float b = momentum * buf[i] + gi;
            buf[i] = b;
            p[i] -= lr * b;
        }
    }
}

static void sgd_decay_update(float *p, float *buf, const float *g, int64_t count, float lr, float momentum,
                             float weight_decay, int nesterov) {
    FCLF_PARALLEL_IF(count >= OPTIM_PAR_MIN, {
        int64_t lo, hi;
        optim_share(count, &lo, &hi);
        sgd_decay_range(p, buf, g, lo, hi, lr, momentum, weight_decay, nesterov);
    });
}

void fclf_sgd_nesterov_update(float *p, float *buf, const float *g, int64_t count, float lr, float momentum,
                              float weight_decay) {
    sgd_decay_update(p, buf, g, count, lr, momentum, weight_decay, 1);
}

void fclf_sgd_momentum_decay_update(float *p, float *buf, const float *g, int64_t count, float lr, float momentum,
                                    float weight_decay) {
    sgd_decay_update(p, buf, g, count, lr, momentum, weight_decay, 0);
}

/* The running mean of stochastic weight averaging, in double: in float, a late step's share (x - mean) / k falls
 * under half a unit in the last place of the mean once k is in the thousands and the weights have settled, and would
 * be rounded away. One element at a time, so no thread-count effect. */
FCLF_CLONES static void average_range(double *restrict mean, const float *restrict x, int64_t lo, int64_t hi, double w) {
    for (int64_t i = lo; i < hi; i++) mean[i] += ((double)x[i] - mean[i]) * w;
}

void fclf_average_update(double *mean, const float *x, int64_t count, int64_t k) {
    if (k <= 1) {  /* the first sample is the mean */
        for (int64_t i = 0; i < count; i++) mean[i] = x[i];
        return;
    }
    FCLF_PARALLEL_IF(count >= OPTIM_PAR_MIN, {
        int64_t lo, hi;
        optim_share(count, &lo, &hi);
        average_range(mean, x, lo, hi, 1.0 / (double)k);
    });
}

/* ---- naive references (tests only): the formulas in double, state rounded to float after each step ---- */

void fclf_adam_update_ref(float *p, float *m, float *v, const float *g, int64_t count, float lr, float beta1,
                          float beta2, float eps, int64_t t) {
    for (int64_t i = 0; i < count; i++) {
        const double mi = (double)beta1 * m[i] + (1.0 - beta1) * g[i];
        const double vi = (double)beta2 * v[i] + (1.0 - beta2) * (double)g[i] * g[i];
        const double mhat = mi / (1.0 - pow(beta1, (double)t)), vhat = vi / (1.0 - pow(beta2, (double)t));
        m[i] = (float)mi;
        v[i] = (float)vi;
        p[i] = (float)(p[i] - lr * mhat / (sqrt(vhat) + eps));
    }
}

void fclf_sgd_momentum_update_ref(float *p, float *buf, const float *g, int64_t count, float lr, float momentum) {
    for (int64_t i = 0; i < count; i++) {
        const double b = (double)momentum * buf[i] + g[i];
        buf[i] = (float)b;
        p[i] = (float)(p[i] - lr * b);
    }
}

void fclf_adamw_update_ref(float *p, float *m, float *v, const float *g, int64_t count, float lr, float beta1,
                           float beta2, float eps, float weight_decay, int64_t t) {
    for (int64_t i = 0; i < count; i++) {
        const double decayed = p[i] - (double)lr * weight_decay * p[i];
        const double mi = (double)beta1 * m[i] + (1.0 - beta1) * g[i];
        const double vi = (double)beta2 * v[i] + (1.0 - beta2) * (double)g[i] * g[i];
        const double mhat = mi / (1.0 - pow(beta1, (double)t)), vhat = vi / (1.0 - pow(beta2, (double)t));
        m[i] = (float)mi;
        v[i] = (float)vi;
        p[i] = (float)(decayed - lr * mhat / (sqrt(vhat) + eps));
    }
}

void fclf_sgd_nesterov_update_ref(float *p, float *buf, const float *g, int64_t count, float lr, float momentum,
                                  float weight_decay) {
    for (int64_t i = 0; i < count; i++) {
        const double gi = g[i] + (double)weight_decay * p[i];
        const double b = (double)momentum * buf[i] + gi;
        buf[i] = (float)b;
        p[i] = (float)(p[i] - lr * (gi + momentum * b));
    }
}

void fclf_sgd_momentum_decay_update_ref(float *p, float *buf, const float *g, int64_t count, float lr, float momentum,
                                        float weight_decay) {
    for (int64_t i = 0; i < count; i++) {
        const double gi = g[i] + (double)weight_decay * p[i];
        const double b = (double)momentum * buf[i] + gi;
        buf[i] = (float)b;
        p[i] = (float)(p[i] - lr * b);
    }
}
