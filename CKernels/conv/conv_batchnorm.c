/* conv_batchnorm.c: a network's first convolution and the BatchNorm (+ReLU) (+2x2 max pooling) after it as one
 * training step (the planner's ConvBatchNorm), forward and backward, without ever storing the convolution's
 * output z.
 *
 * Why: z is the largest tensor of the step (conv1 of cnn3-bn at batch 64: 1.6 M values, 6.4 MB) and the
 * cheapest to compute (9 taps an output). The separate kernels wrote it, read it twice for BatchNorm's
 * statistics and normalisation, and twice more in the backward pass (fclf-profile cnn3-bn 64, Zen 4: 0.75 ms
 * forward and 1.14 ms backward, 15% of the step for 0.3% of its FLOPs). Everything BatchNorm needs from z is
 * linear or quadratic in the patches x_p (the K = c*kh*kw input values under output pixel p, z_p = w . x_p + b).
 * With m the patches' mean and C their covariance over the batch's N = n*oh*ow pixels:
 *     mean(z) = w . m + b,   var(z) = w^T C w                                        (forward)
 * and with g the gradient reaching BatchNorm's output (routed through the pooling's winners, masked by the
 * ReLU), T = sum_p g_p x_p, G = sum_p g_p, and dz = gamma*invstd*(g - G/N - xhat*dgamma/N) BatchNorm's:
 *     dbeta = G,   dgamma = sum_p g_p xhat_p = invstd * w . (T - G m),
 *     dW = sum_p dz_p x_p = gamma*invstd * (T - G m - dgamma*invstd * C w),   db = 0  (backward)
 * (sum_p xhat_p x_p = N invstd C w; BatchNorm removes any shift, so the bias gets no gradient at all).
 * (All of it about a shift per input channel, which C, dW and the normalised z do not see; see stage_input.)
 * So the forward pass first sums the patches' moments (K + K^2 numbers an image, from the input alone), then
 * computes each plane of z in L1 with the normalisation folded into its weights, through the ReLU and the
 * pooling; the backward pass routes g plane by plane and sums T and G against the input. Neither reads z.
 *
 * Order: both passes go image by image (the input staged once per image), each image's sums reduced from
 * float lanes to doubles into its own slot of `moments`, and the slots added in image order afterwards, so the
 * bits do not depend on the thread count. They differ from the separate kernels' (other sums, other order). */
#include "../batchnorm_planes.h"

enum { CONV_BN_STAGE = 4096, CONV_BN_TAPS = 32 };

int fclf_conv2d_batchnorm_supported(fclf_conv2d_shape s, int pool) {
    const int64_t ph = s.oh + s.kh - 1, pw = s.ow + s.kw - 1; /* the padded input the taps read */
    return s.n >= 1 && s.c >= 1 && s.oc >= 1 && s.oh >= 1 && s.ow >= 1 && s.c * s.kh * s.kw <= CONV_BN_TAPS && s.c * ph * pw + LANES <= CONV_BN_STAGE &&
           s.oh * s.ow <= BN_POOL_STAGE && (!pool || fclf_batchnorm_pool_supported(s.oh, s.ow));
}

static int64_t taps_of(fclf_conv2d_shape s) { return s.c * s.kh * s.kw; }

/* moments: the batch's shifted mean m [K], covariance C [K, K] and the shift per input channel [c] (the forward
 * pass writes them, the backward pass reads them), then one slot per image for either pass's sums: K + K^2
 * (forward) or oc * (K + 1) (backward) doubles. */
static int64_t head_size(fclf_conv2d_shape s) { return taps_of(s) + taps_of(s) * taps_of(s) + s.c; }
static int64_t slot_size(fclf_conv2d_shape s) {
    const int64_t k = taps_of(s);
    return fclf_max64(k + k * k, s.oc * (k + 1));
}
int64_t fclf_conv2d_batchnorm_moments_size(fclf_conv2d_shape s) { return head_size(s) + s.n * slot_size(s); }

/* Image i's c input planes, zero-padded, minus shift[cc], into stage [c, ph, pw] (ph = oh + kh - 1), then LANES
 * zeros. The padding is never negative and the padded frame holds the whole input ('valid': the input itself;
 * 'same': pad_t, pad_l before, the rest after), so every input row is copied whole. A row's last vector reads on
 * into the next row, and the last row's into the LANES zeros; those lanes are cleared or overwritten by every
 * user.
 *
 * Every pass takes its patches about that shift per input channel (the batch's first image's mean), padding
 * included: the covariance of the patches does not change when every tap of a channel moves by the same
 * constant, but float sums of x x^T taken about 0 lose it to cancellation when the input sits far from 0 for its
 * spread (raw 0-255 pixels; a test's input 100 of its standard deviations from 0 was off by 2e-4 in invstd and
 * 6e-4 in the weight gradient without it). */
FCLF_CLONES static void stage_input(float *restrict stage, const float *restrict x, const double *restrict shift,
                                    fclf_conv2d_shape s, int64_t i) {
    const int64_t ph = s.oh + s.kh - 1, pw = s.ow + s.kw - 1;
    for (int64_t cc = 0; cc < s.c; cc++) {
        const float k = (float)shift[cc];
        float *plane = stage + cc * ph * pw;
        for (int64_t j = 0; j < ph * pw; j++) plane[j] = -k;
        for (int64_t r = 0; r < s.h; r++) {
            float *dst = plane + (r + s.pad_t) * pw + s.pad_l;
            const float *src = x + ((i * s.c + cc) * s.h + r) * s.w;
            for (int64_t q = 0; q < s.w; q++) dst[q] = src[q] - k;
        }
    }
    memset(stage + s.c * ph * pw, 0, LANES * sizeof(float));
}

/* w . m for channel ch's weights. */
static double dot_w(const float *w, const double *m, int64_t k) {
    double d = 0;
    for (int64_t t = 0; t < k; t++) d += w[t] * m[t];
    return d;
}

/* The K patch vectors of output pixels (r, q .. q + LANES - 1): tap t = (cc * kh + u) * kw + v, each ANDed with
 * `live` (the lanes past the row cleared). */
#define LOAD_PATCH(xv, stage, c, kh, kw, ph, pw, r, q, live)                                               \
    for (int64_t cc = 0; cc < (c); cc++)                                                                   \
        for (int64_t u = 0; u < (kh); u++)                                                                 \
            for (int64_t v = 0; v < (kw); v++) {                                                           \
                lanes_f x_ = load_lanes((stage) + (cc * (ph) + (r) + u) * (pw) + (q) + v);                 \
                (xv)[(cc * (kh) + u) * (kw) + v] = (lanes_f)((lanes_i)x_ & (live));                        \
            }

/* A vector's lanes added in double, in lane order (a pointer: a vector argument trips the baseline clone's ABI). */
static inline double lanes_to_double(const lanes_f *v) {
    float f[LANES];
    memcpy(f, v, sizeof f);
    double s = 0;
    for (int l = 0; l < LANES; l++) s += f[l];
    return s;
}

/* ---- forward ---- */

/* Image's patch sums into slot [K] and products into slot + K [K, K] (both triangles), each summed in float
 * lanes over the image (lane l of a 28 x 28 plane sums 56 values) and reduced to double. Inlined into a copy for
 * one input channel and a 3x3 kernel (the CNNs' first layer), whose 54 sums the compiler keeps in registers and
 * nearby stack, and a general copy. */
static inline __attribute__((always_inline)) void moments_body(double *restrict slot, const float *restrict stage, int64_t c,
                                                               int64_t kh, int64_t kw, int64_t oh, int64_t ow) {
    const int64_t ph = oh + kh - 1, pw = ow + kw - 1, k = c * kh * kw;
    lanes_f sum[CONV_BN_TAPS], prod[CONV_BN_TAPS * (CONV_BN_TAPS + 1) / 2], xv[CONV_BN_TAPS];
    for (int64_t t = 0; t < k; t++) sum[t] = (lanes_f){0};
    for (int64_t t = 0; t < k * (k + 1) / 2; t++) prod[t] = (lanes_f){0};
    const lanes_i all = lanes_below(LANES), tail = lanes_below(ow % LANES ? ow % LANES : LANES);
    for (int64_t r = 0; r < oh; r++)
        for (int64_t q = 0; q < ow; q += LANES) {
            const lanes_i live = q + LANES > ow ? tail : all;
            LOAD_PATCH(xv, stage, c, kh, kw, ph, pw, r, q, live);
            for (int64_t a = 0, j = 0; a < k; a++) {
                sum[a] += xv[a];
                for (int64_t b = a; b < k; b++, j++) prod[j] += xv[a] * xv[b];
            }
        }
    for (int64_t a = 0, j = 0; a < k; a++) {
        slot[a] = lanes_to_double(&sum[a]);
        for (int64_t b = a; b < k; b++, j++) slot[k + a * k + b] = slot[k + b * k + a] = lanes_to_double(&prod[j]);
    }
}

FCLF_CLONES static void image_moments_1x3x3(double *restrict slot, const float *restrict stage, int64_t oh, int64_t ow) {
    moments_body(slot, stage, 1, 3, 3, oh, ow);
}
FCLF_CLONES static void image_moments_any(double *restrict slot, const float *restrict stage, int64_t c, int64_t kh,
                                          int64_t kw, int64_t oh, int64_t ow) {
    moments_body(slot, stage, c, kh, kw, oh, ow);
}

/* out [oh, ow] = act(wf . x_p + bf), the normalisation folded into wf, bf; rows stored as whole vectors (a row's
 * extra lanes are overwritten by the next row; out has LANES floats of slack). */
static inline __attribute__((always_inline)) void plane_body(float *restrict out, const float *restrict stage,
                                                             const float *restrict wf, float bf, int64_t c, int64_t kh,
                                                             int64_t kw, int64_t oh, int64_t ow, int relu) {
    const int64_t ph = oh + kh - 1, pw = ow + kw - 1;
    for (int64_t r = 0; r < oh; r++)
        for (int64_t q = 0; q < ow; q += LANES) {
            lanes_f acc = (lanes_f){0} + bf;
            for (int64_t cc = 0; cc < c; cc++)
                for (int64_t u = 0; u < kh; u++)
                    for (int64_t v = 0; v < kw; v++)
                        acc += wf[(cc * kh + u) * kw + v] * load_lanes(stage + (cc * ph + r + u) * pw + q + v);
            if (relu) acc = (lanes_f)((lanes_i)acc & (acc > 0.0f)); /* max(acc, 0); NaN -> 0 as the ReLU kernel */
            memcpy(out + r * ow + q, &acc, sizeof acc);
        }
}

FCLF_CLONES static void plane_1x3x3(float *restrict out, const float *restrict stage, const float *restrict wf, float bf,
                                    int64_t oh, int64_t ow, int relu) {
    if (relu) plane_body(out, stage, wf, bf, 1, 3, 3, oh, ow, 1);
    else plane_body(out, stage, wf, bf, 1, 3, 3, oh, ow, 0);
}
FCLF_CLONES static void plane_any(float *restrict out, const float *restrict stage, const float *restrict wf, float bf,
                                  int64_t c, int64_t kh, int64_t kw, int64_t oh, int64_t ow, int relu) {
    plane_body(out, stage, wf, bf, c, kh, kw, oh, ow, relu);
}

void fclf_conv2d_batchnorm_forward_train(float *y, int32_t *argmax, float *mean, float *invstd, float *running_mean,
                                         float *running_var, double *moments, const float *x, const float *weight,
                                         const float *bias, const float *gamma, const float *beta, int relu, int pool,
                                         fclf_conv2d_shape s, float momentum, float eps) {
    const int64_t n = s.n, oc = s.oc, hw = s.oh * s.ow, cells = (s.oh / 2) * (s.ow / 2), k = taps_of(s);
    const int64_t count = n * hw, slot = slot_size(s);
    const int one3x3 = s.c == 1 && s.kh == 3 && s.kw == 3;
    double *m = moments, *cov = moments + k, *shift = moments + k + k * k, *slots = moments + head_size(s);
    for (int64_t cc = 0; cc < s.c; cc++) {
        double sum = 0;
        for (int64_t j = 0; j < s.h * s.w; j++) sum += x[cc * s.h * s.w + j];
        shift[cc] = (float)(sum / (double)(s.h * s.w)); /* rounded to the float the stage subtracts */
    }
    FCLF_PARALLEL_IF(worth_threads(n, oc, hw), {
        float stage[CONV_BN_STAGE] __attribute__((aligned(64)));
        for (FCLF_STATIC_RANGE(i, n)) {
            stage_input(stage, x, shift, s, i);
            if (one3x3) image_moments_1x3x3(slots + i * slot, stage, s.oh, s.ow);
            else image_moments_any(slots + i * slot, stage, s.c, s.kh, s.kw, s.oh, s.ow);
        }
    });
    /* The batch's m and C (about the shift), then each channel's statistics: K^2 (n + oc) operations on this
     * thread. */
    for (int64_t t = 0; t < k + k * k; t++) {
        double acc = 0;
        for (int64_t i = 0; i < n; i++) acc += slots[i * slot + t];
        moments[t] = acc / (double)count;
    }
    for (int64_t a = 0; a < k; a++)
        for (int64_t b = 0; b < k; b++) cov[a * k + b] -= m[a] * m[b];
    const int64_t kk = s.kh * s.kw;
    for (int64_t ch = 0; ch < oc; ch++) {
        const float *w = weight + ch * k;
        double mu = bias[ch] + dot_w(w, m, k), var = 0;
        for (int64_t a = 0; a < k; a++) {
            double cw = 0;
            for (int64_t b = 0; b < k; b++) cw += cov[a * k + b] * w[b];
            mu += w[a] * shift[a / kk];
            var += w[a] * cw;
        }
        float scale, offset; /* the affine map itself is not used: the plane pass folds it about the shift */
        finish_stats(&scale, &offset, mean, invstd, running_mean, running_var, gamma, beta, count, ch, mu,
                     var < 0 ? 0 : var, momentum, eps); /* rounding can leave a tiny negative; a NaN stays NaN */
    }
    const int isa = fclf_isa_active();
    FCLF_PARALLEL_IF(worth_threads(n, oc, hw), {
        float stage[CONV_BN_STAGE] __attribute__((aligned(64)));
        float out[BN_POOL_STAGE + LANES] __attribute__((aligned(64)));
        float wf[CONV_BN_TAPS];
        for (FCLF_STATIC_RANGE(i, n)) {
            stage_input(stage, x, shift, s, i);
            for (int64_t ch = 0; ch < oc; ch++) {
                /* BatchNorm's y = (z - mean) * gamma * invstd + beta with z - mean = w . (x_p - shift) - w . m:
                 * the scale folded into the weights, the rest into the bias (both small, about the shift). */
                const float scale = gamma[ch] * invstd[ch];
                for (int64_t t = 0; t < k; t++) wf[t] = weight[ch * k + t] * scale;
                const float bf = beta[ch] - (float)(dot_w(weight + ch * k, m, k) * scale);
                if (one3x3) plane_1x3x3(out, stage, wf, bf, s.oh, s.ow, relu);
                else plane_any(out, stage, wf, bf, s.c, s.kh, s.kw, s.oh, s.ow, relu);
                const int64_t plane = i * oc + ch;
                if (pool) fclf_pool_plane(isa, y + plane * cells, argmax + plane * cells, out, s.oh, s.ow, s.ow);
                else memcpy(y + plane * hw, out, (size_t)hw * sizeof(float));
            }
        }
    });
}

/* ---- backward ---- */

/* T [K] = sum_p g_p x_p and G = sum_p g_p over one plane, into sums [K + 1] (G last), each in float lanes reduced
 * to double. g has LANES floats of slack: a row's last vector reads on into the next row, and the lanes past the
 * row are cleared. */
static inline __attribute__((always_inline)) void taps_body(double *restrict sums, const float *restrict g,
                                                            const float *restrict stage, int64_t c, int64_t kh, int64_t kw,
                                                            int64_t oh, int64_t ow) {
    const int64_t ph = oh + kh - 1, pw = ow + kw - 1, k = c * kh * kw;
    lanes_f t[CONV_BN_TAPS], gsum = {0};
    for (int64_t j = 0; j < k; j++) t[j] = (lanes_f){0};
    const lanes_i tail = lanes_below(ow % LANES ? ow % LANES : LANES);
    for (int64_t r = 0; r < oh; r++)
        for (int64_t q = 0; q < ow; q += LANES) {
            lanes_f d = load_lanes(g + r * ow + q);
            if (q + LANES > ow) d = (lanes_f)((lanes_i)d & tail);
            gsum += d;
            for (int64_t cc = 0; cc < c; cc++)
                for (int64_t u = 0; u < kh; u++) {
                    const float *row = stage + (cc * ph + r + u) * pw + q;
                    for (int64_t v = 0; v < kw; v++) t[(cc * kh + u) * kw + v] += d * load_lanes(row + v);
                }
        }
    for (int64_t j = 0; j < k; j++) sums[j] = lanes_to_double(&t[j]);
    sums[k] = lanes_to_double(&gsum);
}

FCLF_CLONES static void plane_taps_1x3x3(double *restrict sums, const float *restrict g, const float *restrict stage,
                                         int64_t oh, int64_t ow) {
    taps_body(sums, g, stage, 1, 3, 3, oh, ow);
}
FCLF_CLONES static void plane_taps_any(double *restrict sums, const float *restrict g, const float *restrict stage, int64_t c,
                                       int64_t kh, int64_t kw, int64_t oh, int64_t ow) {
    taps_body(sums, g, stage, c, kh, kw, oh, ow);
}

/* Plane (i, ch)'s gradient at BatchNorm's output into g: the pooled dy routed through the winners (the ReLU's
 * mask applied there), else dy's own plane, masked by y > 0 when y (the ReLU's output) is given. */
static void plane_gradient(int isa, float *restrict g, const float *dy, const int32_t *argmax, const float *y, int pool,
                           int64_t plane, int64_t oh, int64_t ow) {
    const int64_t hw = oh * ow;
    if (pool) {
        const int64_t at = plane * (oh / 2) * (ow / 2);
        fclf_unpool_plane(isa, g, dy + at, argmax + at, y ? y + at : NULL, oh, ow, ow);
    } else if (y) {
        fclf_relu_backward(g, dy + plane * hw, y + plane * hw, hw);
    } else {
        memcpy(g, dy + plane * hw, (size_t)hw * sizeof(float));
    }
}

void fclf_conv2d_batchnorm_backward(float *dweight, float *dgamma, float *dbeta, const float *dy, const int32_t *argmax,
                                    const float *y, const float *x, const float *weight, const float *invstd,
                                    const float *gamma, double *moments, int pool, fclf_conv2d_shape s) {
    const int64_t n = s.n, oc = s.oc, hw = s.oh * s.ow, k = taps_of(s), slot = slot_size(s);
    const double *m = moments, *cov = moments + k, *shift = moments + k + k * k;
    double *sums = moments + head_size(s);
    const int one3x3 = s.c == 1 && s.kh == 3 && s.kw == 3;
    const int isa = fclf_isa_active();
    FCLF_PARALLEL_IF(worth_threads(n, oc, hw), {
        float stage[CONV_BN_STAGE] __attribute__((aligned(64)));
        float g[BN_POOL_STAGE + LANES] __attribute__((aligned(64)));
        memset(g + hw, 0, LANES * sizeof(float)); /* the slack a row's last vector reads (masked) is defined */
        for (FCLF_STATIC_RANGE(i, n)) {
            stage_input(stage, x, shift, s, i);
            for (int64_t ch = 0; ch < oc; ch++) {
                plane_gradient(isa, g, dy, argmax, y, pool, i * oc + ch, s.oh, s.ow);
                double *out = sums + i * slot + ch * (k + 1);
                if (one3x3) plane_taps_1x3x3(out, g, stage, s.oh, s.ow);
                else plane_taps_any(out, g, stage, s.c, s.kh, s.kw, s.oh, s.ow);
            }
        }
    });
    /* Each channel's T and G over the batch, in image order, then the formulas above (T and m both about the
     * shift, which T - G m does not see): K^2 oc operations. */
    for (int64_t ch = 0; ch < oc; ch++) {
        double t[CONV_BN_TAPS + 1] = {0};
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j <= k; j++) t[j] += sums[i * slot + ch * (k + 1) + j];
        const double G = t[k], is = invstd[ch];
        const float *w = weight + ch * k;
        double wt = 0;
        for (int64_t j = 0; j < k; j++) wt += w[j] * (t[j] - G * m[j]);
        const double dg = is * wt;
        dgamma[ch] += (float)dg;
        dbeta[ch] += (float)G;
        for (int64_t a = 0; a < k; a++) {
            double cw = 0;
            for (int64_t b = 0; b < k; b++) cw += cov[a * k + b] * w[b];
            dweight[ch * k + a] += (float)(gamma[ch] * is * (t[a] - G * m[a] - dg * is * cw));
        }
    }
}
