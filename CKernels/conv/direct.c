/* direct.c: convolutions with few taps (K = c*kh*kw < FCLF_CONV_SMALL_K, e.g. conv1: one channel, 3x3), as
 * row-AXPYs and dot products over an explicit im2col matrix instead of GEMMs, whose tiles K would pad. */
#include "direct.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { SMALL_K = FCLF_CONV_SMALL_K, CHUNK = 512 };

fclf_conv_taps fclf_conv_taps_col(fclf_conv2d_shape s) {
    const int64_t P = s.oh * s.ow;
    fclf_conv_taps t = {{0}, s.ow, P, P};
    for (int64_t k = 0; k < s.c * s.kh * s.kw && k < SMALL_K; k++) t.off[k] = k * s.n * P;
    return t;
}

fclf_conv_taps fclf_conv_taps_x(fclf_conv2d_shape s) {
    const int64_t fh = fclf_conv_framed_rows(s), fw = fclf_conv_framed_cols(s);
    fclf_conv_taps t = {{0}, fw, (s.oh - 1) * fw + s.ow, s.oh * fw};
    for (int64_t k = 0; k < s.c * s.kh * s.kw && k < SMALL_K; k++) /* im2col's row order: channel, row, column */
        t.off[k] = (k / (s.kh * s.kw) * fh + k / s.kw % s.kh) * fw + k % s.kw;
    return t;
}

fclf_conv_tap_source fclf_conv_tap_source_of(const float *col, const float *x, float *frame, fclf_conv2d_shape s) {
    const fclf_conv_tap_source src = {x ? fclf_conv_taps_x(s) : fclf_conv_taps_col(s), col, x, frame};
    return src;
}

const float *fclf_conv_tap_image(const fclf_conv_tap_source *src, int64_t i, fclf_conv2d_shape s) {
    if (!src->x) return src->col + i * s.oh * s.ow;
    if (fclf_conv_x_is_framed(s)) return src->x + i * s.c * s.h * s.w;
    fclf_conv_frame_planes(src->frame, src->x + i * s.c * s.h * s.w, 0, s.c, s);
    return src->frame;
}

/* One output plane of the small-K forward: dst = act(bias + sum_k wk[k] * src[off[k] ...]). For K = 9 (a 3x3
 * kernel on one channel, conv1) the k sum runs in registers, vectorised over pixels, with one store per
 * pixel; other K use K passes of AXPY over dst. */
static inline __attribute__((always_inline)) void plane_k9(float *restrict dst, const float *restrict src,
                                                           const int64_t *restrict off, const float *restrict wk,
                                                           float bias, int64_t len, int relu) {
    const float w0 = wk[0], w1 = wk[1], w2 = wk[2], w3 = wk[3], w4 = wk[4], w5 = wk[5], w6 = wk[6], w7 = wk[7], w8 = wk[8];
    const float *c0 = src + off[0], *c1 = src + off[1], *c2 = src + off[2], *c3 = src + off[3], *c4 = src + off[4];
    const float *c5 = src + off[5], *c6 = src + off[6], *c7 = src + off[7], *c8 = src + off[8];
    for (int64_t p = 0; p < len; p++) {
        float acc = bias;
        acc += w0 * c0[p];
        acc += w1 * c1[p];
        acc += w2 * c2[p];
        acc += w3 * c3[p];
        acc += w4 * c4[p];
        acc += w5 * c5[p];
        acc += w6 * c6[p];
        acc += w7 * c7[p];
        acc += w8 * c8[p];
        dst[p] = relu && !(acc > 0.0f) ? 0.0f : acc;
    }
}

FCLF_CLONES static void small_k_plane(float *restrict dst, const float *restrict src, const int64_t *restrict off,
                                      const float *restrict wk, float bias, int64_t K, int64_t len, int relu) {
    if (K == 9) {
        plane_k9(dst, src, off, wk, bias, len, relu);
        return;
    }
    for (int64_t p = 0; p < len; p++) dst[p] = bias;
    for (int64_t k = 0; k < K; k++) {
        const float *c = src + off[k];
        float wv = wk[k];
        for (int64_t p = 0; p < len; p++) dst[p] += wv * c[p];
    }
    if (relu)
        for (int64_t p = 0; p < len; p++) dst[p] = dst[p] > 0.0f ? dst[p] : 0.0f;
}

#if defined(__x86_64__)
/* conv1's shape (K = 9: a 3x3 kernel on one channel) with AVX-512. Its two passes are 12.5 MFLOP each per
 * batch of 32, and the portable loops above ran them at about 40 GFLOP/s on one core, a third of its peak:
 * each column row was reloaded per output channel, every product rounded before its add, and the weight
 * gradient reduced its lanes every chunk. Here two output channels share each load of the nine column rows,
 * products are fused into their sums (FMA), and the weight gradient keeps lane-wise sums over the whole
 * batch, reduced once. Rounding therefore differs from the portable path (both are checked against the
 * direct loops); it does not depend on the thread count. ReLU as max(acc, 0) equals acc > 0 ? acc : 0,
 * NaN included. */
/* y_i[o] = act(b[o] + sum_k w[o][k] tap_k) for one image: plane o at y + o t->plane. */
__attribute__((target("avx512f"))) static void k9_forward_image__avx512f(float *restrict y, const float *restrict src,
                                                                         const fclf_conv_taps *t,
                                                                         const float *restrict w,
                                                                         const float *restrict b, int64_t oc,
                                                                         int relu) {
    const __m512 zero = _mm512_setzero_ps();
    const int64_t P = t->len;
    const float *c[9];
    for (int k = 0; k < 9; k++) c[k] = src + t->off[k];
    for (int64_t o = 0; o < oc; o += 2) {
        const int64_t o2 = o + 1 < oc ? o + 1 : o; /* an odd last channel is computed twice, stored once */
        __m512 wa[9], wb[9];
        for (int k = 0; k < 9; k++) {
            wa[k] = _mm512_set1_ps(w[o * 9 + k]);
            wb[k] = _mm512_set1_ps(w[o2 * 9 + k]);
        }
        const __m512 ba = _mm512_set1_ps(b ? b[o] : 0.0f), bb = _mm512_set1_ps(b ? b[o2] : 0.0f);
        float *ya = y + o * t->plane, *yb = y + o2 * t->plane;
        for (int64_t p = 0; p < P; p += 16) {
            const __mmask16 m = fclf_lanes16(P - p);
            __m512 a = ba, d = bb;
            for (int k = 0; k < 9; k++) {
                const __m512 v = _mm512_maskz_loadu_ps(m, c[k] + p);
                a = _mm512_fmadd_ps(wa[k], v, a);
                d = _mm512_fmadd_ps(wb[k], v, d);
            }
            if (relu) {
                a = _mm512_max_ps(a, zero);
                d = _mm512_max_ps(d, zero);
            }
            if (m == 0xFFFF) {
                _mm512_storeu_ps(ya + p, a);
                _mm512_storeu_ps(yb + p, d);
            } else {
                _mm512_mask_storeu_ps(ya + p, m, a);
                _mm512_mask_storeu_ps(yb + p, m, d);
            }
        }
    }
}

/* Channel pairs whose lane-wise sums stay in memory (L1) while an image's nine column rows are used by all of
 * them: 8 pairs x 20 vectors is 10 KB. */
enum { K9_GRAD_PAIRS = 8 };

/* dW[o][k] += sum_i,p dz_i[o][p] tap_k,i[p] and db[o] += sum dz for channels [o0, o1), dz = dy masked by
 * ReLU (y > 0) when relu. Images outer, channel pairs inner: pair by pair over the whole batch, every pair
 * read all nine column rows of every image again (conv1 at b128: 3.1 MB, from L3, 16 times per thread, and
 * perf put 6% of a training step here). Each pair's sums go through memory between images, which rounds
 * nothing: every lane still adds its products in image and pixel order, so the bits are the same. */
__attribute__((target("avx512f"))) static void k9_grad_rows__avx512f(float *restrict dw, float *restrict db,
                                                                     const fclf_conv_grad_source *g,
                                                                     const fclf_conv_tap_source *taps, int relu,
                                                                     int64_t o0, int64_t o1, fclf_conv2d_shape s) {
    const fclf_conv_taps t = taps->t;
    const int64_t P = s.oh * s.ow, len = t.len;
    const __m512 zero = _mm512_setzero_ps();
    /* per pair: acc_a[9], acc_b[9], sum_a, sum_b */
    __m512 sums[K9_GRAD_PAIRS][20];
    for (int64_t q0 = o0; q0 < o1; q0 += 2 * K9_GRAD_PAIRS) {
        const int64_t pairs = fclf_min64(K9_GRAD_PAIRS, (o1 - q0 + 1) / 2);
        for (int64_t j = 0; j < pairs; j++)
            for (int v = 0; v < 20; v++) sums[j][v] = zero;
        for (int64_t i = 0; i < s.n; i++) {
            const float *src = fclf_conv_tap_image(taps, i, s);
            for (int64_t j = 0; j < pairs; j++) {
                const int64_t o = q0 + 2 * j, o2 = o + 1 < o1 ? o + 1 : o;
                const float *ga = fclf_conv_grad_plane(FCLF_ISA_AVX512F, g, &t, i, o, 0, s);
                const float *gb = fclf_conv_grad_plane(FCLF_ISA_AVX512F, g, &t, i, o2, 1, s);
                const float *ya = relu ? g->y + (i * s.oc + o) * P : NULL, *yb = relu ? g->y + (i * s.oc + o2) * P : NULL;
                __m512 acc_a[9], acc_b[9], sum_a = sums[j][18], sum_b = sums[j][19];
                for (int k = 0; k < 9; k++) {
                    acc_a[k] = sums[j][k];
                    acc_b[k] = sums[j][9 + k];
                }
                for (int64_t p = 0; p < len; p += 16) {
                    const __mmask16 m = fclf_lanes16(len - p);
                    __m512 va = _mm512_maskz_loadu_ps(m, ga + p), vb = _mm512_maskz_loadu_ps(m, gb + p);
                    if (relu) {
                        va = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m, ya + p), zero, _CMP_GT_OQ), va);
                        vb = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m, yb + p), zero, _CMP_GT_OQ), vb);
                    }
                    sum_a = _mm512_add_ps(sum_a, va);
                    sum_b = _mm512_add_ps(sum_b, vb);
                    for (int k = 0; k < 9; k++) {
                        const __m512 v = _mm512_maskz_loadu_ps(m, src + t.off[k] + p);
                        acc_a[k] = _mm512_fmadd_ps(va, v, acc_a[k]);
                        acc_b[k] = _mm512_fmadd_ps(vb, v, acc_b[k]);
                    }
                }
                for (int k = 0; k < 9; k++) {
                    sums[j][k] = acc_a[k];
                    sums[j][9 + k] = acc_b[k];
                }
                sums[j][18] = sum_a;
                sums[j][19] = sum_b;
            }
        }
        for (int64_t j = 0; j < pairs; j++) {
            const int64_t o = q0 + 2 * j, o2 = o + 1 < o1 ? o + 1 : o;
            for (int k = 0; k < 9; k++) dw[o * 9 + k] += _mm512_reduce_add_ps(sums[j][k]);
            if (db) db[o] += _mm512_reduce_add_ps(sums[j][18]);
            if (o2 != o) {
                for (int k = 0; k < 9; k++) dw[o2 * 9 + k] += _mm512_reduce_add_ps(sums[j][9 + k]);
                if (db) db[o2] += _mm512_reduce_add_ps(sums[j][19]);
            }
        }
    }
}

#endif

void fclf_conv_direct_image(int isa, float *restrict y, const float *restrict src, const fclf_conv_taps *t,
                            const float *restrict w, const float *restrict b, int64_t oc, int64_t K, int relu) {
#if defined(__x86_64__)
    if (K == 9 && isa == FCLF_ISA_AVX512F) {
        k9_forward_image__avx512f(y, src, t, w, b, oc, relu);
        return;
    }
    if (K == 9 && isa == FCLF_ISA_AVX2) {
        fclf_k9_forward_image__avx2(y, src, t, w, b, oc, relu);
        return;
    }
#endif
    (void)isa;
    /* y[o] = b[o] + sum_k w[o][k] tap_k: the image's K tap rows stay in L1 across all o. */
    for (int64_t o = 0; o < oc; o++) small_k_plane(y + o * t->plane, src, t->off, w + o * K, b ? b[o] : 0.0f, K, t->len, relu);
}

void fclf_conv_direct_forward(int isa, float *y, float *col, const float *x, const float *w, const float *b, int relu,
                              fclf_conv2d_shape s) {
    const int64_t K = s.c * s.kh * s.kw, P = s.oh * s.ow, NP = s.n * P;
    const fclf_conv_taps t = fclf_conv_taps_col(s);
    FCLF_PARALLEL_IF(fclf_conv_big(s),
        for (FCLF_STATIC_RANGE(i, s.n)) fclf_im2col_image(col + i * P, NP, x + i * s.c * s.h * s.w, s););
    FCLF_PARALLEL_IF(fclf_conv_big(s),
        for (FCLF_STATIC_RANGE(i, s.n))
            fclf_conv_direct_image(isa, y + i * s.oc * P, col + i * P, &t, w, b, s.oc, K, relu););
}

/* Weight and bias gradients for K < SMALL_K as dot products: dW[o][k] += sum_i,p dz_i[o][p] tap_k,i[p].
 * dz (dy masked by ReLU) is formed a chunk at a time on the stack and dotted with all K tap rows while
 * it is in L1, instead of a GEMM over a transposed copy (fclf-profile: conv1's weight gradient took
 * 544 us as a GEMM on 2 threads, its N = 9 padded to a 32-wide tile). Each thread owns whole rows of
 * dW; every sum runs in image and chunk order, so the thread count does not change the result. */
/* Sums over one chunk of pixels for the small-K weight gradient: part[k] += dz . tap_k and *partb += sum dz,
 * with dz = dy masked by ReLU. K = 9 gets nine accumulators and one pass over the chunk; other K form dz on the
 * stack and take K dot products.
 * Every sum runs in GRAD_LANES fixed lanes (lane l takes the chunk's pixels p with p % GRAD_LANES == l, in order), the
 * lanes added in a fixed order at the end. These loops run in target_clones copies (FCLF_CLONES), and with an
 * `omp simd` reduction each copy summed in its own vector width's order: the scalar variant trained other bits on
 * a CPU without AVX2 (QEMU's Nehalem, scripts/emulated-cpu.sh) than under FCLF_ISA=scalar here. Sixteen lanes
 * (conv1's weight gradient at batch 32 through the portable variant, one thread, Zen 4, a C harness; the baseline
 * copy measured in a build without clones): the `omp simd` loops took 338-417 us in the AVX-512 copy and 2,190 us
 * in the baseline one; 16 lanes 552-558 and 825-900 us; 4 lanes 2,160-2,570 and 2,980-3,000 us. The baseline copy
 * is what the CPUs this variant is for run. */
enum { GRAD_LANES = 16 };
static inline float lane_total(const float *a) { return fclf_fold_lanes(a, GRAD_LANES); }

static inline __attribute__((always_inline)) void grad_chunk_k9(float *restrict part, float *restrict partb,
                                                                const float *restrict g, const float *restrict act,
                                                                const float *restrict c, const int64_t *restrict off,
                                                                int64_t len, int relu) {
    float a[9][GRAD_LANES] = {{0}}, b[GRAD_LANES] = {0};
    const float *ck[9];
    for (int k = 0; k < 9; k++) ck[k] = c + off[k];
    /* one pixel into lane l; g and act read unconditionally so that the select vectorises */
#define K9_PIXEL(p, l)                                                                                              \
    do {                                                                                                            \
        const float gv = g[p], av = act[p];                                                                         \
        const float v = relu && !(av > 0.0f) ? 0.0f : gv;                                                           \
        b[l] += v;                                                                                                  \
        for (int k = 0; k < 9; k++) a[k][l] += v * ck[k][p];                                                        \
    } while (0)
    int64_t p = 0;
    for (; p + GRAD_LANES <= len; p += GRAD_LANES)
        for (int l = 0; l < GRAD_LANES; l++) K9_PIXEL(p + l, l);
    for (int l = 0; p + l < len; l++) K9_PIXEL(p + l, l);
#undef K9_PIXEL
    for (int k = 0; k < 9; k++) part[k] += lane_total(a[k]);
    *partb += lane_total(b);
}

/* sum over p < len of x[p] * y[p] (y NULL: of x[p]) in GRAD_LANES lanes, as above */
static inline __attribute__((always_inline)) float lanes_dot(const float *restrict x, const float *restrict y,
                                                             int64_t len) {
    float a[GRAD_LANES] = {0};
    int64_t p = 0;
    for (; p + GRAD_LANES <= len; p += GRAD_LANES)
        for (int l = 0; l < GRAD_LANES; l++) a[l] += y ? x[p + l] * y[p + l] : x[p + l];
    for (int l = 0; p + l < len; l++) a[l] += y ? x[p + l] * y[p + l] : x[p + l];
    return lane_total(a);
}

/* Output channels [o0, o1) of the small-K weight gradient. Images run outermost so that image i's K tap rows
 * (9 x 676 floats for conv1) stay in L1 while its channels' dy and y planes, adjacent in memory, stream past
 * once in order; channel-outer order re-read all of col per channel from L2/L3 (perf: 9% of a batch-32 step,
 * about 30 GFLOP/s). Each (o, k) sum still runs in image and chunk order, so the result is the same for any
 * grouping or thread count. */
enum { GRAD_GROUP = 32 };
FCLF_CLONES static void small_k_grad_rows(int isa, float *restrict dw, float *restrict db, const fclf_conv_grad_source *gs,
                                          const fclf_conv_tap_source *taps, int relu, int64_t o0, int64_t o1,
                                          fclf_conv2d_shape s) {
    const fclf_conv_taps t = taps->t;
    const int64_t K = s.c * s.kh * s.kw, P = s.oh * s.ow;
    float accw[GRAD_GROUP][SMALL_K], accb[GRAD_GROUP];
    float dz[CHUNK] __attribute__((aligned(64)));
    for (int64_t g0 = o0; g0 < o1; g0 += GRAD_GROUP) {
        const int64_t g1 = fclf_min64(o1, g0 + GRAD_GROUP);
        memset(accw, 0, sizeof accw);
        memset(accb, 0, sizeof accb);
        for (int64_t i = 0; i < s.n; i++) {
            const float *src = fclf_conv_tap_image(taps, i, s);
            for (int64_t o = g0; o < g1; o++) {
                const float *plane = fclf_conv_grad_plane(isa, gs, &t, i, o, 0, s);
                const float *act_plane = relu ? gs->y + (i * s.oc + o) * P : NULL;
                for (int64_t p0 = 0; p0 < t.len; p0 += CHUNK) {
                    const int64_t len = fclf_min64(CHUNK, t.len - p0);
                    const float *c = src + p0;
                    const float *g = plane + p0, *act = relu ? act_plane + p0 : g;
                    float part[SMALL_K] = {0}, partb = 0.0f;
                    /* relu as a constant in each copy: with it a run-time flag, the compiler read act under a mask
                     * that was all zero without ReLU, and perf put 77% of this function on the instruction after
                     * that load (Zen 4; conv1's backward 1.35 ms at batch 32, 0.31-0.37 ms with the copies) */
                    if (K == 9 && relu) {
                        grad_chunk_k9(part, &partb, g, act, c, t.off, len, 1);
                    } else if (K == 9) {
                        grad_chunk_k9(part, &partb, g, act, c, t.off, len, 0);
                    } else {
                        for (int64_t p = 0; p < len; p++) {
                            const float gv = g[p], av = act[p];
                            dz[p] = relu && !(av > 0.0f) ? 0.0f : gv;
                        }
                        partb = lanes_dot(dz, NULL, len);
                        for (int64_t k = 0; k < K; k++) part[k] = lanes_dot(dz, c + t.off[k], len);
                    }
                    accb[o - g0] += partb;
                    for (int64_t k = 0; k < K; k++) accw[o - g0][k] += part[k];
                }
            }
        }
        for (int64_t o = g0; o < g1; o++) {
            for (int64_t k = 0; k < K; k++) dw[o * K + k] += accw[o - g0][k];
            if (db) db[o] += accb[o - g0];
        }
    }
}

void fclf_conv_direct_weight_grad(int isa, float *restrict dw, float *restrict db, const fclf_conv_grad_source *g,
                                  const float *col, const float *x, int relu, fclf_conv2d_shape s) {
    FCLF_PARALLEL_IF(fclf_conv_big(s), {
        int64_t o0 = fclf_partition_bound(s.oc, 0), o1 = fclf_partition_bound(s.oc, 1);
        if (o1 > o0) {
            float planes[2 * FCLF_CONV_FUSED_PLANE_MAX] __attribute__((aligned(64)));
            float frame[FCLF_CONV_FRAME_MAX] __attribute__((aligned(64)));
            fclf_conv_grad_source mine = *g;
            mine.planes = planes;
            const fclf_conv_tap_source taps = fclf_conv_tap_source_of(col, x, frame, s);
#if defined(__x86_64__)
            if (s.c * s.kh * s.kw == 9 && isa == FCLF_ISA_AVX512F)
                k9_grad_rows__avx512f(dw, db, &mine, &taps, relu, o0, o1, s);
            else if (s.c * s.kh * s.kw == 9 && isa == FCLF_ISA_AVX2)
                fclf_k9_grad_rows__avx2(dw, db, &mine, &taps, relu, o0, o1, s);
            else
#endif
                small_k_grad_rows(isa, dw, db, &mine, &taps, relu, o0, o1, s);
        }
    });
}

