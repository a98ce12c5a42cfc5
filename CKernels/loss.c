/* loss.c: softmax and cross-entropy fused. The gradient of the pair is simply softmax - onehot, which is
 * both cheaper and better conditioned than chaining the two Jacobians. */
#include "fclf_internal.h"

#include <math.h>

double fclf_softmax_xent(float *dlogits, float *probs, const float *logits, const int32_t *labels, int64_t n,
                         int64_t k) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * k;
        float zmax = z[0];
        for (int64_t j = 1; j < k; j++) zmax = z[j] > zmax ? z[j] : zmax;
        /* log-sum-exp around the maximum: every exp argument is <= 0, so nothing overflows. */
        double sum = 0.0;
        for (int64_t j = 0; j < k; j++) sum += exp((double)z[j] - zmax);
        double lse = zmax + log(sum);
        int32_t y = labels[i];
        total += lse - z[y];
        for (int64_t j = 0; j < k; j++) {
            double p = exp((double)z[j] - lse);
            if (probs) probs[i * k + j] = (float)p;
            if (dlogits) dlogits[i * k + j] = (float)((p - (j == y ? 1.0 : 0.0)) / (double)n);
        }
    }
    return total;
}

void fclf_softmax_forward(float *probs, const float *logits, int64_t n, int64_t k) {
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * k;
        float zmax = z[0];
        for (int64_t j = 1; j < k; j++) zmax = z[j] > zmax ? z[j] : zmax;
        double sum = 0.0;
        for (int64_t j = 0; j < k; j++) sum += exp((double)z[j] - zmax);
        double lse = zmax + log(sum);
        /* Same expression as fclf_softmax_xent, so inference and evaluation give identical values. */
        for (int64_t j = 0; j < k; j++) probs[i * k + j] = (float)exp((double)z[j] - lse);
    }
}
