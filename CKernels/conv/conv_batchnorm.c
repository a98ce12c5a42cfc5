/* conv_batchnorm.c: a network's first convolution, its weight gradient computed inside the backward pass of
 * the BatchNorm (+ReLU, +2x2 max pooling) after it (the planner's ConvBatchNorm step).
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
 * read on into the next row (finite values, times zero). Where the padded frame is not the input's own ('same'
 * padding), and for the batch's last image (whose last vector would read past the end), the input image is
 * first staged zero-padded on the stack. Each plane
 * sums its rows in 16 float lanes per tap, then adds them to the tap's double lanes; a channel's taps are
 * reduced once at the end, in order, by the thread that owns the channel: the bits do not depend on the
 * thread count (they differ from the separate product's, which sums in other blocks). */
#include "../batchnorm_planes.h"

enum { CONV_BN_STAGE = 4096, CONV_BN_TAPS = 32 };

int fclf_conv2d_batchnorm_backward_supported(fclf_conv2d_shape s, int pool) {
    const int64_t ph = s.oh + s.kh - 1, pw = s.ow + s.kw - 1; /* the padded input the taps read */
    return s.n >= 1 && s.c >= 1 && s.c * s.kh * s.kw <= CONV_BN_TAPS && s.c * ph * pw + LANES <= CONV_BN_STAGE &&
           s.oh * s.ow <= BN_POOL_STAGE && (!pool || fclf_batchnorm_pool_supported(s.oh, s.ow));
}

/* Image i's c input planes zero-padded into stage [c, ph, pw] (ph = oh + kh - 1), then LANES zeros. The padding
 * is never negative and the padded frame holds the whole input ('valid': the input itself; 'same': pad_t, pad_l
 * before, the rest after), so every input row is copied whole. */
static void stage_input(float *restrict stage, const float *restrict x, fclf_conv2d_shape s, int64_t i) {
    const int64_t ph = s.oh + s.kh - 1, pw = s.ow + s.kw - 1;
    memset(stage, 0, (size_t)(s.c * ph * pw + LANES) * sizeof(float));
    for (int64_t cc = 0; cc < s.c; cc++)
        for (int64_t r = 0; r < s.h; r++)
            memcpy(stage + (cc * ph + r + s.pad_t) * pw + s.pad_l, x + ((i * s.c + cc) * s.h + r) * s.w,
                   (size_t)s.w * sizeof(float));
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
    const lanes_i tail = lanes_below(ow % LANES ? ow % LANES : LANES);
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
            float k, a, b;
            finish_grad_sums(&k, &a, &b, dgamma, dbeta, lanes_dy, lanes_dy_xhat, gamma[ch], is, count, ch);
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
