/* batchnorm.c: batch normalisation (Ioffe & Szegedy 2015) over the channels of an NCHW batch, forward and
 * backward, and the inference form (a per-channel scale and shift).
 *
 * Statistics: one channel per owner thread, in a fixed order (each plane in 16 float lanes, each lane added
 * to its own double lane image by image, the 16 reduced once; a dense layer's channels one per lane, summed in
 * double), so the results do not depend on the thread count, and a channel of 32 x 26 x 26 = 21,632 values is
 * not summed in one long float chain. Running statistics follow PyTorch: running = (1 - momentum) *
 * running + momentum * batch statistic, with the unbiased variance (n*hw / (n*hw - 1)); normalisation uses
 * the biased one. */
#include "batchnorm_planes.h"

#include <math.h>

/* A plane's sums (its values, squared deviations, gradient terms) in 16 float lanes (a plane's last, partial vector
 * zero-padded), each lane then added to the caller's own double lane: a channel's planes go in lane by lane and
 * its 16 double lanes are reduced once, in order, at the end (lane_total). Each lane sums hw/16 values in
 * float (42 for conv1's 26 x 26 planes), so float loses little. Reducing every plane to one double, with its
 * tail added value by value, was a chain of about 25 dependent double additions per plane: conv2's 11 x 11
 * planes (9 values of tail) spent more time there than on their 121 values (fclf-profile cnn-bn 128, AMD Zen 4:
 * that BatchNorm 0.94 ms forward for 1 M values, against 1.07 ms for conv1's 2.8 M). */

/* The last count (< LANES) floats at p, the other lanes 0. */
#define load_tail(p, count) __extension__({ float t_[LANES] = {0}; memcpy(t_, (p), (size_t)(count) * sizeof(float)); load_lanes(t_); })

/* acc[l] += v[l] in double, lane by lane (a macro, as load_lanes). */
#define add_lanes(acc, v)                                                                                        \
    do {                                                                                                         \
        float f_[LANES];                                                                                         \
        memcpy(f_, &(v), sizeof f_);                                                                             \
        for (int l_ = 0; l_ < LANES; l_++) (acc)[l_] += f_[l_];                                                  \
    } while (0)

static inline double lane_total(const double *acc) {
    double s = 0;
    for (int l = 0; l < LANES; l++) s += acc[l];
    return s;
}

FCLF_CLONES static void plane_sum(double *restrict acc, const float *restrict x, int64_t hw) {
    lanes_f v = {0};
    int64_t j = 0;
    for (; j + LANES <= hw; j += LANES) v += load_lanes(x + j);
    if (j < hw) v += load_tail(x + j, hw - j);
    add_lanes(acc, v);
}

FCLF_CLONES static void plane_sq(double *restrict acc, const float *restrict x, int64_t hw, float m) {
    lanes_f v = {0};
    int64_t j = 0;
    for (; j + LANES <= hw; j += LANES) {
        const lanes_f d = load_lanes(x + j) - m;
        v += d * d;
    }
    if (j < hw) {
        const lanes_f d = load_tail(x + j, hw - j) - m;
        v += (lanes_f)((lanes_i)(d * d) & lanes_below(hw - j)); /* the padding's (0 - m)^2 left out */
    }
    add_lanes(acc, v);
}

FCLF_CLONES static void plane_normalise(float *restrict y, const float *restrict x, int64_t hw, float scale, float shift, int relu) {
    if (relu)
        for (int64_t j = 0; j < hw; j++) {
            float v = x[j] * scale + shift;
            y[j] = v > 0.0f ? v : 0.0f;
        }
    else
        for (int64_t j = 0; j < hw; j++) y[j] = x[j] * scale + shift;
}

/* sum of dy and of dy * xhat over a plane into the lanes of sum_dy and sum_dy_xhat, xhat = (x - m) * is; dy
 * masked by y > 0 when relu (y is then the forward's output). The mask is a select on loaded values, not a
 * branch; the relu flag is a constant in each caller below, so no test of it is left inside the loop. The lanes
 * are spelt as one vector: left to the SLP vectoriser, the unmasked instance (relu 0) came out as scalar
 * multiplies and lane inserts, twice as slow as the masked one. A zero-padded tail adds 0 to both sums. */
static inline __attribute__((always_inline)) void grad_sums(const float *restrict dy, const float *restrict x,
                                                            const float *restrict y, int64_t hw, float m, float is,
                                                            double *restrict sum_dy, double *restrict sum_dy_xhat,
                                                            int relu) {
    lanes_f av = {0}, bv = {0};
    int64_t j = 0;
    for (; j + LANES <= hw; j += LANES) {
        lanes_f g = load_lanes(dy + j);
        if (relu) g = (lanes_f)((lanes_i)g & (load_lanes(y + j) > 0.0f)); /* dy where y > 0, else +0 */
        av += g;
        bv += g * ((load_lanes(x + j) - m) * is);
    }
    if (j < hw) {
        lanes_f g = load_tail(dy + j, hw - j);
        if (relu) g = (lanes_f)((lanes_i)g & (load_tail(y + j, hw - j) > 0.0f));
        av += g;
        bv += g * ((load_tail(x + j, hw - j) - m) * is);
    }
    add_lanes(sum_dy, av);
    add_lanes(sum_dy_xhat, bv);
}

FCLF_CLONES static void plane_grad_sums(const float *restrict dy, const float *restrict x, const float *restrict y, int64_t hw,
                                        float m, float is, double *restrict sum_dy, double *restrict sum_dy_xhat) {
    if (y) grad_sums(dy, x, y, hw, m, is, sum_dy, sum_dy_xhat, 1);
    else grad_sums(dy, x, y, hw, m, is, sum_dy, sum_dy_xhat, 0);
}

FCLF_CLONES static void plane_dx(float *restrict dx, const float *restrict dy, const float *restrict x, const float *restrict y,
                                 int64_t hw, float k, float a, float b, float m, float is) {
    if (y)
        for (int64_t j = 0; j < hw; j++) {
            float g = y[j] > 0.0f ? dy[j] : 0.0f;
            dx[j] = k * (g - a - (x[j] - m) * is * b);
        }
    else
        for (int64_t j = 0; j < hw; j++) dx[j] = k * (dy[j] - a - (x[j] - m) * is * b);
}

/* From a channel's gradient sums in lanes (count values): ACCUMULATES dgamma[ch], dbeta[ch], and gives the
 * coefficients of dx = k * (g - a - xhat * b), that is gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)). */
static inline void finish_grad_sums(float *k, float *a, float *b, float *dgamma, float *dbeta, const double *lanes_dy,
                                    const double *lanes_dy_xhat, float gamma, float is, int64_t count, int64_t ch) {
    const double sum_dy = lane_total(lanes_dy), sum_dy_xhat = lane_total(lanes_dy_xhat);
    dgamma[ch] += (float)sum_dy_xhat;
    dbeta[ch] += (float)sum_dy;
    *k = gamma * is;
    *a = (float)(sum_dy / (double)count);
    *b = (float)(sum_dy_xhat / (double)count);
}

/* Channel ch's batch statistics (finish_stats). */
static void channel_stats(float *scale, float *shift, float *mean_out, float *invstd_out, float *running_mean,
                          float *running_var, const float *x, const float *gamma, const float *beta, int64_t n, int64_t c,
                          int64_t hw, int64_t ch, float momentum, float eps) {
    const int64_t count = n * hw;
    double acc[LANES] = {0};
    for (int64_t i = 0; i < n; i++) plane_sum(acc, x + (i * c + ch) * hw, hw);
    const double mean = lane_total(acc) / (double)count;
    memset(acc, 0, sizeof acc);
    for (int64_t i = 0; i < n; i++) plane_sq(acc, x + (i * c + ch) * hw, hw, (float)mean);
    const double var = lane_total(acc) / (double)count;
    finish_stats(scale, shift, mean_out, invstd_out, running_mean, running_var, gamma, beta, count, ch, mean, var, momentum, eps);
}

static void forward_channel(float *y, float *mean_out, float *invstd_out, float *running_mean, float *running_var,
                            const float *x, const float *gamma, const float *beta, int64_t n, int64_t c, int64_t hw,
                            int64_t ch, float momentum, float eps, int relu) {
    float scale, shift;
    channel_stats(&scale, &shift, mean_out, invstd_out, running_mean, running_var, x, gamma, beta, n, c, hw, ch, momentum, eps);
    for (int64_t i = 0; i < n; i++) plane_normalise(y + (i * c + ch) * hw, x + (i * c + ch) * hw, hw, scale, shift, relu);
}

/* A dense layer's BatchNorm (hw = 1, x [n, c]): a channel's values are c apart, one per image, so planes of one
 * value each cost a call and a lane reduction per value (fclf-profile cnn-bn 128: 0.16 ms forward for 16 k
 * values, 0.6 ms once each plane was reduced in lanes). Here the channels are in the vector lanes, ROW_BLOCK
 * at a time: each channel's values are summed image by image in double, its squared deviations (float) and
 * the backward's sums likewise, and the elementwise steps are those of plane_normalise and plane_dx. */
enum { ROW_BLOCK = 256 };

FCLF_CLONES static void rows_forward(float *restrict y, float *restrict mean, float *restrict invstd,
                                     float *restrict running_mean, float *restrict running_var, const float *restrict x,
                                     const float *restrict gamma, const float *restrict beta, int64_t n, int64_t c,
                                     int64_t c0, int64_t c1, float momentum, float eps, int relu) {
    double sum[ROW_BLOCK], sq[ROW_BLOCK];
    float m[ROW_BLOCK], scale[ROW_BLOCK], shift[ROW_BLOCK];
    const int64_t w = c1 - c0;
    for (int64_t j = 0; j < w; j++) sum[j] = sq[j] = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < w; j++) sum[j] += x[i * c + c0 + j];
    for (int64_t j = 0; j < w; j++) m[j] = (float)(sum[j] / (double)n);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < w; j++) {
            const float d = x[i * c + c0 + j] - m[j];
            sq[j] += d * d;
        }
    for (int64_t j = 0; j < w; j++)
        finish_stats(scale + j, shift + j, mean, invstd, running_mean, running_var, gamma, beta, n, c0 + j,
                     sum[j] / (double)n, sq[j] / (double)n, momentum, eps);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < w; j++) {
            const float v = x[i * c + c0 + j] * scale[j] + shift[j];
            y[i * c + c0 + j] = relu && !(v > 0.0f) ? 0.0f : v;
        }
}

FCLF_CLONES static void rows_backward(float *restrict dx, float *restrict dgamma, float *restrict dbeta,
                                      const float *restrict dy, const float *restrict y, const float *restrict x,
                                      const float *restrict mean, const float *restrict invstd,
                                      const float *restrict gamma, int64_t n, int64_t c, int64_t c0, int64_t c1) {
    double sdy[ROW_BLOCK], sdyx[ROW_BLOCK];
    float k[ROW_BLOCK], a[ROW_BLOCK], b[ROW_BLOCK];
    const int64_t w = c1 - c0;
    for (int64_t j = 0; j < w; j++) sdy[j] = sdyx[j] = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < w; j++) {
            const int64_t e = i * c + c0 + j;
            const float g = y && !(y[e] > 0.0f) ? 0.0f : dy[e];
            sdy[j] += g;
            sdyx[j] += g * ((x[e] - mean[c0 + j]) * invstd[c0 + j]);
        }
    for (int64_t j = 0; j < w; j++) {
        dgamma[c0 + j] += (float)sdyx[j];
        dbeta[c0 + j] += (float)sdy[j];
        k[j] = gamma[c0 + j] * invstd[c0 + j];
        a[j] = (float)(sdy[j] / (double)n);
        b[j] = (float)(sdyx[j] / (double)n);
    }
    if (!dx) return;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < w; j++) {
            const int64_t e = i * c + c0 + j;
            const float g = y && !(y[e] > 0.0f) ? 0.0f : dy[e];
            dx[e] = k[j] * (g - a[j] - (x[e] - mean[c0 + j]) * invstd[c0 + j] * b[j]);
        }
}

void fclf_batchnorm_forward_train(float *y, float *mean, float *invstd, float *running_mean, float *running_var,
                                  const float *x, const float *gamma, const float *beta, int64_t n, int64_t c,
                                  int64_t hw, float momentum, float eps, int relu) {
    if (hw == 1) {
        const int64_t blocks = (c + ROW_BLOCK - 1) / ROW_BLOCK;
        FCLF_PARALLEL_IF(worth_threads(n, c, hw) && blocks > 1, for (FCLF_STATIC_RANGE(bk, blocks)) {
            rows_forward(y, mean, invstd, running_mean, running_var, x, gamma, beta, n, c, bk * ROW_BLOCK,
                         fclf_min64(c, (bk + 1) * ROW_BLOCK), momentum, eps, relu);
        });
        return;
    }
    FCLF_PARALLEL_IF(worth_threads(n, c, hw), {
        for (FCLF_STATIC_RANGE(ch, c))
            forward_channel(y, mean, invstd, running_mean, running_var, x, gamma, beta, n, c, hw, ch, momentum, eps, relu);
    });
}

/* Channel ch's backward pass with its gradient planes at g + i * gstride (NCHW: g = dy + ch * hw, gstride
 * c * hw; a channel staged on its own: gstride hw); x, y and dx are NCHW. */
static void backward_channel(float *dx, float *dgamma, float *dbeta, const float *g, int64_t gstride, const float *y,
                             const float *x, const float *mean, const float *invstd, const float *gamma, int64_t n,
                             int64_t c, int64_t hw, int64_t ch) {
    const int64_t count = n * hw;
    const float mu = mean[ch], is = invstd[ch];
    double lanes_dy[LANES] = {0}, lanes_dy_xhat[LANES] = {0};
    for (int64_t i = 0; i < n; i++) {
        const int64_t at = (i * c + ch) * hw;
        plane_grad_sums(g + i * gstride, x + at, y ? y + at : NULL, hw, mu, is, lanes_dy, lanes_dy_xhat);
    }
    float k, a, b;
    finish_grad_sums(&k, &a, &b, dgamma, dbeta, lanes_dy, lanes_dy_xhat, gamma[ch], is, count, ch);
    if (!dx) return;
    for (int64_t i = 0; i < n; i++) {
        const int64_t at = (i * c + ch) * hw;
        plane_dx(dx + at, g + i * gstride, x + at, y ? y + at : NULL, hw, k, a, b, mu, is);
    }
}

void fclf_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *y, const float *x,
                             const float *mean, const float *invstd, const float *gamma, int64_t n, int64_t c, int64_t hw) {
    if (hw == 1) {
        const int64_t blocks = (c + ROW_BLOCK - 1) / ROW_BLOCK;
        FCLF_PARALLEL_IF(worth_threads(n, c, hw) && blocks > 1, for (FCLF_STATIC_RANGE(bk, blocks)) {
            rows_backward(dx, dgamma, dbeta, dy, y, x, mean, invstd, gamma, n, c, bk * ROW_BLOCK, fclf_min64(c, (bk + 1) * ROW_BLOCK));
        });
        return;
    }
    FCLF_PARALLEL_IF(worth_threads(n, c, hw), {
        for (FCLF_STATIC_RANGE(ch, c))
            backward_channel(dx, dgamma, dbeta, dy + ch * hw, c * hw, y, x, mean, invstd, gamma, n, c, hw, ch);
    });
}

/* BatchNorm, ReLU and 2x2 max pooling as one training step. Each normalised plane goes through a buffer on
 * the stack, in L1, to the pooling kernel, so the full-size output is neither written nor read back, and
 * the backward pass needs no full-size ReLU output for its mask. The values and their order are those of
 * the three separate kernels, so the bits are too. */
int fclf_batchnorm_pool_supported(int64_t h, int64_t w) { return h >= 2 && w >= 2 && h * w <= BN_POOL_STAGE; }

void fclf_batchnorm_relu_pool_forward_train(float *y, int32_t *argmax, float *mean, float *invstd, float *running_mean,
                                            float *running_var, const float *x, const float *gamma, const float *beta,
                                            int64_t n, int64_t c, int64_t h, int64_t w, float momentum, float eps) {
    const int64_t hw = h * w, cells = (h / 2) * (w / 2);
    const int isa = fclf_isa_active();
    FCLF_PARALLEL_IF(worth_threads(n, c, hw), {
        float stage[BN_POOL_STAGE] __attribute__((aligned(64)));
        for (FCLF_STATIC_RANGE(ch, c)) {
            float scale, shift;
            channel_stats(&scale, &shift, mean, invstd, running_mean, running_var, x, gamma, beta, n, c, hw, ch, momentum, eps);
            for (int64_t i = 0; i < n; i++) {
                const int64_t plane = i * c + ch;
                plane_normalise(stage, x + plane * hw, hw, scale, shift, 1);
                fclf_pool_plane(isa, y + plane * cells, argmax + plane * cells, stage, h, w, w);
            }
        }
    });
}

void fclf_batchnorm_relu_pool_backward(float *dx, float *dgamma, float *dbeta, float *work, const float *dy,
                                       const int32_t *argmax, const float *y, const float *x, const float *mean,
                                       const float *invstd, const float *gamma, int64_t n, int64_t c, int64_t h, int64_t w) {
    /* The unpooled gradient with the ReLU's mask (a window passes its gradient when its maximum, the ReLU's
     * output at the winner, is positive), then BatchNorm's backward with no mask left to apply, channel by
     * channel: a channel's n routed planes go to its own contiguous slice of work (n * h * w floats: 173 KB
     * for conv1's output at batch 64) and its sums and dx read them back from L2 at once. Routing the whole
     * batch first sent the full-size gradient out to L3 and back twice. The planes and the sums' order are
     * those of the separate kernels, so the bits are too. */
    const int64_t hw = h * w;
    const int isa = fclf_isa_active();
    FCLF_PARALLEL_IF(worth_threads(n, c, hw), {
        for (FCLF_STATIC_RANGE(ch, c)) {
            float *g = work + ch * n * hw;
            fclf_unpool_channel(isa, g, hw, dy, argmax, y, n, c, ch, h, w);
            backward_channel(dx, dgamma, dbeta, g, hw, NULL, x, mean, invstd, gamma, n, c, hw, ch);
        }
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
