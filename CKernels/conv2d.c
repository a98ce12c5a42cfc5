/* conv2d.c: 2-D convolution, stride 1, zero padding; forward and backward side by side.
 *
 * Method: im2col over the whole batch + three batch-wide GEMMs. With P = oh*ow and K = c*kh*kw:
 *   forward          Y   [oc, n*P] = W [oc, K] . col [K, n*P]          (then to NCHW, + bias)
 *   weight gradient  dW  [oc, K]  += dY [oc, n*P] . col^T [n*P, K]
 *   input gradient   dcol [K, n*P] = W^T [K, oc] . dY [oc, n*P]        (then col2im)
 * The seed CNN's cost is conv2 (M=64, K=288, n*P=3872 at batch 32: 87% of its FLOPs). A first version
 * ran one small GEMM per image and repacked the weights for each; fclf-profile measured conv2 forward
 * at 2.5 ms per batch on 1 thread (57 GFLOP/s). One GEMM per pass packs W once, gives the micro-kernel
 * long panels, and needs no per-image partial sums for dW: the K loop over n*P is blocked the same way
 * for any thread count, so results do not depend on it. A direct convolution would re-read every input
 * pixel kh*kw times from an unpacked layout; im2col's copy is small next to the product. */
#include "fclf_internal.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

fclf_conv2d_shape fclf_conv2d_make_shape(int64_t n, int64_t c, int64_t h, int64_t w, int64_t oc, int64_t kh,
                                         int64_t kw, int same) {
    fclf_conv2d_shape s = {n, c, h, w, oc, kh, kw, 0, 0, h - kh + 1, w - kw + 1};
    if (same) {
        s.pad_t = (kh - 1) / 2;
        s.pad_l = (kw - 1) / 2;
        s.oh = h;
        s.ow = w;
    }
    return s;
}

int64_t fclf_conv2d_col_size(fclf_conv2d_shape s) { return s.c * s.kh * s.kw * s.n * s.oh * s.ow; }
int64_t fclf_conv2d_tmp_size(fclf_conv2d_shape s) { return s.oc * s.n * s.oh * s.ow; }
int64_t fclf_conv2d_dcol_size(fclf_conv2d_shape s) {
    int64_t col = fclf_conv2d_col_size(s), dwt = s.c * s.kh * s.kw * s.oc;
    return col > dwt ? col : dwt;
}

/* Image i's columns of col [K, ld]: col[(ci,ki,kj)][i*P + oy*ow + ox] = x_i[ci][oy+ki-pad_t][ox+kj-pad_l]
 * or 0 outside the image. */
static void im2col(float *restrict col, int64_t ld, const float *restrict x, fclf_conv2d_shape s) {
    for (int64_t ci = 0; ci < s.c; ci++)
        for (int64_t ki = 0; ki < s.kh; ki++)
            for (int64_t kj = 0; kj < s.kw; kj++) {
                float *row = col + ((ci * s.kh + ki) * s.kw + kj) * ld;
                const float *plane = x + ci * s.h * s.w;
                /* Output columns whose input column is inside the image: [ox0, ox1). */
                int64_t ox0 = s.pad_l - kj > 0 ? s.pad_l - kj : 0;
                int64_t ox1 = s.w + s.pad_l - kj < s.ow ? s.w + s.pad_l - kj : s.ow;
                if (ox1 < ox0) ox1 = ox0;
                for (int64_t oy = 0; oy < s.oh; oy++) {
                    int64_t iy = oy + ki - s.pad_t;
                    float *r = row + oy * s.ow;
                    if (iy < 0 || iy >= s.h) {
                        memset(r, 0, (size_t)s.ow * sizeof(float));
                        continue;
                    }
                    const float *src = plane + iy * s.w + kj - s.pad_l;
                    /* A loop, not memcpy: rows are short (11 floats in conv2) and a call per row cost
                     * more than the copy (fclf-profile: conv2 forward 1.27 ms -> see README). */
                    for (int64_t ox = 0; ox < ox0; ox++) r[ox] = 0.0f;
                    for (int64_t ox = ox0; ox < ox1; ox++) r[ox] = src[ox];
                    for (int64_t ox = ox1; ox < s.ow; ox++) r[ox] = 0.0f;
                }
            }
}

/* The adjoint of im2col for image i: dx_i = the sum of the dcol entries im2col copied from each pixel, added
 * in (tap, output row) order. */
static void col2im(float *restrict dx, const float *restrict dcol, int64_t ld, fclf_conv2d_shape s) {
    memset(dx, 0, (size_t)(s.c * s.h * s.w) * sizeof(float));
    for (int64_t ci = 0; ci < s.c; ci++)
        for (int64_t ki = 0; ki < s.kh; ki++)
            for (int64_t kj = 0; kj < s.kw; kj++) {
                const float *row = dcol + ((ci * s.kh + ki) * s.kw + kj) * ld;
                float *plane = dx + ci * s.h * s.w;
                int64_t ox0 = s.pad_l - kj > 0 ? s.pad_l - kj : 0;
                int64_t ox1 = s.w + s.pad_l - kj < s.ow ? s.w + s.pad_l - kj : s.ow;
                for (int64_t oy = 0; oy < s.oh; oy++) {
                    int64_t iy = oy + ki - s.pad_t;
                    if (iy < 0 || iy >= s.h) continue;
                    const float *r = row + oy * s.ow;
                    float *dst = plane + iy * s.w + kj - s.pad_l;
                    for (int64_t ox = ox0; ox < ox1; ox++) dst[ox] += r[ox];
                }
            }
}

#if defined(__x86_64__)
/* The same sums for output rows of at most 16 pixels (conv2's are 11, too short for the compiler's vector
 * loop: the scalar adds took about 5% of a batch-32 step). Each plane is accumulated in an L1 buffer whose
 * rows are padded to ACC_STRIDE, so one row of a tap is a zero-masked load and a full-width add; lanes past
 * the row add exact zeros, which leaves every sum (started at +0) bit for bit as above. Masked stores to dx
 * itself were slower than the scalar loop on Zen 4. */
enum { ACC_STRIDE = 32, ACC_ROWS = 64 };
static int col2im_fits_wide(fclf_conv2d_shape s) {
    return s.ow <= 16 && s.w <= 16 && s.kw <= 16 && s.h <= ACC_ROWS;
}

__attribute__((target("avx512f"))) static void col2im__avx512f(float *restrict dx, const float *restrict dcol,
                                                               int64_t ld, fclf_conv2d_shape s) {
    float acc[ACC_ROWS * ACC_STRIDE] __attribute__((aligned(64)));
    for (int64_t ci = 0; ci < s.c; ci++) {
        memset(acc, 0, (size_t)(s.h * ACC_STRIDE) * sizeof(float));
        for (int64_t ki = 0; ki < s.kh; ki++)
            for (int64_t kj = 0; kj < s.kw; kj++) {
                const float *row = dcol + ((ci * s.kh + ki) * s.kw + kj) * ld;
                int64_t ox0 = s.pad_l - kj > 0 ? s.pad_l - kj : 0;
                int64_t ox1 = s.w + s.pad_l - kj < s.ow ? s.w + s.pad_l - kj : s.ow;
                if (ox1 <= ox0) continue;
                const __mmask16 m = fclf_lanes16(ox1 - ox0);
                for (int64_t oy = 0; oy < s.oh; oy++) {
                    int64_t iy = oy + ki - s.pad_t;
                    if (iy < 0 || iy >= s.h) continue;
                    float *a = acc + iy * ACC_STRIDE + kj - s.pad_l + ox0;
                    __m512 r = _mm512_maskz_loadu_ps(m, row + oy * s.ow + ox0);
                    _mm512_storeu_ps(a, _mm512_add_ps(_mm512_loadu_ps(a), r));
                }
            }
        /* Rows are w <= 16 floats: one vector each, whose lanes past w are overwritten by the next row;
         * rows within 16 floats of the plane's end are masked so nothing past it is written (a memcpy call
         * per 13-float row showed up in perf). */
        float *plane = dx + ci * s.h * s.w;
        const __mmask16 row_mask = fclf_lanes16(s.w);
        for (int64_t iy = 0; iy < s.h; iy++) {
            const __m512 v = _mm512_loadu_ps(acc + iy * ACC_STRIDE);
            if (iy * s.w + 16 <= s.h * s.w)
                _mm512_storeu_ps(plane + iy * s.w, v);
            else
                _mm512_mask_storeu_ps(plane + iy * s.w, row_mask, v);
        }
    }
}
#endif

static void col2im_image(float *restrict dx, const float *restrict dcol, int64_t ld, fclf_conv2d_shape s, int wide) {
#if defined(__x86_64__)
    if (wide && col2im_fits_wide(s)) {
        col2im__avx512f(dx, dcol, ld, s);
        return;
    }
#endif
    (void)wide;
    col2im(dx, dcol, ld, s);
}

/* Element-wise passes over the batch get threads only when there is enough memory traffic to share. */
static int big(fclf_conv2d_shape s) { return (double)(s.n * s.c * s.kh * s.kw * s.oh * s.ow) >= 65536.0; }

/* Below this K a convolution runs as K row-AXPYs per output plane instead of a GEMM: conv1 (K = 9)
 * would pad K to the micro-kernel's tile and then move its 2.7 MB output through tmp once more. */
enum { SMALL_K = 16, CHUNK = 512 };
/* Largest output plane (oh*ow floats) of a convolution fused with its pooling: two planes live on the stack. */
enum { FUSED_PLANE_MAX = 2048 };
/* Bytes of dcol per product in the input gradient: half of Zen 4's 1 MB L2. */
#define DCOL_CHUNK_BYTES (512 * 1024)

/* One output plane of the small-K forward: dst = act(bias + sum_k wk[k] * col[k*ld ...]). For K = 9 (a 3x3
 * kernel on one channel, conv1) the k sum runs in registers, vectorised over pixels, with one store per
 * pixel; other K use K passes of AXPY over dst. */
static inline __attribute__((always_inline)) void plane_k9(float *restrict dst, const float *restrict col, int64_t ld,
                                                           const float *restrict wk, float bias, int64_t P, int relu) {
    const float w0 = wk[0], w1 = wk[1], w2 = wk[2], w3 = wk[3], w4 = wk[4], w5 = wk[5], w6 = wk[6], w7 = wk[7], w8 = wk[8];
    for (int64_t p = 0; p < P; p++) {
        float acc = bias;
        acc += w0 * col[p];
        acc += w1 * col[ld + p];
        acc += w2 * col[2 * ld + p];
        acc += w3 * col[3 * ld + p];
        acc += w4 * col[4 * ld + p];
        acc += w5 * col[5 * ld + p];
        acc += w6 * col[6 * ld + p];
        acc += w7 * col[7 * ld + p];
        acc += w8 * col[8 * ld + p];
        dst[p] = relu && !(acc > 0.0f) ? 0.0f : acc;
    }
}

FCLF_CLONES static void small_k_plane(float *restrict dst, const float *restrict col, int64_t ld,
                                      const float *restrict wk, float bias, int64_t K, int64_t P, int relu) {
    if (K == 9) {
        plane_k9(dst, col, ld, wk, bias, P, relu);
        return;
    }
    for (int64_t p = 0; p < P; p++) dst[p] = bias;
    for (int64_t k = 0; k < K; k++) {
        const float *c = col + k * ld;
        float wv = wk[k];
        for (int64_t p = 0; p < P; p++) dst[p] += wv * c[p];
    }
    if (relu)
        for (int64_t p = 0; p < P; p++) dst[p] = dst[p] > 0.0f ? dst[p] : 0.0f;
}

/* Where the small-K weight gradient reads dz_i[o]: dy (masked by ReLU on y when relu), or, for a convolution
 * fused with the 2x2 max pool after it, the pooled gradient routed back to the winners in a per-thread
 * plane (planes must hold 2 x oh*ow floats). The routed plane is what the separate pool's backward writes,
 * so the sums are the same. */
typedef struct {
    const float *dy, *y;                       /* unpooled: dy [n, oc, oh*ow], y for the ReLU mask */
    const float *pooled_dy, *pooled_y;         /* fused: [n, oc, (oh/2)*(ow/2)]; pooled_y may be NULL */
    const int32_t *argmax;
    float *planes;
} grad_source;

static inline const float *grad_plane(const grad_source *g, int64_t i, int64_t o, int slot, fclf_conv2d_shape s) {
    const int64_t P = s.oh * s.ow, Q = (s.oh / 2) * (s.ow / 2), at = i * s.oc + o;
    if (!g->pooled_dy) return g->dy + at * P;
    float *plane = g->planes + slot * P;
    /* slot 0's spill lands in slot 1, written next; the buffer has room for slot 1's */
    fclf_unpool_plane_spill(plane, g->pooled_dy + at * Q, g->argmax + at * Q, g->pooled_y ? g->pooled_y + at * Q : NULL,
                            s.oh, s.ow);
    return plane;
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
/* y_i[o] = act(b[o] + sum_k w[o][k] col_i[k]) for one image: y [oc, P], col rows k at col + k*ld. */
__attribute__((target("avx512f"))) static void k9_forward_image__avx512f(float *restrict y, const float *restrict col,
                                                                         int64_t ld, const float *restrict w,
                                                                         const float *restrict b, int64_t oc,
                                                                         int64_t P, int relu) {
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t o = 0; o < oc; o += 2) {
        const int64_t o2 = o + 1 < oc ? o + 1 : o; /* an odd last channel is computed twice, stored once */
        __m512 wa[9], wb[9];
        for (int k = 0; k < 9; k++) {
            wa[k] = _mm512_set1_ps(w[o * 9 + k]);
            wb[k] = _mm512_set1_ps(w[o2 * 9 + k]);
        }
        const __m512 ba = _mm512_set1_ps(b ? b[o] : 0.0f), bb = _mm512_set1_ps(b ? b[o2] : 0.0f);
        float *ya = y + o * P, *yb = y + o2 * P;
        for (int64_t p = 0; p < P; p += 16) {
            const __mmask16 m = fclf_lanes16(P - p);
            __m512 a = ba, c = bb;
            for (int k = 0; k < 9; k++) {
                const __m512 v = _mm512_maskz_loadu_ps(m, col + k * ld + p);
                a = _mm512_fmadd_ps(wa[k], v, a);
                c = _mm512_fmadd_ps(wb[k], v, c);
            }
            if (relu) {
                a = _mm512_max_ps(a, zero);
                c = _mm512_max_ps(c, zero);
            }
            if (m == 0xFFFF) {
                _mm512_storeu_ps(ya + p, a);
                _mm512_storeu_ps(yb + p, c);
            } else {
                _mm512_mask_storeu_ps(ya + p, m, a);
                _mm512_mask_storeu_ps(yb + p, m, c);
            }
        }
    }
}

/* dW[o][k] += sum_i,p dz_i[o][p] col_i[k][p] and db[o] += sum dz for channels [o0, o1), dz = dy masked by
 * ReLU (y > 0) when relu. */
__attribute__((target("avx512f"))) static void k9_grad_rows__avx512f(float *restrict dw, float *restrict db,
                                                                     const grad_source *g, const float *restrict col,
                                                                     int relu, int64_t o0, int64_t o1,
                                                                     fclf_conv2d_shape s) {
    const int64_t P = s.oh * s.ow, NP = s.n * P;
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t o = o0; o < o1; o += 2) {
        const int64_t o2 = o + 1 < o1 ? o + 1 : o;
        __m512 acc_a[9], acc_b[9], sum_a = zero, sum_b = zero;
        for (int k = 0; k < 9; k++) acc_a[k] = acc_b[k] = zero;
        for (int64_t i = 0; i < s.n; i++) {
            const float *ga = grad_plane(g, i, o, 0, s), *gb = grad_plane(g, i, o2, 1, s);
            const float *ya = relu ? g->y + (i * s.oc + o) * P : NULL, *yb = relu ? g->y + (i * s.oc + o2) * P : NULL;
            const float *c = col + i * P;
            for (int64_t p = 0; p < P; p += 16) {
                const __mmask16 m = fclf_lanes16(P - p);
                __m512 va = _mm512_maskz_loadu_ps(m, ga + p), vb = _mm512_maskz_loadu_ps(m, gb + p);
                if (relu) {
                    va = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m, ya + p), zero, _CMP_GT_OQ), va);
                    vb = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m, yb + p), zero, _CMP_GT_OQ), vb);
                }
                sum_a = _mm512_add_ps(sum_a, va);
                sum_b = _mm512_add_ps(sum_b, vb);
                for (int k = 0; k < 9; k++) {
                    const __m512 v = _mm512_maskz_loadu_ps(m, c + k * NP + p);
                    acc_a[k] = _mm512_fmadd_ps(va, v, acc_a[k]);
                    acc_b[k] = _mm512_fmadd_ps(vb, v, acc_b[k]);
                }
            }
        }
        for (int k = 0; k < 9; k++) dw[o * 9 + k] += _mm512_reduce_add_ps(acc_a[k]);
        if (db) db[o] += _mm512_reduce_add_ps(sum_a);
        if (o2 != o) {
            for (int k = 0; k < 9; k++) dw[o2 * 9 + k] += _mm512_reduce_add_ps(acc_b[k]);
            if (db) db[o2] += _mm512_reduce_add_ps(sum_b);
        }
    }
}
#endif

/* Whether this shape's products pack straight from x instead of an explicit im2col matrix: every shape but
 * the small-K direct path, which reads col. Both give the same bits. Packing from x paid off from a few
 * images on (predict_bench, 1 thread: 10,000 images at 13,000 against 11,800 images/s); since the packers
 * are vectorised it does for one image too (fclf_predict p50 80 -> 76 us). */
static int packs_from_x(fclf_conv2d_shape s) { return s.c * s.kh * s.kw >= SMALL_K; }

int fclf_conv2d_uses_col(fclf_conv2d_shape s) { return !packs_from_x(s); }

void fclf_conv2d_forward(float *y, float *col, const float *x, const float *w, const float *b, int relu,
                         fclf_conv2d_shape s) {
    const int64_t K = s.c * s.kh * s.kw, P = s.oh * s.ow, NP = s.n * P;
    if (packs_from_x(s)) {
        /* The product lands in NCHW with bias and ReLU applied as each tile is stored: no [oc, n*P]
         * intermediate and no second pass over y. */
        fclf_sgemm_conv_forward(w, x, NULL, s, b, relu, y);
        return;
    }
    FCLF_PARALLEL_IF(big(s),
        for (FCLF_STATIC_RANGE(i, s.n)) im2col(col + i * P, NP, x + i * s.c * s.h * s.w, s););
#if defined(__x86_64__)
    if (K == 9 && fclf_isa_active() == FCLF_ISA_AVX512F) {
        FCLF_PARALLEL_IF(big(s),
            for (FCLF_STATIC_RANGE(i, s.n)) k9_forward_image__avx512f(y + i * s.oc * P, col + i * P, NP, w, b, s.oc, P, relu););
        return;
    }
#endif
    /* y_i[o] = b[o] + sum_k w[o][k] col_i[k]: image i's K col rows stay in L1 across all o. */
    FCLF_PARALLEL_IF(big(s),
        for (FCLF_STATIC_RANGE(i, s.n))
            for (int64_t o = 0; o < s.oc; o++)
                small_k_plane(y + (i * s.oc + o) * P, col + i * P, NP, w + o * K, b ? b[o] : 0.0f, K, P, relu););
}

/* Weight and bias gradients for K < SMALL_K as dot products: dW[o][k] += sum_i,p dz_i[o][p] col_i[k][p].
 * dz (dy masked by ReLU) is formed a chunk at a time on the stack and dotted with all K col rows while
 * it is in L1, instead of a GEMM over a transposed copy (fclf-profile: conv1's weight gradient took
 * 544 us as a GEMM on 2 threads, its N = 9 padded to a 32-wide tile). Each thread owns whole rows of
 * dW; every sum runs in image and chunk order, so the thread count does not change the result. */
/* Sums over one chunk of pixels for the small-K weight gradient: part[k] += dz . col_k and *partb += sum dz,
 * with dz = dy masked by ReLU. K = 9 gets nine register accumulators and one pass over the chunk;
 * other K form dz on the stack and take K dot products. */
static inline __attribute__((always_inline)) void grad_chunk_k9(float *restrict part, float *restrict partb,
                                                                const float *restrict g, const float *restrict act,
                                                                const float *restrict c, int64_t ld, int64_t len, int relu) {
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0, a8 = 0, b = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3, a4, a5, a6, a7, a8, b)
    for (int64_t p = 0; p < len; p++) {
        float v = relu && !(act[p] > 0.0f) ? 0.0f : g[p];
        b += v;
        a0 += v * c[p];
        a1 += v * c[ld + p];
        a2 += v * c[2 * ld + p];
        a3 += v * c[3 * ld + p];
        a4 += v * c[4 * ld + p];
        a5 += v * c[5 * ld + p];
        a6 += v * c[6 * ld + p];
        a7 += v * c[7 * ld + p];
        a8 += v * c[8 * ld + p];
    }
    part[0] += a0; part[1] += a1; part[2] += a2; part[3] += a3; part[4] += a4;
    part[5] += a5; part[6] += a6; part[7] += a7; part[8] += a8;
    *partb += b;
}

/* Output channels [o0, o1) of the small-K weight gradient. Images run outermost so that image i's K col rows
 * (9 x 676 floats for conv1) stay in L1 while its channels' dy and y planes, adjacent in memory, stream past
 * once in order; channel-outer order re-read all of col per channel from L2/L3 (perf: 9% of a batch-32 step,
 * about 30 GFLOP/s). Each (o, k) sum still runs in image and chunk order, so the result is the same for any
 * grouping or thread count. */
enum { GRAD_GROUP = 32 };
FCLF_CLONES static void small_k_grad_rows(float *restrict dw, float *restrict db, const grad_source *gs,
                                          const float *restrict col, int relu, int64_t o0, int64_t o1,
                                          fclf_conv2d_shape s) {
    const int64_t K = s.c * s.kh * s.kw, P = s.oh * s.ow, NP = s.n * P;
    float accw[GRAD_GROUP][SMALL_K], accb[GRAD_GROUP];
    float dz[CHUNK] __attribute__((aligned(64)));
    for (int64_t g0 = o0; g0 < o1; g0 += GRAD_GROUP) {
        const int64_t g1 = fclf_min64(o1, g0 + GRAD_GROUP);
        memset(accw, 0, sizeof accw);
        memset(accb, 0, sizeof accb);
        for (int64_t i = 0; i < s.n; i++)
            for (int64_t o = g0; o < g1; o++) {
                const float *plane = grad_plane(gs, i, o, 0, s), *act_plane = relu ? gs->y + (i * s.oc + o) * P : NULL;
                for (int64_t p0 = 0; p0 < P; p0 += CHUNK) {
                    const int64_t len = fclf_min64(CHUNK, P - p0);
                    const float *c = col + i * P + p0;
                    const float *g = plane + p0, *act = relu ? act_plane + p0 : g;
                    float part[SMALL_K] = {0}, partb = 0.0f;
                    if (K == 9) {
                        grad_chunk_k9(part, &partb, g, act, c, NP, len, relu);
                    } else {
#pragma omp simd reduction(+ : partb)
                        for (int64_t p = 0; p < len; p++) {
                            float v = relu && !(act[p] > 0.0f) ? 0.0f : g[p];
                            dz[p] = v;
                            partb += v;
                        }
                        for (int64_t k = 0; k < K; k++) {
                            const float *ck = c + k * NP;
                            float d = 0.0f;
#pragma omp simd reduction(+ : d)
                            for (int64_t p = 0; p < len; p++) d += dz[p] * ck[p];
                            part[k] = d;
                        }
                    }
                    accb[o - g0] += partb;
                    for (int64_t k = 0; k < K; k++) accw[o - g0][k] += part[k];
                }
            }
        for (int64_t o = g0; o < g1; o++) {
            for (int64_t k = 0; k < K; k++) dw[o * K + k] += accw[o - g0][k];
            if (db) db[o] += accb[o - g0];
        }
    }
}

static void weight_grad_small_k(float *restrict dw, float *restrict db, const grad_source *g,
                                const float *restrict col, int relu, fclf_conv2d_shape s) {
    FCLF_PARALLEL_IF(big(s), {
        int64_t o0 = fclf_partition_bound(s.oc, 0), o1 = fclf_partition_bound(s.oc, 1);
        if (o1 > o0) {
            float planes[2 * FUSED_PLANE_MAX + UNPOOL_SPILL] __attribute__((aligned(64)));
            grad_source mine = *g;
            mine.planes = planes;
#if defined(__x86_64__)
            if (s.c * s.kh * s.kw == 9 && fclf_isa_active() == FCLF_ISA_AVX512F)
                k9_grad_rows__avx512f(dw, db, &mine, col, relu, o0, o1, s);
            else
#endif
                small_k_grad_rows(dw, db, &mine, col, relu, o0, o1, s);
        }
    });
}

/* The bias gradient db[o] += the sum of row o of dz, while it is in cache. */
static void db_row(float *restrict db, const float *restrict tmp, int64_t o, fclf_conv2d_shape s) {
    const int64_t NP = s.n * s.oh * s.ow;
    const float *d = tmp + o * NP;
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int64_t p = 0; p < NP; p++) acc += d[p];
    db[o] += acc;
}

/* Row o of dz [oc, n*P] routed back from the pooled gradient (only where the pooled y > 0 when given): what
 * the pool's backward pass, then dz_row without a mask, would write. */
static void dz_row_pooled(float *restrict tmp, float *restrict db, const float *restrict dy,
                          const int32_t *restrict argmax, const float *restrict y, int64_t o, fclf_conv2d_shape s) {
    const int64_t P = s.oh * s.ow, NP = s.n * P, Q = (s.oh / 2) * (s.ow / 2);
    for (int64_t i = 0; i < s.n; i++) {
        const int64_t at = (i * s.oc + o) * Q;
        float *plane = tmp + o * NP + i * P;
        /* a plane's spill lands in the next image's, written next; the row's last plane stays inside */
        if (i + 1 < s.n && P >= UNPOOL_SPILL)
            fclf_unpool_plane_spill(plane, dy + at, argmax + at, y ? y + at : NULL, s.oh, s.ow);
        else
            fclf_unpool_plane(plane, dy + at, argmax + at, y ? y + at : NULL, s.oh, s.ow);
    }
    if (db) db_row(db, tmp, o, s);
}

/* Row o of dz [oc, n*P] = dy masked by ReLU (y > 0), gathered from the NCHW dy, and the bias gradient. */
static void dz_row(float *restrict tmp, float *restrict db, const float *restrict dy, const float *restrict y,
                   int relu, int64_t o, fclf_conv2d_shape s) {
    const int64_t P = s.oh * s.ow, NP = s.n * P;
    for (int64_t i = 0; i < s.n; i++) {
        const float *src = dy + (i * s.oc + o) * P;
        float *dst = tmp + o * NP + i * P;
        if (relu) {
            const float *act = y + (i * s.oc + o) * P;
            for (int64_t p = 0; p < P; p++) {
                float g = src[p];
                dst[p] = act[p] > 0.0f ? g : 0.0f;
            }
        } else {
            for (int64_t p = 0; p < P; p++) dst[p] = src[p];
        }
    }
    if (db) db_row(db, tmp, o, s);
}

/* The products of the backward pass once dz [oc, n*P] is in tmp (and db has been summed from it). */
static void backward_from_dz(float *dx, float *dw, float *dcol, const float *tmp, const float *col, const float *x,
                             const float *w, fclf_conv2d_shape s) {
    const int64_t K = s.c * s.kh * s.kw, P = s.oh * s.ow, NP = s.n * P;
    /* dW^T [K, oc] = col [K, NP] . dz^T [NP, oc], then added transposed into dw: this orientation
     * transposes dz (oc x NP) while packing instead of col (K x NP, 4.5x larger). fclf-bench, 2 threads,
     * conv2 at batch 32: 161 GFLOP/s against 139 for dW = dz . col^T. dcol is free until the input
     * gradient below. */
    float *dwt = dcol;
    if (packs_from_x(s))
        fclf_sgemm_im2col_a(x, s, s.oc, tmp, NP, 1, dwt, s.oc);
    else
        fclf_sgemm(0, 1, K, s.oc, NP, 1.0f, col, NP, tmp, NP, 0.0f, dwt, s.oc);
    for (int64_t o = 0; o < s.oc; o++)
        for (int64_t k = 0; k < K; k++) dw[o * K + k] += dwt[k * s.oc + o];
    if (!dx) return;
    /* dcol = W^T dz a few images at a time, each chunk folded back by col2im while it is still in L2. One
     * batch-wide product wrote all of dcol (4.5 MB for conv2 at batch 32) out to L3 and col2im read it back
     * in 0.5 KB pieces 15 KB apart, which the prefetchers do not follow. Each thread reuses the start of its
     * own images' part of dcol. A column of dcol does not depend on how the columns are split, so the bits
     * are those of the single product. */
    const int wide = fclf_isa_active() == FCLF_ISA_AVX512F;
    const int64_t chunk = fclf_max64(1, (int64_t)(DCOL_CHUNK_BYTES / sizeof(float)) / (K * P));
    FCLF_PARALLEL_IF(big(s), {
        const int64_t i0 = fclf_partition_bound(s.n, 0), i1 = fclf_partition_bound(s.n, 1);
        float *buf = dcol + i0 * K * P;
        for (int64_t ic = i0; ic < i1; ic += chunk) {
            const int64_t nc = fclf_min64(chunk, i1 - ic);
            fclf_sgemm(1, 0, K, nc * P, s.oc, 1.0f, w, K, tmp + ic * P, NP, 0.0f, buf, nc * P);
            for (int64_t i = ic; i < ic + nc; i++)
                col2im_image(dx + i * s.c * s.h * s.w, buf + (i - ic) * P, nc * P, s, wide);
        }
    });
}

void fclf_conv2d_backward(float *dx, float *dw, float *db, float *dcol, float *tmp, const float *dy,
                          const float *y, const float *col, const float *x, const float *w, int relu,
                          fclf_conv2d_shape s) {
    const int64_t K = s.c * s.kh * s.kw;
    if (K < SMALL_K && !dx) {
        const grad_source g = {dy, y, NULL, NULL, NULL, NULL};
        weight_grad_small_k(dw, db, &g, col, relu, s);
        return;
    }
    /* dz = dy masked by ReLU (y > 0), moved from [n, oc, P] to tmp [oc, n, P], the forward GEMM's
     * output layout. */
    FCLF_PARALLEL_IF(big(s), for (FCLF_STATIC_RANGE(o, s.oc)) dz_row(tmp, db, dy, y, relu, o, s););
    backward_from_dz(dx, dw, dcol, tmp, col, x, w, s);
}

/* ---- convolution + activation + 2x2 max pooling, fused ----
 * The first layer of an image model (c*kh*kw < 16) writes the largest activation of the network (conv1:
 * 2.8 MB per batch of 32), which the pool reads once and whose gradient the pool writes and the weight
 * gradient reads once more. Fused, each image's output planes are computed two at a time into an L1 buffer
 * and pooled from there, and the backward pass routes the pooled gradient into the same buffer: the full
 * activation and its gradient never reach memory. Values, winners and sums are those of the separate
 * layers (the pool's ReLU mask included), so the bits are the same. */
int fclf_conv2d_pool_supported(fclf_conv2d_shape s) {
    return s.c * s.kh * s.kw < SMALL_K && s.oh >= 2 && s.ow >= 2 && s.oh * s.ow <= FUSED_PLANE_MAX;
}

static void conv_pool_image(float *restrict y, int32_t *restrict argmax, const float *restrict col, int64_t ld,
                            const float *restrict w, const float *restrict b, int relu, fclf_conv2d_shape s) {
    const int64_t K = s.c * s.kh * s.kw, P = s.oh * s.ow, Q = (s.oh / 2) * (s.ow / 2);
    float planes[2 * FUSED_PLANE_MAX] __attribute__((aligned(64)));
    for (int64_t o = 0; o < s.oc; o += 2) {
        const int64_t pair = fclf_min64(2, s.oc - o);
#if defined(__x86_64__)
        if (K == 9 && fclf_isa_active() == FCLF_ISA_AVX512F)
            k9_forward_image__avx512f(planes, col, ld, w + o * K, b ? b + o : NULL, pair, P, relu);
        else
#endif
            for (int64_t j = 0; j < pair; j++)
                small_k_plane(planes + j * P, col, ld, w + (o + j) * K, b ? b[o + j] : 0.0f, K, P, relu);
        for (int64_t j = 0; j < pair; j++)
            fclf_pool_plane(y + (o + j) * Q, argmax ? argmax + (o + j) * Q : NULL, planes + j * P, s.oh, s.ow);
    }
}

void fclf_conv2d_pool_forward(float *y, int32_t *argmax, float *col, const float *x, const float *w, const float *b,
                              int relu, fclf_conv2d_shape s) {
    const int64_t P = s.oh * s.ow, NP = s.n * P, Q = (s.oh / 2) * (s.ow / 2);
    FCLF_PARALLEL_IF(big(s), for (FCLF_STATIC_RANGE(i, s.n)) {
        im2col(col + i * P, NP, x + i * s.c * s.h * s.w, s);
        conv_pool_image(y + i * s.oc * Q, argmax ? argmax + i * s.oc * Q : NULL, col + i * P, NP, w, b, relu, s);
    });
}

int64_t fclf_conv2d_backward_tmp_size(fclf_conv2d_shape s, int with_dx, int pooled) {
    /* the small-K weight gradient without dx reads dy, or the pooled planes it routes on the stack */
    if (s.c * s.kh * s.kw < SMALL_K && !with_dx && (!pooled || s.oh * s.ow <= FUSED_PLANE_MAX)) return 0;
    return fclf_conv2d_tmp_size(s);
}

void fclf_conv2d_pool_backward(float *dx, float *dw, float *db, float *dcol, float *tmp, const float *dy,
                               const int32_t *argmax, const float *y, const float *col, const float *x, const float *w,
                               fclf_conv2d_shape s) {
    const int64_t K = s.c * s.kh * s.kw, P = s.oh * s.ow;
    if (K < SMALL_K && !dx) {
        if (P <= FUSED_PLANE_MAX) { /* routed plane by plane into L1 */
            const grad_source g = {NULL, NULL, dy, y, argmax, NULL};
            weight_grad_small_k(dw, db, &g, col, 0, s);
        } else { /* routed into tmp, NCHW, as the separate pool would */
            fclf_maxpool2x2_backward(tmp, dy, argmax, y, s.n * s.oc, s.oh, s.ow);
            const grad_source g = {tmp, NULL, NULL, NULL, NULL, NULL};
            weight_grad_small_k(dw, db, &g, col, 0, s);
        }
        return;
    }
    /* Routed straight into the GEMM layout [oc, n*P]: no full-size gradient in NCHW, no copy of it. */
    FCLF_PARALLEL_IF(big(s), for (FCLF_STATIC_RANGE(o, s.oc)) dz_row_pooled(tmp, db, dy, argmax, y, o, s););
    backward_from_dz(dx, dw, dcol, tmp, col, x, w, s);
}

/* ---- naive references ---- */

void fclf_conv2d_forward_ref(float *y, const float *x, const float *w, const float *b, fclf_conv2d_shape s) {
    for (int64_t i = 0; i < s.n; i++)
        for (int64_t o = 0; o < s.oc; o++)
            for (int64_t oy = 0; oy < s.oh; oy++)
                for (int64_t ox = 0; ox < s.ow; ox++) {
                    double acc = b ? b[o] : 0.0;
                    for (int64_t ci = 0; ci < s.c; ci++)
                        for (int64_t ki = 0; ki < s.kh; ki++)
                            for (int64_t kj = 0; kj < s.kw; kj++) {
                                int64_t iy = oy + ki - s.pad_t, ix = ox + kj - s.pad_l;
                                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                                acc += (double)x[((i * s.c + ci) * s.h + iy) * s.w + ix] *
                                       w[((o * s.c + ci) * s.kh + ki) * s.kw + kj];
                            }
                    y[((i * s.oc + o) * s.oh + oy) * s.ow + ox] = (float)acc;
                }
}

void fclf_conv2d_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                              fclf_conv2d_shape s) {
    if (dx) memset(dx, 0, (size_t)(s.n * s.c * s.h * s.w) * sizeof(float));
    for (int64_t i = 0; i < s.n; i++)
        for (int64_t o = 0; o < s.oc; o++)
            for (int64_t oy = 0; oy < s.oh; oy++)
                for (int64_t ox = 0; ox < s.ow; ox++) {
                    float g = dy[((i * s.oc + o) * s.oh + oy) * s.ow + ox];
                    if (db) db[o] += g;
                    for (int64_t ci = 0; ci < s.c; ci++)
                        for (int64_t ki = 0; ki < s.kh; ki++)
                            for (int64_t kj = 0; kj < s.kw; kj++) {
                                int64_t iy = oy + ki - s.pad_t, ix = ox + kj - s.pad_l;
                                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                                int64_t xi = ((i * s.c + ci) * s.h + iy) * s.w + ix;
                                int64_t wi = ((o * s.c + ci) * s.kh + ki) * s.kw + kj;
                                dw[wi] += g * x[xi];
                                if (dx) dx[xi] += g * w[wi];
                            }
                }
}
