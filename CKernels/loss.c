/* loss.c: softmax and cross-entropy fused. The gradient of the pair is simply softmax - onehot, which is
 * both cheaper and better conditioned than chaining the two Jacobians. */
#include "fclf_internal.h"

#include <math.h>

/* log(sum_j exp(z_j)) around the maximum: every exp argument is <= 0, so nothing overflows. Both kernels
 * below use it, so evaluation (loss) and inference (softmax) give the same probabilities bit for bit. */
static double log_sum_exp(const float *z, int64_t k) {
    float zmax = z[0];
    for (int64_t j = 1; j < k; j++) zmax = z[j] > zmax ? z[j] : zmax;
    double sum = 0.0;
    for (int64_t j = 0; j < k; j++) sum += exp((double)z[j] - zmax);
    return zmax + log(sum);
}

double fclf_softmax_xent(float *dlogits, float *probs, const float *logits, const int32_t *labels, int64_t n,
                         int64_t k) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * k;
        double lse = log_sum_exp(z, k);
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

/* Against the smoothed target q_j = (1 - eps) [j == y] + eps / k, the row's loss -sum_j q_j log p_j is
 * (1 - eps) (lse - z_y) + (eps / k) sum_j (lse - z_j): every term is >= 0, so nothing cancels. */
double fclf_softmax_xent_smooth(float *dlogits, float *probs, const float *logits, const int32_t *labels, int64_t n,
                                int64_t k, float smoothing) {
    if (smoothing == 0.0f) return fclf_softmax_xent(dlogits, probs, logits, labels, n, k);
    const double eps = smoothing, off = eps / (double)k, on = 1.0 - eps + off;
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * k;
        double lse = log_sum_exp(z, k);
        int32_t y = labels[i];
        double spread = 0.0;
        for (int64_t j = 0; j < k; j++) spread += lse - z[j];
        total += (1.0 - eps) * (lse - z[y]) + off * spread;
        for (int64_t j = 0; j < k; j++) {
            double p = exp((double)z[j] - lse);
            if (probs) probs[i * k + j] = (float)p;
            if (dlogits) dlogits[i * k + j] = (float)((p - (j == y ? on : off)) / (double)n);
        }
    }
    return total;
}

void fclf_softmax_forward(float *probs, const float *logits, int64_t n, int64_t k) {
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * k;
        double lse = log_sum_exp(z, k);
        for (int64_t j = 0; j < k; j++) probs[i * k + j] = (float)exp((double)z[j] - lse);
    }
}

/* ---- naive references (tests only): softmax as exp(z - max) / sum, the loss as log(sum) - (z_label - max) ---- */

/* sum of exp(z - max) over a row, and its max. */
static double ref_normaliser(const float *z, int64_t k, double *zmax) {
    double m = z[0], sum = 0.0;
    for (int64_t j = 1; j < k; j++)
        if (z[j] > m) m = z[j];
    for (int64_t j = 0; j < k; j++) sum += exp(z[j] - m);
    *zmax = m;
    return sum;
}

double fclf_softmax_xent_ref(float *dlogits, float *probs, const float *logits, const int32_t *labels, int64_t n,
                             int64_t k) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * k;
        double zmax, sum = ref_normaliser(z, k, &zmax);
        total += log(sum) - (z[labels[i]] - zmax);
        for (int64_t j = 0; j < k; j++) {
            const double p = exp(z[j] - zmax) / sum;
            if (probs) probs[i * k + j] = (float)p;
            if (dlogits) dlogits[i * k + j] = (float)((p - (j == labels[i])) / (double)n);
        }
    }
    return total;
}

void fclf_softmax_forward_ref(float *probs, const float *logits, int64_t n, int64_t k) {
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * k;
        double zmax, sum = ref_normaliser(z, k, &zmax);
        for (int64_t j = 0; j < k; j++) probs[i * k + j] = (float)(exp(z[j] - zmax) / sum);
    }
}

double fclf_softmax_xent_smooth_ref(float *dlogits, float *probs, const float *logits, const int32_t *labels, int64_t n,
                                    int64_t k, float smoothing) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * k;
        double zmax, sum = ref_normaliser(z, k, &zmax);
        for (int64_t j = 0; j < k; j++) {
            const double q = (1.0 - smoothing) * (j == labels[i]) + (double)smoothing / (double)k;
            const double p = exp(z[j] - zmax) / sum;
            total -= q * (z[j] - zmax - log(sum));
            if (probs) probs[i * k + j] = (float)p;
            if (dlogits) dlogits[i * k + j] = (float)((p - q) / (double)n);
        }
    }
    return total;
}
