/* batchnorm.c: batch normalisation (Ioffe & Szegedy 2015) over the channels of an NCHW batch, forward and
 * backward, and the inference form (a per-channel scale and shift).
 *
 * Statistics: one channel per owner thread, in a fixed order (each plane in 16 float lanes, each lane added
 * to its own double lane image by image, the 16 reduced once; a dense layer's channels one per lane, summed in
 * double), so the results do not depend on the thread count, and a channel of 32 x 26 x 26 = 21,632 values is
 * not summed in one long float chain. Running statistics follow PyTorch: running = (1 - momentum) *
 * running + momentum * batch statistic, with the unbiased variance (n*hw / (n*hw - 1)); normalisation uses
 * the biased one. */
#include "fclf_internal.h"

#include <math.h>
#include <string.h>

/* Memory-bound passes over the batch: on threads from 64k values, as pooling (conv2's output at batch 32,
 * 248k values, took 0.87 ms forward on one thread). */
static int worth_threads(int64_t n, int64_t c, int64_t hw) { return n * c * hw >= (1 << 16) && c > 1; }

/* The largest plane the fused BatchNorm+ReLU+pooling step stages on the stack: 16 KB (64 x 64). */
enum { BN_POOL_STAGE = 4096 };

/* A plane's sum and its sum of squared deviations from m, in 16 float lanes (a plane's last, partial vector
 * zero-padded), each lane then added to the caller's own double lane: a channel's planes go in lane by lane and
 * its 16 double lanes are reduced once, in order, at the end (lane_total). Each lane sums hw/16 values in
 * float (42 for conv1's 26 x 26 planes), so float loses little. Reducing every plane to one double, with its
 * tail added value by value, was a chain of about 25 dependent double additions per plane: conv2's 11 x 11
 * planes (9 values of tail) spent more time there than on their 121 values (fclf-profile cnn-bn 128, AMD Zen 4:
 * that BatchNorm 0.94 ms forward for 1 M values, against 1.07 ms for conv1's 2.8 M). */
enum { LANES = 16 };

typedef float lanes_f __attribute__((vector_size(4 * LANES)));
typedef int32_t lanes_i __attribute__((vector_size(4 * LANES)));
/* An unaligned load of LANES floats (a macro: a function returning the vector trips the baseline clone's ABI). */
#define load_lanes(p) __extension__({ lanes_f v_; memcpy(&v_, (p), sizeof v_); v_; })
/* The last count (< LANES) floats at p, the other lanes 0. */
#define load_tail(p, count) __extension__({ float t_[LANES] = {0}; memcpy(t_, (p), (size_t)(count) * sizeof(float)); load_lanes(t_); })

/* acc[l] += v[l] in double, lane by lane (a macro, as load_lanes). */
#define add_lanes(acc, v)                                                                                        \
    do {                                                                                                         \
        float f_[LANES];                                                                                         \
        memcpy(f_, &(v), sizeof f_);                                                                             \
        for (int l_ = 0; l_ < LANES; l_++) (acc)[l_] += f_[l_];                                                  \
    } while (0)

static double lane_total(const double *acc) {
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
        const lanes_i live = (lanes_i){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15} < (int32_t)(hw - j);
        v += (lanes_f)((lanes_i)(d * d) & live); /* the padding's (0 - m)^2 left out */
    }
    add_lanes(acc, v);
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

FCLF_CLONES static void plane_normalise(float *restrict y, const float *restrict x, int64_t hw, float scale, float shift, int relu) {
    if (relu)
        for (int64_t j = 0; j < hw; j++) {
            float v = x[j] * scale + shift;
            y[j] = v > 0.0f ? v : 0.0f;
        }
    else
        for (int64_t j = 0; j < hw; j++) y[j] = x[j] * scale + shift;
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

/* From channel ch's mean and (biased) variance over count values: WRITES mean_out[ch], invstd_out[ch], UPDATES
 * the running ones, and gives the affine map y = x * scale + shift that normalises it. */
static void finish_stats(float *scale, float *shift, float *mean_out, float *invstd_out, float *running_mean,
                         float *running_var, const float *gamma, const float *beta, int64_t count, int64_t ch,
                         double mean, double var, float momentum, float eps) {
    const float invstd = (float)(1.0 / sqrt(var + eps));
    *scale = gamma[ch] * invstd;
    *shift = beta[ch] - (float)mean * *scale;
    mean_out[ch] = (float)mean;
    invstd_out[ch] = invstd;
    if (running_mean) {
        const double unbiased = count > 1 ? var * (double)count / (double)(count - 1) : var;
        running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
        running_var[ch] = (float)((1.0 - momentum) * running_var[ch] + momentum * unbiased);
    }
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
    const double sum_dy = lane_total(lanes_dy), sum_dy_xhat = lane_total(lanes_dy_xhat);
    dgamma[ch] += (float)sum_dy_xhat;
    dbeta[ch] += (float)sum_dy;
    if (!dx) return;
    /* dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)) */
    const float k = gamma[ch] * is, a = (float)(sum_dy / (double)count), b = (float)(sum_dy_xhat / (double)count);
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
                fclf_pool_plane(isa, y + plane * cells, argmax + plane * cells, stage, h, w);
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

/* ---- a network's first convolution, its weight gradient computed inside BatchNorm's backward pass ----
 *
 * Why: BatchNorm's input gradient dz is as large as the convolution's output (conv1 of the CNN at batch 128:
 * 2.8 M values, 11 MB). Written by BatchNorm's backward and read back by the convolution's weight-gradient
 * product, it went out to memory and back (fclf-profile cnn-bn 128, Zen 4: 2.0 ms BatchNorm backward, 0.8 ms
 * the convolution's). Here each dz plane (the bits of fclf_batchnorm_backward's dx) goes through a buffer on
 * the stack, in L1, straight into the kh*kw*c taps of the weight gradient and into the bias gradient, and is
 * never stored. Only for a first layer: nothing reads the convolution's input gradient.
 *
 * The taps: dw[ch, cc, u, v] = sum over images and output pixels (r, q) of dz[r, q] * x[cc, r + u - pad_t,
 * q + v - pad_l]. Each row is taken in vectors of 16 output pixels, the last one masked: its lanes past the row
 * read on into the next row (finite values, times zero). With padding, and for the batch's last image (whose last
 * vector would read past the end), the input image is first staged zero-padded on the stack. Each plane
 * sums its rows in 16 float lanes per tap, then adds them to the tap's double lanes; a channel's taps are
 * reduced once at the end, in order, by the thread that owns the channel: the bits do not depend on the
 * thread count (they differ from the separate product's, which sums in other blocks). */
enum { CONV_BN_STAGE = 4096, CONV_BN_TAPS = 32 };

int fclf_conv2d_batchnorm_backward_supported(fclf_conv2d_shape s, int pool) {
    const int64_t ph = s.oh + s.kh - 1, pw = s.ow + s.kw - 1; /* the padded input the taps read */
    return s.n >= 1 && s.c >= 1 && s.c * s.kh * s.kw <= CONV_BN_TAPS && s.c * ph * pw + LANES <= CONV_BN_STAGE &&
           s.oh * s.ow <= BN_POOL_STAGE && (!pool || fclf_batchnorm_pool_supported(s.oh, s.ow));
}

/* Image i's c input planes zero-padded into stage [c, ph, pw] (ph = oh + kh - 1), then LANES zeros. */
static void stage_input(float *restrict stage, const float *restrict x, fclf_conv2d_shape s, int64_t i) {
    const int64_t ph = s.oh + s.kh - 1, pw = s.ow + s.kw - 1;
    memset(stage, 0, (size_t)(s.c * ph * pw + LANES) * sizeof(float));
    for (int64_t cc = 0; cc < s.c; cc++)
        for (int64_t r = 0; r < s.h; r++) {
            const int64_t pr = r + s.pad_t;
            if (pr < 0 || pr >= ph) continue;
            const int64_t c0 = s.pad_l < 0 ? -s.pad_l : 0, c1 = fclf_min64(s.w, pw - s.pad_l);
            if (c1 > c0) memcpy(stage + (cc * ph + pr) * pw + s.pad_l + c0, x + ((i * s.c + cc) * s.h + r) * s.w + c0,
                                (size_t)(c1 - c0) * sizeof(float));
        }
}

/* One dz plane [oh, ow] against the staged input: each tap's sum in float lanes, added to its double lanes
 * (taps t = (cc * kh + u) * kw + v), and the plane's sum to bias. Inlined into a copy for one input channel
 * and a 3x3 kernel (the CNNs' first layer), whose 9 sums then live in registers, and a general copy. */
static inline __attribute__((always_inline)) void taps_body(double (*restrict acc)[LANES], double *restrict bias,
                                                            const float *restrict dz, const float *restrict stage, int64_t c,
                                                            int64_t kh, int64_t kw, int64_t oh, int64_t ow) {
    const int64_t ph = oh + kh - 1, pw = ow + kw - 1, taps = c * kh * kw;
    lanes_f t[CONV_BN_TAPS], bsum = {0};
    for (int64_t k = 0; k < taps; k++) t[k] = (lanes_f){0};
    /* A row's last vector reads on into the next row (dz has LANES floats of slack): those lanes are cleared. */
    const lanes_i tail = (lanes_i){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15} < (int32_t)(ow % LANES ? ow % LANES : LANES);
    for (int64_t r = 0; r < oh; r++)
        for (int64_t q = 0; q < ow; q += LANES) {
            lanes_f d = load_lanes(dz + r * ow + q);
            if (q + LANES > ow) d = (lanes_f)((lanes_i)d & tail);
            bsum += d;
            for (int64_t cc = 0; cc < c; cc++)
                for (int64_t u = 0; u < kh; u++) {
                    const float *row = stage + (cc * ph + r + u) * pw + q;
                    for (int64_t v = 0; v < kw; v++) t[(cc * kh + u) * kw + v] += d * load_lanes(row + v);
                }
        }
    for (int64_t k = 0; k < taps; k++) add_lanes(acc[k], t[k]);
    add_lanes(bias, bsum);
}

FCLF_CLONES static void plane_taps_1x3x3(double (*restrict acc)[LANES], double *restrict bias, const float *restrict dz,
                                         const float *restrict stage, int64_t oh, int64_t ow) {
    taps_body(acc, bias, dz, stage, 1, 3, 3, oh, ow);
}

FCLF_CLONES static void plane_taps_any(double (*restrict acc)[LANES], double *restrict bias, const float *restrict dz,
                                       const float *restrict stage, int64_t c, int64_t kh, int64_t kw, int64_t oh, int64_t ow) {
    taps_body(acc, bias, dz, stage, c, kh, kw, oh, ow);
}

static void plane_taps(double (*restrict acc)[LANES], double *restrict bias, const float *restrict dz,
                       const float *restrict stage, int64_t c, int64_t kh, int64_t kw, int64_t oh, int64_t ow) {
    if (c == 1 && kh == 3 && kw == 3) plane_taps_1x3x3(acc, bias, dz, stage, oh, ow);
    else plane_taps_any(acc, bias, dz, stage, c, kh, kw, oh, ow);
}

/* Image i's gradient plane of channel ch: the pooled dy routed into g when pool, else dy's own plane. */
static inline const float *plane_gradient(int isa, float *g, const float *dy, const int32_t *argmax, const float *y,
                                          int pool, int64_t i, int64_t c, int64_t ch, int64_t oh, int64_t ow) {
    if (!pool) return dy + (i * c + ch) * oh * ow;
    const int64_t at = (i * c + ch) * (oh / 2) * (ow / 2);
    fclf_unpool_plane(isa, g, dy + at, argmax + at, y + at, oh, ow);
    return g;
}

void fclf_conv2d_batchnorm_backward(float *dweight, float *dbias, float *dgamma, float *dbeta, const float *dy,
                                    const int32_t *argmax, const float *y, const float *z, const float *x, const float *mean,
                                    const float *invstd, const float *gamma, int pool, fclf_conv2d_shape s) {
    const int64_t n = s.n, c = s.oc, hw = s.oh * s.ow, cells = (s.oh / 2) * (s.ow / 2), count = n * hw;
    const int64_t taps = s.c * s.kh * s.kw;
    const int isa = fclf_isa_active();
    FCLF_PARALLEL_IF(worth_threads(n, c, hw), {
        float g[BN_POOL_STAGE] __attribute__((aligned(64)));
        float dz[BN_POOL_STAGE + LANES] __attribute__((aligned(64)));
        float stage[CONV_BN_STAGE] __attribute__((aligned(64)));
        memset(dz + hw, 0, LANES * sizeof(float)); /* the slack a row's last vector reads (masked) is defined */
        for (FCLF_STATIC_RANGE(ch, c)) {
            /* Plane i's gradient: routed through the pooling's winners into g, in L1 (the ReLU's mask applied
             * there), once for the sums and again for dz: routing twice costs less than a batch of routed planes
             * sent out to L2 and read back. Without pooling, dy itself, masked by the ReLU's output y if any. */
            const float *mask = pool ? NULL : y;
            const float mu = mean[ch], is = invstd[ch];
            double lanes_dy[LANES] = {0}, lanes_dy_xhat[LANES] = {0};
            for (int64_t i = 0; i < n; i++) {
                const int64_t at = (i * c + ch) * hw;
                if (pool && i + 2 < n) fclf_unpool_prefetch(dy, argmax, y, ((i + 2) * c + ch) * cells, cells);
                const float *gi = plane_gradient(isa, g, dy, argmax, y, pool, i, c, ch, s.oh, s.ow);
                plane_grad_sums(gi, z + at, mask ? mask + at : NULL, hw, mu, is, lanes_dy, lanes_dy_xhat);
            }
            const double sum_dy = lane_total(lanes_dy), sum_dy_xhat = lane_total(lanes_dy_xhat);
            dgamma[ch] += (float)sum_dy_xhat;
            dbeta[ch] += (float)sum_dy;
            const float k = gamma[ch] * is, a = (float)(sum_dy / (double)count), b = (float)(sum_dy_xhat / (double)count);
            double acc[CONV_BN_TAPS][LANES], bias[LANES] = {0};
            memset(acc, 0, sizeof acc);
            for (int64_t i = 0; i < n; i++) {
                const int64_t at = (i * c + ch) * hw;
                plane_dx(dz, plane_gradient(isa, g, dy, argmax, y, pool, i, c, ch, s.oh, s.ow), z + at, mask ? mask + at : NULL, hw, k, a, b, mu, is);
                /* Where the padded geometry is the input's own ('valid'), the taps read the input in place, but
                 * for the last image, whose last vector may read past the batch's end. ('same' with an even
                 * kernel pads only after: pad_t = pad_l = 0, yet the rows are longer.) */
                const float *in = x + i * s.c * s.h * s.w;
                if (s.pad_t != 0 || s.pad_l != 0 || s.oh + s.kh - 1 != s.h || s.ow + s.kw - 1 != s.w || i + 1 == n) {
                    stage_input(stage, x, s, i);
                    in = stage;
                }
                plane_taps(acc, bias, dz, in, s.c, s.kh, s.kw, s.oh, s.ow);
            }
            for (int64_t t = 0; t < taps; t++) dweight[ch * taps + t] += (float)lane_total(acc[t]);
            dbias[ch] += (float)lane_total(bias);
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
