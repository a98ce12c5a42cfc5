/* window_pool_avx2.c: inference's per-window convolution + 2x2 max pooling (window_pool.c) with AVX2 tiles, for the
 * GEMM's shapes; bit for bit the AVX2 GEMM then the pooling. */
#include "window_pool.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* V vectors of 8 output channels times 4W pixels, 8 accumulators (V = 2, W = 1 or V = 1, W = 2: 2 FMA pipes x
 * 4-cycle latency), the same sums in the same order as the AVX2 GEMM, whose K blocks (fclf_gemm_kstep) they
 * follow; part and sum hold [4W][V][8]. Packed weights as for AVX-512. */
static inline __attribute__((always_inline, target("avx2,fma"))) void tile_taps8(
    const int V, const int W, float *restrict part, float *restrict sum, const float *restrict xb, int64_t wrow,
    const int32_t *restrict off, const float *restrict wp, int64_t ocp, int64_t o0, int64_t c0, int64_t c1, int fresh,
    int finish, int first_block) {
    __m256 acc[4 * 2][2];
    int64_t px[4 * 2];
    for (int w = 0; w < W; w++)
        for (int d = 0; d < 4; d++) px[4 * w + d] = (d >> 1) * wrow + 2 * w + (d & 1);
    for (int j = 0; j < 4 * W; j++)
        for (int v = 0; v < V; v++) acc[j][v] = fresh ? _mm256_setzero_ps() : _mm256_load_ps(part + (j * V + v) * 8);
    for (int64_t k = c0; k < c1; k++) {
        const float *xk = xb + off[k], *wk = wp + k * ocp + o0;
        __m256 wv[2];
        for (int v = 0; v < V; v++) wv[v] = _mm256_loadu_ps(wk + 8 * v);
        for (int j = 0; j < 4 * W; j++) {
            const __m256 xv = _mm256_broadcast_ss(xk + px[j]);
            for (int v = 0; v < V; v++) acc[j][v] = _mm256_fmadd_ps(wv[v], xv, acc[j][v]);
        }
    }
    for (int j = 0; j < 4 * W; j++)
        for (int v = 0; v < V; v++) {
            float *at = (finish ? sum : part) + (j * V + v) * 8;
            _mm256_store_ps(at, finish && !first_block ? _mm256_add_ps(acc[j][v], _mm256_load_ps(at)) : acc[j][v]);
        }
}

/* + bias, ReLU, then each window's 2x2 maximum with the pooling's comparisons in its order (a later corner wins
 * if greater; NaN never does), stored at y + o*Q + at + w for the channels below oc. */
static inline __attribute__((always_inline, target("avx2"))) void tile_store8(
    const int V, const int W, float *restrict y, const float *restrict sum, const float *restrict b, int relu,
    int64_t o0, int64_t oc, int64_t Q, int64_t at) {
    const __m256 zero = _mm256_setzero_ps();
    for (int v = 0; v < V; v++) {
        const int64_t o = o0 + 8 * v, lanes = oc - o < 8 ? oc - o : 8;
        if (lanes <= 0) break;
        const __m256i keep = fclf_lanes8(lanes);
        const __m256 bv = b ? _mm256_maskload_ps(b + o, keep) : zero;
        for (int w = 0; w < W; w++) {
            __m256 m = zero;
            for (int d = 0; d < 4; d++) {
                __m256 t = _mm256_load_ps(sum + ((4 * w + d) * V + v) * 8);
                if (b) t = _mm256_add_ps(t, bv);
                if (relu) t = _mm256_max_ps(t, zero); /* t > 0 ? t : 0, NaN to 0, as the micro-kernel */
                m = d == 0 ? t : _mm256_blendv_ps(m, t, _mm256_cmp_ps(t, m, _CMP_GT_OQ));
            }
            float lane[8] __attribute__((aligned(32)));
            _mm256_store_ps(lane, m);
            for (int64_t l = 0; l < lanes; l++) y[(o + l) * Q + at + w] = lane[l];
        }
    }
}

/* V vectors of 8 channels from o0 over the windows of pooled rows [py0, py1) of one image, as window_group. */
static inline __attribute__((always_inline, target("avx2,fma"))) void window_group8(
    const int V, float *restrict y, const float *restrict xp, int64_t wrow, const int32_t *restrict off,
    const float *restrict wp, int64_t ocp, int64_t o0, int64_t K, int64_t kstep, const float *restrict b, int relu,
    fclf_conv2d_shape s, int64_t py0, int64_t py1) {
    const int64_t ph = s.oh / 2, pw = s.ow / 2, Q = ph * pw, per = 4 * V * 8;
    const int W = V == 1 ? 2 : 1;
    const int64_t group = FCLF_WINDOW_GROUP_FLOATS / per, chunk = FCLF_WINDOW_CHUNK_FLOATS / (8 * V);
    float part[FCLF_WINDOW_GROUP_FLOATS] __attribute__((aligned(32))), sum[FCLF_WINDOW_GROUP_FLOATS] __attribute__((aligned(32)));
    (void)ph;
    for (int64_t py = py0; py < py1; py++) {
        const float *row = xp + 2 * py * wrow;
        for (int64_t g0 = 0; g0 < pw; g0 += group) {
            const int64_t g1 = g0 + group < pw ? g0 + group : pw, wide_end = g0 + (g1 - g0) / W * W;
            for (int64_t k0 = 0; k0 < K; k0 += kstep) {
                const int64_t k1 = k0 + kstep < K ? k0 + kstep : K;
                for (int64_t c0 = k0; c0 < k1; c0 += chunk) {
                    const int64_t c1 = c0 + chunk < k1 ? c0 + chunk : k1;
                    const int fresh = c0 == k0, finish = c1 == k1, first = k0 == 0;
                    for (int64_t q = g0; q < wide_end; q += W)
                        tile_taps8(V, W, part + (q - g0) * per, sum + (q - g0) * per, row + 2 * q, wrow, off, wp, ocp, o0,
                                   c0, c1, fresh, finish, first);
                    for (int64_t q = wide_end; q < g1; q++)
                        tile_taps8(V, 1, part + (q - g0) * per, sum + (q - g0) * per, row + 2 * q, wrow, off, wp, ocp, o0,
                                   c0, c1, fresh, finish, first);
                }
            }
            for (int64_t q = g0; q < wide_end; q += W) tile_store8(V, W, y, sum + (q - g0) * per, b, relu, o0, s.oc, Q, py * pw + q);
            for (int64_t q = wide_end; q < g1; q++) tile_store8(V, 1, y, sum + (q - g0) * per, b, relu, o0, s.oc, Q, py * pw + q);
        }
    }
}

/* Pooled rows [py0, py1) of one image for the 16-channel groups [v0, v1) of the packed weights: each group is two
 * AVX2 vectors, one where the channels end first. */
__attribute__((target("avx2,fma"))) void fclf_window_span__avx2(float *restrict y, const float *restrict xp,
                                                                int64_t wrow, const int32_t *restrict off,
                                                                const float *restrict wp, const float *restrict b,
                                                                int relu, int64_t kstep, fclf_conv2d_shape s,
                                                                int64_t v0, int64_t v1, int64_t py0, int64_t py1) {
    const int64_t K = s.c * s.kh * s.kw, ocp = fclf_window_channels_padded(s);
    for (int64_t v = v0; v < v1; v++) {
        if (s.oc - 16 * v > 8)
            window_group8(2, y, xp, wrow, off, wp, ocp, 16 * v, K, kstep, b, relu, s, py0, py1);
        else
            window_group8(1, y, xp, wrow, off, wp, ocp, 16 * v, K, kstep, b, relu, s, py0, py1);
    }
}

/* One input channel, 3x3 (conv1), with output pixels in the lanes, as the AVX-512 path (window_pool.c, k9_rows):
 * 2 channels x 2 output rows x 16 columns of one pooled row in 8 registers, one input load per row, column
 * vector and tap shared by both channels. The columns' pairs are split in registers (a shuffle within 128-bit
 * lanes, then a 64-bit permute), pooled, and stored as 8 pooled values of a row. Each output is the one-pass
 * kernel's bias + 9 FMAs in tap order, then ReLU as max(r, 0) and the comparisons in the pooling's order, so
 * the bits do not change. fclf-profile infer cnn 1: conv1 took 18 us per image in the two passes, against
 * 6-10 us for AVX-512's window kernel. */
static inline __attribute__((always_inline, target("avx2,fma"))) void k9_rows8(
    const int G, const int masked, float *restrict y, const float *restrict xp, int64_t wrow,
    const float *restrict w, const float *restrict b, int relu, int64_t o0, int64_t py, int64_t cb, int64_t pw,
    int64_t Q) {
    const __m256 zero = _mm256_setzero_ps();
    const int64_t cols = 2 * pw - cb; /* output columns from cb on: with `masked`, lanes past them read nothing */
    const __m256i m[2] = {fclf_lanes8(cols), fclf_lanes8(cols - 8)};
    __m256 acc[2][2][2]; /* [channel][output row][column vector] */
    for (int g = 0; g < G; g++) {
        const __m256 bv = _mm256_set1_ps(b ? b[o0 + g] : 0.0f);
        for (int r = 0; r < 2; r++) acc[g][r][0] = acc[g][r][1] = bv;
    }
    for (int ki = 0; ki < 3; ki++)
        for (int kj = 0; kj < 3; kj++) {
            __m256 xv[2][2];
            for (int r = 0; r < 2; r++)
                for (int v = 0; v < 2; v++) {
                    const float *at = xp + (2 * py + r + ki) * wrow + cb + 8 * v + kj;
                    xv[r][v] = masked ? _mm256_maskload_ps(at, m[v]) : _mm256_loadu_ps(at);
                }
            for (int g = 0; g < G; g++) {
                const __m256 wv = _mm256_set1_ps(w[(o0 + g) * 9 + ki * 3 + kj]);
                for (int r = 0; r < 2; r++)
                    for (int v = 0; v < 2; v++) acc[g][r][v] = _mm256_fmadd_ps(wv, xv[r][v], acc[g][r][v]);
            }
        }
    const int64_t n = pw - cb / 2 < 8 ? pw - cb / 2 : 8; /* pooled values of this row from cb / 2 on */
    for (int g = 0; g < G; g++) {
        __m256 q[4]; /* top left, top right, bottom left, bottom right of 8 windows */
        for (int r = 0; r < 2; r++) {
            const __m256 a = relu ? _mm256_max_ps(acc[g][r][0], zero) : acc[g][r][0];
            const __m256 c = relu ? _mm256_max_ps(acc[g][r][1], zero) : acc[g][r][1];
            /* even columns a0 a2 c0 c2 | a4 a6 c4 c6, then 64-bit pieces 0 2 1 3: a0 a2 a4 a6 c0 c2 c4 c6 */
            q[2 * r] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, c, 0x88)), 0xD8));
            q[2 * r + 1] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, c, 0xDD)), 0xD8));
        }
        __m256 mx = q[0];
        for (int d = 1; d < 4; d++) mx = _mm256_blendv_ps(mx, q[d], _mm256_cmp_ps(q[d], mx, _CMP_GT_OQ));
        float *dst = y + (o0 + g) * Q + py * pw + cb / 2;
        if (n == 8) {
            _mm256_storeu_ps(dst, mx);
        } else {
            float lane[8] __attribute__((aligned(32)));
            _mm256_store_ps(lane, mx);
            for (int64_t l = 0; l < n; l++) dst[l] = lane[l];
        }
    }
}

/* y [oc, Q] of one image from its input plane xp (rows wrow apart, zero border included where padded). */
__attribute__((target("avx2,fma"))) void fclf_k9_image__avx2(float *restrict y, const float *restrict xp, int64_t wrow,
                                                             const float *restrict w, const float *restrict b, int relu,
                                                             fclf_conv2d_shape s) {
    const int64_t ph = s.oh / 2, pw = s.ow / 2, Q = ph * pw;
    for (int64_t py = 0; py < ph; py++)
        for (int64_t cb0 = 0; cb0 < 2 * pw; cb0 += 16) {
            /* A short last block moves left onto the one before it, so that all its loads are whole (VMASKMOVPS
             * made this kernel half as fast on a Zen 4); the columns it repeats get the same values again. */
            const int64_t cb = cb0 + 16 > 2 * pw && 2 * pw >= 16 ? 2 * pw - 16 : cb0;
            int64_t o = 0;
            if (2 * pw - cb >= 16) {
                for (; o + 2 <= s.oc; o += 2) k9_rows8(2, 0, y, xp, wrow, w, b, relu, o, py, cb, pw, Q);
                if (o < s.oc) k9_rows8(1, 0, y, xp, wrow, w, b, relu, o, py, cb, pw, Q);
            } else {
                for (; o + 2 <= s.oc; o += 2) k9_rows8(2, 1, y, xp, wrow, w, b, relu, o, py, cb, pw, Q);
                if (o < s.oc) k9_rows8(1, 1, y, xp, wrow, w, b, relu, o, py, cb, pw, Q);
            }
        }
}
#endif
