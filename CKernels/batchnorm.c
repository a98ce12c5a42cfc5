/* batchnorm.c: batch normalisation (Ioffe & Szegedy 2015) over the channels of an NCHW batch, forward and
 * backward, and the inference form (a per-channel scale and shift).
 *
 * Statistics are summed in double, one channel per owner thread, in a fixed order (image by image, pixel by
 * pixel): the results do not depend on the thread count, and a channel of 32 x 26 x 26 = 21,632 values
 * loses no precision to float accumulation. Running statistics follow PyTorch: running = (1 - momentum) *
 * running + momentum * batch statistic, with the unbiased variance (n*hw / (n*hw - 1)); normalisation uses
 * the biased one. */
#include "fclf_internal.h"

#include <math.h>

/* Per-channel work is n*hw multiply-adds three times (mean, variance, normalise). */
static int worth_threads(int64_t n, int64_t c, int64_t hw) { return 6.0 * (double)(n * c * hw) >= FCLF_PAR_MIN_WORK; }

static void forward_channel(float *y, float *mean_out, float *invstd_out, float *running_mean, float *running_var,
                            const float *x, const float *gamma, const float *beta, int64_t n, int64_t c, int64_t hw,
                            int64_t ch, float momentum, float eps) {
    const int64_t count = n * hw;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *xp = x + (i * c + ch) * hw;
        for (int64_t j = 0; j < hw; j++) sum += xp[j];
    }
    const double mean = sum / (double)count;
    double sq = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *xp = x + (i * c + ch) * hw;
        for (int64_t j = 0; j < hw; j++) {
            double d = xp[j] - mean;
            sq += d * d;
        }
    }
    const double var = sq / (double)count;
    const float invstd = (float)(1.0 / sqrt(var + eps));
    const float scale = gamma[ch] * invstd, shift = beta[ch] - (float)mean * scale;
    for (int64_t i = 0; i < n; i++) {
        const float *xp = x + (i * c + ch) * hw;
        float *yp = y + (i * c + ch) * hw;
        for (int64_t j = 0; j < hw; j++) yp[j] = xp[j] * scale + shift;
    }
    mean_out[ch] = (float)mean;
    invstd_out[ch] = invstd;
    if (running_mean) {
        const double unbiased = count > 1 ? var * (double)count / (double)(count - 1) : var;
        running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
        running_var[ch] = (float)((1.0 - momentum) * running_var[ch] + momentum * unbiased);
    }
}

void fclf_batchnorm_forward_train(float *y, float *mean, float *invstd, float *running_mean, float *running_var,
                                  const float *x, const float *gamma, const float *beta, int64_t n, int64_t c,
                                  int64_t hw, float momentum, float eps) {
    FCLF_PARALLEL_IF(worth_threads(n, c, hw), {
        for (FCLF_STATIC_RANGE(ch, c))
            forward_channel(y, mean, invstd, running_mean, running_var, x, gamma, beta, n, c, hw, ch, momentum, eps);
    });
}

static void backward_channel(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean,
                             const float *invstd, const float *gamma, int64_t n, int64_t c, int64_t hw, int64_t ch) {
    const int64_t count = n * hw;
    const float mu = mean[ch], is = invstd[ch];
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *xp = x + (i * c + ch) * hw, *gp = dy + (i * c + ch) * hw;
        for (int64_t j = 0; j < hw; j++) {
            sum_dy += gp[j];
            sum_dy_xhat += (double)gp[j] * ((xp[j] - mu) * is);
        }
    }
    dgamma[ch] += (float)sum_dy_xhat;
    dbeta[ch] += (float)sum_dy;
    if (!dx) return;
    /* dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)) */
    const float k = gamma[ch] * is, a = (float)(sum_dy / (double)count), b = (float)(sum_dy_xhat / (double)count);
    for (int64_t i = 0; i < n; i++) {
        const float *xp = x + (i * c + ch) * hw, *gp = dy + (i * c + ch) * hw;
        float *dp = dx + (i * c + ch) * hw;
        for (int64_t j = 0; j < hw; j++) dp[j] = k * (gp[j] - a - (xp[j] - mu) * is * b);
    }
}

void fclf_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean,
                             const float *invstd, const float *gamma, int64_t n, int64_t c, int64_t hw) {
    FCLF_PARALLEL_IF(worth_threads(n, c, hw), {
        for (FCLF_STATIC_RANGE(ch, c)) backward_channel(dx, dgamma, dbeta, dy, x, mean, invstd, gamma, n, c, hw, ch);
    });
}

void fclf_batchnorm_inference_coefficients(float *scale, float *shift, const float *gamma, const float *beta,
                                           const float *running_mean, const float *running_var, int64_t c, float eps) {
    for (int64_t ch = 0; ch < c; ch++) {
        const double s = gamma[ch] / sqrt((double)running_var[ch] + eps);
        scale[ch] = (float)s;
        shift[ch] = (float)(beta[ch] - running_mean[ch] * s);
    }
}

FCLF_CLONES void fclf_channel_affine(float *y, const float *x, const float *scale, const float *shift, int64_t n, int64_t c,
                                     int64_t hw) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t ch = 0; ch < c; ch++) {
            const float s = scale[ch], t = shift[ch];
            const float *xp = x + (i * c + ch) * hw;
            float *yp = y + (i * c + ch) * hw;
            for (int64_t j = 0; j < hw; j++) yp[j] = xp[j] * s + t;
        }
}

/* ---- references: the textbook formulas, in double, no threads ---- */

void fclf_batchnorm_forward_train_ref(float *y, const float *x, const float *gamma, const float *beta, int64_t n,
                                      int64_t c, int64_t hw, float eps) {
    for (int64_t ch = 0; ch < c; ch++) {
        double s = 0, q = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) s += x[(i * c + ch) * hw + j];
        const double m = s / (double)(n * hw);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) {
                double d = x[(i * c + ch) * hw + j] - m;
                q += d * d;
            }
        const double v = q / (double)(n * hw);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++)
                y[(i * c + ch) * hw + j] = (float)(gamma[ch] * (x[(i * c + ch) * hw + j] - m) / sqrt(v + eps) + beta[ch]);
    }
}

void fclf_batchnorm_backward_ref(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                                 const float *gamma, int64_t n, int64_t c, int64_t hw, float eps) {
    const double M = (double)(n * hw);
    for (int64_t ch = 0; ch < c; ch++) {
        double s = 0, q = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) s += x[(i * c + ch) * hw + j];
        const double m = s / M;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) {
                double d = x[(i * c + ch) * hw + j] - m;
                q += d * d;
            }
        const double is = 1.0 / sqrt(q / M + eps);
        double sdy = 0, sdyx = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) {
                int64_t at = (i * c + ch) * hw + j;
                sdy += dy[at];
                sdyx += dy[at] * (x[at] - m) * is;
            }
        dgamma[ch] += (float)sdyx;
        dbeta[ch] += (float)sdy;
        if (dx)
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < hw; j++) {
                    int64_t at = (i * c + ch) * hw + j;
                    double xhat = (x[at] - m) * is;
                    dx[at] = (float)(gamma[ch] * is / M * (M * dy[at] - sdy - xhat * sdyx));
                }
    }
}
