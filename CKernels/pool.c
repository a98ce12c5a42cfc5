/* pool.c: 2x2 max pooling with stride 2, forward and backward.
 * The forward pass records the winning index so the backward pass is a scatter, not a recomparison. */
#include "fclf_internal.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Inputs below this many floats are pooled on the calling thread. It was 4x higher; conv2's output at batch
 * 32 (248k floats) then pooled on one thread. */
#define POOL_PAR_MIN (1 << 16)
/* Output rows narrower than half a vector are pooled by the scalar loop: the vector kernel takes a row's
 * windows 16 at a time, so conv2's 5-window rows (11 x 11 planes) left 11 of 16 lanes idle, and its fixed cost
 * per row made it slower than the scalar loop (fclf-profile cnn-bn 128, Zen 4: that BatchNorm+ReLU+pooling
 * step 745-951 us forward with the vector kernel, 589-604 us with the scalar loop; 13-window rows the same
 * either way). Both give the same maxima and winners. */
#define POOL_VECTOR_MIN_OW 8

/* One plane: output row by row from two input rows, selects instead of branches (the winner of a window
 * is unpredictable). The input's rows lie ld >= w apart; the winners index the h x w plane. */
FCLF_CLONES static void pool_plane(float *restrict y, int32_t *restrict am, const float *restrict x, int64_t h,
                                   int64_t w, int64_t ld) {
    const int64_t oh = h / 2, ow = w / 2;
    for (int64_t oy = 0; oy < oh; oy++) {
        const float *r0 = x + 2 * oy * ld, *r1 = r0 + ld;
        float *yr = y + oy * ow;
        int32_t *ar = am ? am + oy * ow : NULL;
        const int32_t base = (int32_t)(2 * oy * w), iw = (int32_t)w;
        for (int64_t ox = 0; ox < ow; ox++) {
            float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
            int32_t i0 = base + (int32_t)(2 * ox), best = i0;
            float m = a;
            best = b > m ? i0 + 1 : best;
            m = b > m ? b : m;
            best = c > m ? i0 + iw : best;
            m = c > m ? c : m;
            best = d > m ? i0 + iw + 1 : best;
            m = d > m ? d : m;
            yr[ox] = m;
            if (ar) ar[ox] = best;
        }
    }
}

#if defined(__x86_64__)
/* The same windows, 16 at a time with AVX-512: the four corners of 16 windows are the even and odd lanes of
 * two row pieces, and the winner is chosen with the scalar code's comparisons in its order, so maxima and
 * indices are the same. Output rows go whole into a buffer on the stack (their extra lanes overwritten by
 * the next row), which is then copied out: storing rows straight into y and argmax overlapped stores and
 * needed masked ones at the plane's end, and those stores took most of the time (perf: pooling was 16% of
 * batch prediction). Without argmax (inference) no index is formed. */
enum { POOL_BUF = 2048 }; /* floats: 2 x 8 KB of stack for pooling */
__attribute__((target("avx512f"))) static void pool_plane__avx512f(float *restrict y, int32_t *restrict am,
                                                                   const float *restrict x, int64_t h, int64_t w,
                                                                   int64_t ld) {
    const int64_t oh = h / 2, ow = w / 2;
    float ybuf[POOL_BUF + 16] __attribute__((aligned(64)));
    int32_t abuf[POOL_BUF + 16] __attribute__((aligned(64)));
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int64_t oy0 = 0; oy0 < oh;) {
        /* as many output rows as fit the buffers */
        const int64_t rows = fclf_min64(oh - oy0, fclf_max64(1, POOL_BUF / ow));
        for (int64_t oy = oy0; oy < oy0 + rows; oy++) {
            const float *r0 = x + 2 * oy * ld, *r1 = r0 + ld;
            for (int64_t ox = 0; ox < ow; ox += 16) {
                const int64_t n = fclf_min64(16, ow - ox), left = 2 * n;
                const __mmask16 mlo = fclf_lanes16(left);
                const __mmask16 mhi = fclf_lanes16(left - 16);
                const __m512 t0 = _mm512_maskz_loadu_ps(mlo, r0 + 2 * ox), t1 = _mm512_maskz_loadu_ps(mhi, r0 + 2 * ox + 16);
                const __m512 u0 = _mm512_maskz_loadu_ps(mlo, r1 + 2 * ox), u1 = _mm512_maskz_loadu_ps(mhi, r1 + 2 * ox + 16);
                const __m512 a = _mm512_permutex2var_ps(t0, even, t1), b = _mm512_permutex2var_ps(t0, odd, t1);
                const __m512 c = _mm512_permutex2var_ps(u0, even, u1), d = _mm512_permutex2var_ps(u0, odd, u1);
                const int64_t at = (oy - oy0) * ow + ox;
                __m512 m = a;
                const __mmask16 kb = _mm512_cmp_ps_mask(b, m, _CMP_GT_OQ);
                m = _mm512_mask_mov_ps(m, kb, b);
                const __mmask16 kc = _mm512_cmp_ps_mask(c, m, _CMP_GT_OQ);
                m = _mm512_mask_mov_ps(m, kc, c);
                const __mmask16 kd = _mm512_cmp_ps_mask(d, m, _CMP_GT_OQ);
                m = _mm512_mask_mov_ps(m, kd, d);
                _mm512_storeu_ps(ybuf + at, m);
                if (am) {
                    const __m512i i0 = _mm512_add_epi32(_mm512_set1_epi32((int32_t)(2 * oy * w + 2 * ox)), even);
                    __m512i best = i0;
                    best = _mm512_mask_mov_epi32(best, kb, _mm512_add_epi32(i0, _mm512_set1_epi32(1)));
                    best = _mm512_mask_mov_epi32(best, kc, _mm512_add_epi32(i0, _mm512_set1_epi32((int32_t)w)));
                    best = _mm512_mask_mov_epi32(best, kd, _mm512_add_epi32(i0, _mm512_set1_epi32((int32_t)w + 1)));
                    _mm512_storeu_si512(abuf + at, best);
                }
            }
        }
        memcpy(y + oy0 * ow, ybuf, (size_t)(rows * ow) * sizeof(float));
        if (am) memcpy(am + oy0 * ow, abuf, (size_t)(rows * ow) * sizeof(int32_t));
        oy0 += rows;
    }
}
#endif

void fclf_pool_plane(int isa, float *y, int32_t *argmax, const float *x, int64_t h, int64_t w, int64_t ld) {
#if defined(__x86_64__)
    if (isa == FCLF_ISA_AVX512F && w / 2 >= POOL_VECTOR_MIN_OW) {
        pool_plane__avx512f(y, argmax, x, h, w, ld);
        return;
    }
#endif
    (void)isa;
    pool_plane(y, argmax, x, h, w, ld);
}

static void maxpool2x2_forward(int isa, float *y, int32_t *argmax, const float *x, int64_t planes, int64_t h,
                               int64_t w) {
    const int64_t oh = h / 2, ow = w / 2;
    FCLF_PARALLEL_IF(planes * h * w >= POOL_PAR_MIN,
        for (FCLF_STATIC_RANGE(pl, planes))
            fclf_pool_plane(isa, y + pl * oh * ow, argmax ? argmax + pl * oh * ow : NULL, x + pl * h * w, h, w, w););
}

void fclf_maxpool2x2_forward(float *y, int32_t *argmax, const float *x, int64_t planes, int64_t h, int64_t w) {
    maxpool2x2_forward(fclf_isa_active(), y, argmax, x, planes, h, w);
}

void fclf_maxpool2x2_forward_isa(int isa, float *y, int32_t *argmax, const float *x, int64_t planes, int64_t h,
                                 int64_t w) {
    maxpool2x2_forward(fclf_isa_usable(isa), y, argmax, x, planes, h, w);
}

/* With y (the forward output), a window whose maximum is not positive passes no gradient: that is the mask of
 * a ReLU before the pool (the winner is the window's maximum), applied here on the pooled quarter of the
 * values so that the layer before need not read its whole output again. The values routed are the same. */
static void unpool_plane(float *restrict dxp, const float *restrict dyp, const int32_t *restrict ap,
                         const float *restrict yp, int64_t h, int64_t w, int64_t ld) {
    const int64_t cells = (h / 2) * (w / 2);
    memset(dxp, 0, (size_t)(h * ld) * sizeof(float));
    if (ld == w) {
        if (yp)
            for (int64_t o = 0; o < cells; o++) dxp[ap[o]] += yp[o] > 0.0f ? dyp[o] : 0.0f;
        else
            for (int64_t o = 0; o < cells; o++) dxp[ap[o]] += dyp[o];
        return;
    }
    for (int64_t o = 0; o < cells; o++) /* winner a of the h x w plane at row a / w, column a % w */
        dxp[ap[o] / w * ld + ap[o] % w] += !yp || yp[o] > 0.0f ? dyp[o] : 0.0f;
}

#if defined(__x86_64__)
/* The same plane written densely, 16 windows at a time: each window's value goes to the corner its winner
 * index names and 0 to the other three, and even and odd columns are interleaved in registers. The scatter
 * adds each value to a 0, so g + 0 is stored (turning -0 into +0 as the scatter does) and the bits are the
 * same. Each row is stored by one or two masked stores of exactly its ld floats (an odd last column and the
 * ld - w past the row get the zeros of the lanes past the windows, an odd last row is cleared), so nothing
 * outside the plane is written:
 * whole 32-float stores, which ran past each row into the next and past the plane's end, stored 2.6x the
 * plane's bytes for conv2's 11 x 11 planes, in lines split between two stores. */
__attribute__((target("avx512f"))) static void unpool_dense__avx512f(float *restrict dxp, const float *restrict dyp,
                                                                     const int32_t *restrict ap,
                                                                     const float *restrict yp, int64_t h, int64_t w,
                                                                     int64_t ld) {
    const int64_t oh = h / 2, ow = w / 2;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi_idx = _mm512_add_epi32(lo_idx, _mm512_set1_epi32(8));
    const __m512 zero = _mm512_setzero_ps();
    const __mmask16 m = fclf_lanes16(ow); /* ow <= 16: one chunk per row */
    /* ld <= 32; the lanes past the windows are 0, so the ld - w columns past each row are cleared */
    const __mmask16 row_lo = fclf_lanes16(ld), row_hi = fclf_lanes16(ld - 16);
    for (int64_t oy = 0; oy < oh; oy++) {
        const int64_t at = oy * ow;
        __m512 g = _mm512_add_ps(_mm512_maskz_loadu_ps(m, dyp + at), zero);
        if (yp) g = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m, yp + at), zero, _CMP_GT_OQ), g);
        /* corner of each window's winner: 0, 1, w or w+1 past its top-left pixel */
        const __m512i d = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(m, ap + at),
                                           _mm512_add_epi32(_mm512_set1_epi32((int32_t)(2 * oy * w)), _mm512_add_epi32(lane, lane)));
        const __m512 e0 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(d, _mm512_setzero_si512()), g);
        const __m512 o0 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(d, _mm512_set1_epi32(1)), g);
        const __m512 e1 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(d, _mm512_set1_epi32((int32_t)w)), g);
        const __m512 o1 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(d, _mm512_set1_epi32((int32_t)w + 1)), g);
        float *r0 = dxp + 2 * oy * ld, *r1 = r0 + ld;
        _mm512_mask_storeu_ps(r0, row_lo, _mm512_permutex2var_ps(e0, lo_idx, o0));
        _mm512_mask_storeu_ps(r1, row_lo, _mm512_permutex2var_ps(e1, lo_idx, o1));
        if (row_hi) {
            _mm512_mask_storeu_ps(r0 + 16, row_hi, _mm512_permutex2var_ps(e0, hi_idx, o0));
            _mm512_mask_storeu_ps(r1 + 16, row_hi, _mm512_permutex2var_ps(e1, hi_idx, o1));
        }
    }
    if (h & 1) memset(dxp + (h - 1) * ld, 0, (size_t)ld * sizeof(float));
}

/* The same with AVX2, 8 windows at a time (interleaved by unpack and a 128-bit permute). AVX2's masked stores
 * are microcoded on AMD's cores, so each row is stored in whole 8-float pieces that may run past its end into
 * the rows after it, which are written later: the top row of a window row is stored whole before its bottom
 * row (kept in registers meanwhile; ow <= 16 is two pieces), the last pair of rows goes through a buffer and
 * is copied exactly, and an odd last row is cleared after. */
__attribute__((target("avx2"))) static void unpool_dense__avx2(float *restrict dxp, const float *restrict dyp,
                                                               const int32_t *restrict ap, const float *restrict yp,
                                                               int64_t h, int64_t w, int64_t ld) {
    const int64_t oh = h / 2, ow = w / 2;
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), twice = _mm256_add_epi32(iota, iota);
    const __m256 zero = _mm256_setzero_ps();
    float last[2][40];
    for (int64_t oy = 0; oy < oh; oy++) {
        const int staged = oy == oh - 1;
        float *r0 = staged ? last[0] : dxp + 2 * oy * ld, *r1 = staged ? last[1] : r0 + ld;
        __m256 bottom[4];
        for (int64_t ox = 0; 2 * ox < ld; ox += 8) { /* w = 17: a piece of no windows clears column 16 */
            const int64_t at = oy * ow + ox;
            const __m256i m = fclf_lanes8(ow - ox);
            __m256 g = _mm256_add_ps(_mm256_maskload_ps(dyp + at, m), zero);
            if (yp) g = _mm256_and_ps(g, _mm256_cmp_ps(_mm256_maskload_ps(yp + at, m), zero, _CMP_GT_OQ));
            const __m256i d = _mm256_sub_epi32(_mm256_maskload_epi32(ap + at, m),
                                               _mm256_add_epi32(_mm256_set1_epi32((int32_t)(2 * oy * w + 2 * ox)), twice));
            const __m256 e0 = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(d, _mm256_setzero_si256())));
            const __m256 o0 = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(d, _mm256_set1_epi32(1))));
            const __m256 e1 = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(d, _mm256_set1_epi32((int32_t)w))));
            const __m256 o1 = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(d, _mm256_set1_epi32((int32_t)w + 1))));
            const __m256 lo0 = _mm256_unpacklo_ps(e0, o0), hi0 = _mm256_unpackhi_ps(e0, o0);
            const __m256 lo1 = _mm256_unpacklo_ps(e1, o1), hi1 = _mm256_unpackhi_ps(e1, o1);
            _mm256_storeu_ps(r0 + 2 * ox, _mm256_permute2f128_ps(lo0, hi0, 0x20));
            _mm256_storeu_ps(r0 + 2 * ox + 8, _mm256_permute2f128_ps(lo0, hi0, 0x31));
            bottom[ox / 4] = _mm256_permute2f128_ps(lo1, hi1, 0x20);
            bottom[ox / 4 + 1] = _mm256_permute2f128_ps(lo1, hi1, 0x31);
        }
        for (int64_t ox = 0; 2 * ox < ld; ox += 8) { /* w = 17: a piece of no windows clears column 16 */
            _mm256_storeu_ps(r1 + 2 * ox, bottom[ox / 4]);
            _mm256_storeu_ps(r1 + 2 * ox + 8, bottom[ox / 4 + 1]);
        }
        if (staged) {
            memcpy(dxp + 2 * oy * ld, last[0], (size_t)ld * sizeof(float));
            memcpy(dxp + (2 * oy + 1) * ld, last[1], (size_t)ld * sizeof(float));
        }
    }
    if (h & 1) memset(dxp + (h - 1) * ld, 0, (size_t)ld * sizeof(float));
}

static int unpool_dense_fits(int isa, int64_t h, int64_t w, int64_t ld) {
    /* two 16-lane stores per row (AVX2: four 8-lane ones); w = 33 has 16 windows too. AVX2 from 8 windows a
     * row: conv2's 11 x 11 planes (5 windows) were slower than the scatter (fclf-profile cnn 32 under
     * FCLF_ISA=avx2 on Zen 4: its backward 1,763-1,769 -> 1,847-1,855 us), conv1's 26 x 26 faster. */
    return ld <= 32 && h >= 2 && (isa == FCLF_ISA_AVX512F || (isa == FCLF_ISA_AVX2 && w / 2 >= 8));
}
#endif

void fclf_unpool_plane(int isa, float *restrict dxp, const float *restrict dyp, const int32_t *restrict ap,
                       const float *restrict yp, int64_t h, int64_t w, int64_t ld) {
#if defined(__x86_64__)
    if (unpool_dense_fits(isa, h, w, ld)) {
        if (isa == FCLF_ISA_AVX512F)
            unpool_dense__avx512f(dxp, dyp, ap, yp, h, w, ld);
        else
            unpool_dense__avx2(dxp, dyp, ap, yp, h, w, ld);
        return;
    }
#endif
    (void)isa;
    unpool_plane(dxp, dyp, ap, yp, h, w, ld);
}

void fclf_unpool_channel(int isa, float *dst, int64_t stride, const float *dy, const int32_t *argmax, const float *y,
                         int64_t n, int64_t c, int64_t ch, int64_t h, int64_t w) {
    const int64_t cells = (h / 2) * (w / 2);
    for (int64_t i = 0; i < n; i++) {
        const int64_t at = (i * c + ch) * cells;
        if (i + 2 < n) fclf_unpool_prefetch(dy, argmax, y, at + 2 * c * cells, cells);
        fclf_unpool_plane(isa, dst + i * stride, dy + at, argmax + at, y ? y + at : NULL, h, w, w);
    }
}

void fclf_maxpool2x2_backward_with(int isa, float *dx, const float *dy, const int32_t *argmax, const float *y,
                                   int64_t planes, int64_t h, int64_t w) {
    const int64_t cells = (h / 2) * (w / 2);
    FCLF_PARALLEL_IF(planes * h * w >= POOL_PAR_MIN,
        for (FCLF_STATIC_RANGE(pl, planes))
            fclf_unpool_plane(isa, dx + pl * h * w, dy + pl * cells, argmax + pl * cells, y ? y + pl * cells : NULL, h, w, w););
}

void fclf_maxpool2x2_backward(float *dx, const float *dy, const int32_t *argmax, const float *y, int64_t planes,
                              int64_t h, int64_t w) {
    fclf_maxpool2x2_backward_with(fclf_isa_active(), dx, dy, argmax, y, planes, h, w);
}

void fclf_maxpool2x2_backward_isa(int isa, float *dx, const float *dy, const int32_t *argmax, const float *y,
                                  int64_t planes, int64_t h, int64_t w) {
    fclf_maxpool2x2_backward_with(fclf_isa_usable(isa), dx, dy, argmax, y, planes, h, w);
}

/* ---- naive references (tests only) ---- */

void fclf_maxpool2x2_forward_ref(float *y, const float *x, int64_t planes, int64_t h, int64_t w) {
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oy = 0; oy < h / 2; oy++)
            for (int64_t ox = 0; ox < w / 2; ox++) {
                float m = x[(pl * h + 2 * oy) * w + 2 * ox];
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) {
                        float v = x[(pl * h + 2 * oy + dy) * w + 2 * ox + dx];
                        if (v > m) m = v;
                    }
                y[(pl * (h / 2) + oy) * (w / 2) + ox] = m;
            }
}

/* From x itself, not the forward pass's argmax: each window's gradient to its first maximum (row by row),
 * passed only where that maximum is > 0 when y is given; 0 elsewhere. */
void fclf_maxpool2x2_backward_ref(float *dx, const float *dy, const float *x, const float *y, int64_t planes,
                                  int64_t h, int64_t w) {
    memset(dx, 0, (size_t)(planes * h * w) * sizeof(float));
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oy = 0; oy < h / 2; oy++)
            for (int64_t ox = 0; ox < w / 2; ox++) {
                int64_t best = (pl * h + 2 * oy) * w + 2 * ox;
                for (int dy_ = 0; dy_ < 2; dy_++)
                    for (int dx_ = 0; dx_ < 2; dx_++) {
                        int64_t at = (pl * h + 2 * oy + dy_) * w + 2 * ox + dx_;
                        if (x[at] > x[best]) best = at;
                    }
                const int64_t o = (pl * (h / 2) + oy) * (w / 2) + ox;
                if (!y || x[best] > 0.0f) dx[best] += dy[o];
            }
}
