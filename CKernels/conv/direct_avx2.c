/* direct_avx2.c: conv1's shape (K = 9: a 3x3 kernel on one channel) with AVX2 + FMA (direct.c has the driver,
 * the portable loops and the AVX-512 kernels). */
#include "direct.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* The same two passes with AVX2 + FMA, 8 lanes. Sixteen registers hold one channel's nine weights (forward) or
 * nine sums (weight gradient) but not two channels', so channels run one at a time: each column row is
 * loaded once per channel, from L1. The forward's arithmetic is the AVX-512 path's (the sum starts at the
 * bias, then nine FMAs in tap order), so the two variants give the same conv1 output; the weight gradient
 * keeps 8-lane sums over the batch, reduced once (the AVX-512 path keeps 16). The portable loops this
 * replaces, forced onto a Zen 4 with FCLF_ISA=avx2, took conv1's backward to 1.3 ms of a 4.8 ms seed-CNN step
 * at batch 32 (AVX-512 path: 0.12 ms). */
__attribute__((target("avx2,fma"))) void fclf_k9_forward_image__avx2(float *restrict y, const float *restrict src,
                                                                    const fclf_conv_taps *t, const float *restrict w,
                                                                    const float *restrict b, int64_t oc, int relu) {
    const __m256 zero = _mm256_setzero_ps();
    const int64_t P = t->len;
    const __m256i tail = fclf_lanes8(P % 8);
    const float *c[9];
    for (int k = 0; k < 9; k++) c[k] = src + t->off[k];
    for (int64_t o = 0; o < oc; o++) {
        __m256 wk[9];
        for (int k = 0; k < 9; k++) wk[k] = _mm256_set1_ps(w[o * 9 + k]);
        const __m256 bias = _mm256_set1_ps(b ? b[o] : 0.0f);
        float *yo = y + o * t->plane;
        int64_t p = 0;
        for (; p + 8 <= P; p += 8) {
            __m256 a = bias;
            for (int k = 0; k < 9; k++) a = _mm256_fmadd_ps(wk[k], _mm256_loadu_ps(c[k] + p), a);
            _mm256_storeu_ps(yo + p, relu ? _mm256_max_ps(a, zero) : a);
        }
        if (p < P) {
            __m256 a = bias;
            for (int k = 0; k < 9; k++) a = _mm256_fmadd_ps(wk[k], _mm256_maskload_ps(c[k] + p, tail), a);
            _mm256_maskstore_ps(yo + p, tail, relu ? _mm256_max_ps(a, zero) : a);
        }
    }
}

/* Channels whose 8-lane sums (9 taps and the bias) stay in L1 while an image's nine column rows serve them all. */
enum { K9_GRAD_CHANNELS = 16 };

__attribute__((target("avx2,fma"), always_inline)) static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* dW[o][k] += sum_i,p dz_i[o][p] tap_k,i[p] and db[o] += sum dz for channels [o0, o1): images outer, as the
 * AVX-512 path; every lane adds its products in image and pixel order. */
__attribute__((target("avx2,fma"))) void fclf_k9_grad_rows__avx2(float *restrict dw, float *restrict db,
                                                                const fclf_conv_grad_source *g,
                                                                const fclf_conv_tap_source *taps, int relu,
                                                                int64_t o0, int64_t o1, fclf_conv2d_shape s) {
    const fclf_conv_taps t = taps->t;
    const int64_t P = s.oh * s.ow, len = t.len;
    const __m256 zero = _mm256_setzero_ps();
    const __m256i tail = fclf_lanes8(len % 8);
    __m256 sums[K9_GRAD_CHANNELS][10];
    for (int64_t q0 = o0; q0 < o1; q0 += K9_GRAD_CHANNELS) {
        const int64_t count = fclf_min64(K9_GRAD_CHANNELS, o1 - q0);
        for (int64_t j = 0; j < count; j++)
            for (int v = 0; v < 10; v++) sums[j][v] = zero;
        for (int64_t i = 0; i < s.n; i++) {
            const float *src = fclf_conv_tap_image(taps, i, s);
            for (int64_t j = 0; j < count; j++) {
                const int64_t o = q0 + j;
                const float *gp = fclf_conv_grad_plane(FCLF_ISA_AVX2, g, &t, i, o, 0, s);
                const float *yp = relu ? g->y + (i * s.oc + o) * P : NULL;
                __m256 acc[9], sum = sums[j][9];
                for (int k = 0; k < 9; k++) acc[k] = sums[j][k];
                /* Whole vectors with plain loads: a masked load (vmaskmovps) issues at half the rate of a plain
                 * one on AMD's cores, and this loop is 11 loads to 9 FMAs (perf, FCLF_ISA=avx2 on Zen 4: 10.7%
                 * of a b128 step, twice the AVX-512 path's time). The tail masked; the same values either way. */
                int64_t p = 0;
                for (; p + 8 <= len; p += 8) {
                    __m256 v = _mm256_loadu_ps(gp + p);
                    if (relu) v = _mm256_and_ps(v, _mm256_cmp_ps(_mm256_loadu_ps(yp + p), zero, _CMP_GT_OQ));
                    sum = _mm256_add_ps(sum, v);
                    for (int k = 0; k < 9; k++) acc[k] = _mm256_fmadd_ps(v, _mm256_loadu_ps(src + t.off[k] + p), acc[k]);
                }
                if (p < len) {
                    __m256 v = _mm256_maskload_ps(gp + p, tail);
                    if (relu) v = _mm256_and_ps(v, _mm256_cmp_ps(_mm256_maskload_ps(yp + p, tail), zero, _CMP_GT_OQ));
                    sum = _mm256_add_ps(sum, v);
                    for (int k = 0; k < 9; k++) acc[k] = _mm256_fmadd_ps(v, _mm256_maskload_ps(src + t.off[k] + p, tail), acc[k]);
                }
                for (int k = 0; k < 9; k++) sums[j][k] = acc[k];
                sums[j][9] = sum;
            }
        }
        for (int64_t j = 0; j < count; j++) {
            for (int k = 0; k < 9; k++) dw[(q0 + j) * 9 + k] += hsum8(sums[j][k]);
            if (db) db[q0 + j] += hsum8(sums[j][9]);
        }
    }
}
#endif
