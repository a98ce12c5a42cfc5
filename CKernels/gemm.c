/* gemm.c: single-precision GEMM, C = alpha op(A) op(B) + beta C.
 *
 * Structure (BLIS/GotoBLAS): the K x NC panel of op(B) and the MC x K block of op(A) are packed into
 * contiguous, zero-padded micro-panels; one register micro-kernel computes an MR x NR tile of C from an
 * MR-wide A panel and an NR-wide B panel. Variants (suffix = ISA) differ only in the micro-kernel:
 *   __avx512f  8 x 32 (16 zmm accumulators: 2 FMA pipes x 4-cycle latency need >= 8 in flight)
 *   __avx2     6 x 16 (12 ymm accumulators, BLIS's Haswell shape, 15 of 16 registers)
 *   __scalar   4 x 8  (plain C the compiler vectorises for baseline SSE or NEON)
 * MR = 8 divides every M of our models (32, 64, 288, 1600), so their tiles are full.
 *
 * Parallelism: the caller's matrix is split into contiguous, tile-aligned column (or row) ranges, one per
 * thread; each C element is computed by one thread with the same K blocking as the serial path, so the
 * result is bitwise independent of the thread count. */
#include "fclf_internal.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* KC = 320 keeps conv2's K = 288 in one block, so each C tile is stored once instead of loaded and stored
 * again for a second block: fclf-bench, 2 threads, conv2 forward at batch 32 (64x3872x288) went from 156
 * to 191-197 GFLOP/s (OpenBLAS AVX-512: 176-183). The B micro-panel (up to 40 KB) then overflows Zen 4's
 * 32 KB L1 into L2, which feeds its 8 uses per panel with room to spare. */
enum { KC = 320, MC = 96, NC = 2048, MR_MAX = 8, NR_MAX = 32 };

/* c = alpha*acc (+ beta*c when beta != 0), then + bias[i] per row when bias, then max(., 0) when relu: the
 * epilogue of a convolution, applied with its last K block. */
typedef void (*ukernel_fn)(int64_t kc, const float *restrict a, const float *restrict b, float *restrict c,
                           int64_t ldc, float alpha, float beta, const float *restrict bias, int relu);

typedef struct {
    int mr, nr;
    ukernel_fn kernel;
} gemm_variant;

/* ---- micro-kernels: acc = sum_p a[p*MR + i] * b[p*NR + j]; c = alpha*acc (+ beta*c when beta != 0) ---- */

static void ukernel_4x8__scalar(int64_t kc, const float *restrict a, const float *restrict b, float *restrict c,
                                int64_t ldc, float alpha, float beta, const float *restrict bias, int relu) {
    float acc[4][8] = {{0}};
    for (int64_t p = 0; p < kc; p++) {
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 8; j++) acc[i][j] += a[p * 4 + i] * b[p * 8 + j];
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) {
            float r = alpha * acc[i][j];
            if (beta != 0.0f) r = r + beta * c[i * ldc + j];
            if (bias) r = r + bias[i];
            if (relu) r = r > 0.0f ? r : 0.0f;
            c[i * ldc + j] = r;
        }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void ukernel_6x16__avx2(int64_t kc, const float *restrict a,
                                                                  const float *restrict b, float *restrict c,
                                                                  int64_t ldc, float alpha, float beta,
                                                                  const float *restrict bias, int relu) {
    __m256 acc[6][2];
    for (int i = 0; i < 6; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma clang loop unroll(full)
        for (int i = 0; i < 6; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += 6;
        b += 16;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (int i = 0; i < 6; i++)
        for (int h = 0; h < 2; h++) {
            __m256 r = _mm256_mul_ps(va, acc[i][h]);
            if (beta != 0.0f) r = _mm256_add_ps(r, _mm256_mul_ps(vb, _mm256_loadu_ps(c + i * ldc + 8 * h)));
            if (bias) r = _mm256_add_ps(r, _mm256_set1_ps(bias[i]));
            if (relu) r = _mm256_max_ps(r, _mm256_setzero_ps()); /* r > 0 ? r : 0, NaN to 0 */
            _mm256_storeu_ps(c + i * ldc + 8 * h, r);
        }
}

__attribute__((target("avx512f"))) static void ukernel_8x32__avx512f(int64_t kc, const float *restrict a,
                                                                    const float *restrict b, float *restrict c,
                                                                    int64_t ldc, float alpha, float beta,
                                                                    const float *restrict bias, int relu) {
    __m512 acc[8][2];
    for (int i = 0; i < 8; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma clang loop unroll(full)
        for (int i = 0; i < 8; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += 8;
        b += 32;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int i = 0; i < 8; i++)
        for (int h = 0; h < 2; h++) {
            __m512 r = _mm512_mul_ps(va, acc[i][h]);
            if (beta != 0.0f) r = _mm512_add_ps(r, _mm512_mul_ps(vb, _mm512_loadu_ps(c + i * ldc + 16 * h)));
            if (bias) r = _mm512_add_ps(r, _mm512_set1_ps(bias[i]));
            if (relu) r = _mm512_max_ps(r, _mm512_setzero_ps()); /* r > 0 ? r : 0, NaN to 0 */
            _mm512_storeu_ps(c + i * ldc + 16 * h, r);
        }
}
#endif

static gemm_variant variant_for(int isa) {
#if defined(__x86_64__)
    if (isa == FCLF_ISA_AVX512F) return (gemm_variant){8, 32, ukernel_8x32__avx512f};
    if (isa == FCLF_ISA_AVX2) return (gemm_variant){6, 16, ukernel_6x16__avx2};
#endif
    (void)isa;
    return (gemm_variant){4, 8, ukernel_4x8__scalar};
}

/* ---- packing ---- */

/* op(A)[i0 : i0+mc, p0 : p0+kc] -> MR-row panels, each kc x MR, rows past mc zero. */
static void pack_a(float *restrict dst, const float *restrict A, int64_t lda, int trans, int64_t i0, int64_t mc,
                   int64_t p0, int64_t kc, int mr) {
    for (int64_t ir = 0; ir < mc; ir += mr) {
        int64_t mb = fclf_min64(mr, mc - ir);
        float *d = dst + ir * kc;
        if (!trans) {
            for (int64_t i = 0; i < mb; i++) {
                const float *src = A + (i0 + ir + i) * lda + p0;
                for (int64_t p = 0; p < kc; p++) d[p * mr + i] = src[p];
            }
            for (int64_t i = mb; i < mr; i++)
                for (int64_t p = 0; p < kc; p++) d[p * mr + i] = 0.0f;
        } else {
            for (int64_t p = 0; p < kc; p++) {
                const float *src = A + (p0 + p) * lda + i0 + ir;
                for (int64_t i = 0; i < mb; i++) d[p * mr + i] = src[i];
                for (int64_t i = mb; i < mr; i++) d[p * mr + i] = 0.0f;
            }
        }
    }
}

/* op(B)[p0 : p0+kc, j0 : j0+nc] -> NR-column panels, each kc x NR, columns past nc zero. */
static void pack_b(float *restrict dst, const float *restrict B, int64_t ldb, int trans, int64_t p0, int64_t kc,
                   int64_t j0, int64_t nc, int nr) {
    for (int64_t jr = 0; jr < nc; jr += nr) {
        int64_t nb = fclf_min64(nr, nc - jr);
        float *d = dst + jr * kc;
        if (!trans) {
            for (int64_t p = 0; p < kc; p++) {
                const float *src = B + (p0 + p) * ldb + j0 + jr;
                for (int64_t j = 0; j < nb; j++) d[p * nr + j] = src[j];
                for (int64_t j = nb; j < nr; j++) d[p * nr + j] = 0.0f;
            }
        } else {
            for (int64_t j = 0; j < nb; j++) {
                const float *src = B + (j0 + jr + j) * ldb + p0;
                for (int64_t p = 0; p < kc; p++) d[p * nr + j] = src[p];
            }
            for (int64_t j = nb; j < nr; j++)
                for (int64_t p = 0; p < kc; p++) d[p * nr + j] = 0.0f;
        }
    }
}

/* Where an operand comes from: a stored matrix, or the im2col matrix of an NCHW batch x, never
 * materialised: col[k][j] = x[n][ci][oy+ki-pad_t][ox+kj-pad_l] (0 outside the image) for k = (ci, ki, kj)
 * and j = (n, oy, ox). As B it is the convolution's forward product, as A (not transposed) its weight
 * gradient. Packing straight from x skips writing and re-reading col (1.1M floats per 32 images for conv2);
 * the packed panels hold the same values, so results are bitwise those of the explicit path. */
typedef struct {
    const float *B; /* stored matrix, leading dimension ldb, transposed when trans */
    int64_t ldb;
    int trans;
    const float *x; /* implicit im2col when conv != NULL */
    const fclf_conv2d_shape *conv;
    int64_t origin; /* first column (as B) or first row (as A) of this part of the im2col matrix */
} operand;

/* One column j = (n, oy, ox) of the implicit im2col matrix: its image offset with the padding folded in. */
typedef struct { int64_t base, oy, ox; } im2col_column;
/* One row k = (ci, ki, kj): the offset of its tap from a column's base. */
typedef struct { int64_t off, ki, kj; } im2col_row;

static inline im2col_column column_of(const fclf_conv2d_shape *s, int64_t j) {
    const int64_t P = s->oh * s->ow, n = j / P, pix = j - n * P, oy = pix / s->ow, ox = pix - oy * s->ow;
    return (im2col_column){n * s->c * s->h * s->w + (oy - s->pad_t) * s->w + (ox - s->pad_l), oy, ox};
}

static inline im2col_row row_of(const fclf_conv2d_shape *s, int64_t k) {
    const int64_t KK = s->kh * s->kw, ci = k / KK, r = k - ci * KK, ki = r / s->kw, kj = r - ki * s->kw;
    return (im2col_row){ci * s->h * s->w + ki * s->w + kj, ki, kj};
}

/* Offsets of `count` consecutive entries of a two-level index, walking it instead of dividing for each
 * (two 64-bit divisions per row_of/column_of: 3 us of a 73 us single-image prediction): from (i1, i2) at
 * offset `at`, each step adds 1, plus jump1 when the inner index wraps at n1 and jump2 more when the outer
 * one wraps at n2 too. */
static void walk_offsets(int64_t at, int64_t i1, int64_t n1, int64_t jump1, int64_t i2, int64_t n2, int64_t jump2,
                         int64_t count, int64_t *restrict out) {
    for (int64_t q = 0; q < count; q++) {
        out[q] = at++;
        if (++i1 == n1) {
            i1 = 0;
            at += jump1;
            if (++i2 == n2) {
                i2 = 0;
                at += jump2;
            }
        }
    }
}

/* Tap offsets of rows k0 .. k0+count-1 (taps (ci, ki, kj): kj inner, then ki, then the next channel). */
static void row_offsets(const fclf_conv2d_shape *s, int64_t k0, int64_t count, int64_t *restrict off) {
    if (count <= 0) return;
    const im2col_row r = row_of(s, k0);
    walk_offsets(r.off, r.kj, s->kw, s->w - s->kw, r.ki, s->kh, s->h * s->w - s->kh * s->w, count, off);
}

/* Bases of columns j0 .. j0+count-1 (pixels (n, oy, ox): ox inner, then oy, then the next image). */
static void column_bases(const fclf_conv2d_shape *s, int64_t j0, int64_t count, int64_t *restrict base) {
    if (count <= 0) return;
    const im2col_column c = column_of(s, j0);
    walk_offsets(c.base, c.ox, s->ow, s->w - s->ow, c.oy, s->oh, s->c * s->h * s->w - s->oh * s->w, count, base);
}

/* col[k][j]: the input pixel under tap k of output pixel j, or 0 in the padding. */
static inline float tap(const fclf_conv2d_shape *s, const float *x, im2col_column c, im2col_row r) {
    const int64_t iy = c.oy + r.ki - s->pad_t, ix = c.ox + r.kj - s->pad_l;
    return (iy >= 0 && iy < s->h && ix >= 0 && ix < s->w) ? x[c.base + r.off] : 0.0f;
}

static void pack_b_im2col(float *restrict dst, const operand *bs, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
                          int nr) {
    const fclf_conv2d_shape *s = bs->conv;
    const float *x = bs->x;
    const int padded = s->pad_t != 0 || s->pad_l != 0;
    for (int64_t jr = 0; jr < nc; jr += nr) {
        const int64_t nb = fclf_min64(nr, nc - jr);
        float *d = dst + jr * kc;
        im2col_column col[NR_MAX];
        for (int64_t jj = 0; jj < nb; jj++) col[jj] = column_of(s, bs->origin + j0 + jr + jj);
        for (int64_t p = 0; p < kc; p++) {
            const im2col_row row = row_of(s, p0 + p);
            float *dp = d + p * nr;
            if (!padded) /* 'valid': every tap is inside the image */
                for (int64_t jj = 0; jj < nb; jj++) dp[jj] = x[col[jj].base + row.off];
            else
                for (int64_t jj = 0; jj < nb; jj++) dp[jj] = tap(s, x, col[jj], row);
            for (int64_t jj = nb; jj < nr; jj++) dp[jj] = 0.0f;
        }
    }
}

/* An operand's element (row r, column c of op(X)), for the out-of-memory fallback only. */
static float op_at(const operand *src, int is_a, int64_t r, int64_t c) {
    if (src->conv) {
        const int64_t k = is_a ? src->origin + r : r, j = is_a ? c : src->origin + c;
        return tap(src->conv, src->x, column_of(src->conv, j), row_of(src->conv, k));
    }
    return src->trans ? src->B[c * src->ldb + r] : src->B[r * src->ldb + c];
}

/* The A panels of the implicit im2col matrix (not transposed): rows k from origin + i0, columns j from p0. */
static void pack_a_im2col(float *restrict dst, const operand *as, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
                          int mr) {
    const fclf_conv2d_shape *s = as->conv;
    const float *x = as->x;
    const int padded = s->pad_t != 0 || s->pad_l != 0;
    im2col_column col[KC];
    for (int64_t p = 0; p < kc; p++) col[p] = column_of(s, p0 + p);
    for (int64_t ir = 0; ir < mc; ir += mr) {
        const int64_t mb = fclf_min64(mr, mc - ir);
        float *d = dst + ir * kc;
        for (int64_t i = 0; i < mb; i++) {
            const im2col_row row = row_of(s, as->origin + i0 + ir + i);
            if (!padded)
                for (int64_t p = 0; p < kc; p++) d[p * mr + i] = x[col[p].base + row.off];
            else
                for (int64_t p = 0; p < kc; p++) d[p * mr + i] = tap(s, x, col[p], row);
        }
        for (int64_t i = mb; i < mr; i++)
            for (int64_t p = 0; p < kc; p++) d[p * mr + i] = 0.0f;
    }
}

/* AVX-512 packers for the 8x32 variant. The portable packers above move one float per load and store, with
 * an index load for each im2col element; perf put packing at about 15% of a batch-32 training step. These
 * move the same values (so the products are unchanged) a vector at a time:
 *   - implicit B and A: 16 consecutive columns of a tap (runs of consecutive output pixels, up to ow long)
 *     are read as one window of x and a permute, or run by run (lanes16); B's panel rows are two such
 *     loads, A's 8 taps are transposed in registers;
 *   - stored A not transposed and stored B transposed (a panel's entries are rows of the matrix): the same
 *     register transposes (pack_rows_transposed);
 *   - stored A transposed and stored B not transposed: a panel row is one or two vector copies. */
#if defined(__x86_64__)
/* How 16 lanes read one tap's values of up to 16 consecutive columns of the implicit im2col matrix, whose
 * bases (offsets in x, less the tap's) are given. Usually the columns lie in a window of at most 32 floats
 * (conv2: 16 pixels span at most 3 output rows of 13): two loads and one permute. Otherwise (a group
 * crossing into the next image) one zero-masked load per run of consecutive pixels, joined by OR (disjoint
 * lanes; independent loads, not a chain of merges). Masked-off lanes never touch memory; lanes past the
 * columns are 0. */
typedef struct {
    int windowed, runs;
    int64_t lo;                   /* windowed: the window's first offset */
    __m512i perm;                 /* windowed: each lane's place in the window */
    __mmask16 keep, win0, win1;   /* windowed: lanes in use; the window's floats in each load */
    int64_t shift[16];            /* runs: lanes in mask[r] read x[tap + shift[r] + lane] */
    __mmask16 mask[16];
} lanes16;

__attribute__((target("avx512f"))) static void plan_lanes16(lanes16 *L, const int64_t *restrict bases, int64_t n) {
    L->runs = 0;
    L->windowed = 1;
    L->lo = 0;
    L->perm = _mm512_setzero_si512();
    L->keep = L->win0 = L->win1 = 0;
    if (n <= 0) return;
    int64_t mn = bases[0], mx = bases[0];
    for (int64_t q = 1; q < n; q++) {
        mn = bases[q] < mn ? bases[q] : mn;
        mx = bases[q] > mx ? bases[q] : mx;
    }
    if (mx - mn < 32) {
        int32_t idx[16] = {0};
        for (int64_t q = 0; q < n; q++) idx[q] = (int32_t)(bases[q] - mn);
        const int64_t span = mx - mn + 1;
        L->lo = mn;
        L->perm = _mm512_loadu_si512(idx);
        L->keep = fclf_lanes16(n);
        L->win0 = fclf_lanes16(span);
        L->win1 = fclf_lanes16(span - 16);
        return;
    }
    L->windowed = 0;
    for (int64_t q = 0; q < n;) {
        int64_t len = 1;
        while (q + len < n && bases[q + len] == bases[q] + len) len++;
        L->shift[L->runs] = bases[q] - q;
        L->mask[L->runs] = (__mmask16)(fclf_lanes16(len) << q);
        L->runs++;
        q += len;
    }
}

/* The 16 lanes for the tap whose values start at byte address `tap` (x plus the tap's offset). */
__attribute__((target("avx512f"), always_inline)) static inline __m512 load_lanes16(const lanes16 *L, uintptr_t tap) {
    if (L->windowed) {
        const uintptr_t at = tap + (uintptr_t)(L->lo * 4);
        return _mm512_maskz_permutex2var_ps(L->keep, _mm512_maskz_loadu_ps(L->win0, (const void *)at), L->perm,
                                            _mm512_maskz_loadu_ps(L->win1, (const void *)(at + 64)));
    }
    __m512i v = _mm512_setzero_si512();
    for (int r = 0; r < L->runs; r++)
        v = _mm512_or_si512(v, _mm512_maskz_loadu_epi32(L->mask[r], (const void *)(tap + (uintptr_t)(L->shift[r] * 4))));
    return _mm512_castsi512_ps(v);
}

/* Implicit B, 32 columns per panel: each half of a panel row is one lanes16 load, stored aligned (storing
 * each run whole, overlapping the next, split cache lines: the stores were the packer's cost). */
__attribute__((target("avx512f"))) static void pack_b_im2col__avx512f(float *restrict dst, const operand *bs,
                                                                       int64_t p0, int64_t kc, int64_t j0,
                                                                       int64_t nc) {
    const fclf_conv2d_shape *s = bs->conv;
    const uintptr_t x = (uintptr_t)bs->x;
    int64_t off[KC], bases[32];
    row_offsets(s, p0, kc, off);
    for (int64_t jr = 0; jr < nc; jr += 32) {
        const int64_t nb = fclf_min64(32, nc - jr);
        float *d = dst + jr * kc; /* 64-byte aligned, as is every 32-float row */
        column_bases(s, bs->origin + j0 + jr, nb, bases);
        lanes16 half[2];
        plan_lanes16(&half[0], bases, fclf_min64(16, nb));
        plan_lanes16(&half[1], bases + 16, nb - 16);
        for (int64_t p = 0; p < kc; p++) {
            const uintptr_t tap = x + (uintptr_t)(off[p] * 4);
            _mm512_store_ps(d + p * 32, load_lanes16(&half[0], tap));
            _mm512_store_ps(d + p * 32 + 16, load_lanes16(&half[1], tap));
        }
    }
}

/* Eight rows of 16 floats (one per tap) to 16 pixel-major groups of 8: d[q*stride + i] = r[i][q]. Three
 * shuffle stages instead of 128 scalar moves. stride 8 is an A panel (two pixels per 64-byte store); 32 is
 * 8 columns of a B panel. */
__attribute__((target("avx512f"), always_inline)) static inline void store_8x16_transposed(float *restrict d,
                                                                                         const __m512 r[8],
                                                                                         int64_t stride) {
    __m512 t[8], u[8];
    for (int k = 0; k < 4; k++) {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);     /* per 128-bit lane: r0 r1 of pixels 0, 1 */
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]); /* pixels 2, 3 */
    }
    for (int h = 0; h < 2; h++) { /* taps 0-3 (h = 0) and 4-7 (h = 1) */
        u[4 * h + 0] = _mm512_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);     /* pixel 4L+0 of each lane L */
        u[4 * h + 1] = _mm512_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);     /* pixel 4L+1 */
        u[4 * h + 2] = _mm512_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44); /* pixel 4L+2 */
        u[4 * h + 3] = _mm512_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE); /* pixel 4L+3 */
    }
    for (int q = 0; q < 4; q += 2) { /* pixel pairs (4L+q, 4L+q+1) */
        __m512 lo_a = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x44), lo_b = _mm512_shuffle_f32x4(u[q + 1], u[5 + q], 0x44);
        __m512 hi_a = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xEE), hi_b = _mm512_shuffle_f32x4(u[q + 1], u[5 + q], 0xEE);
        const __m512 pair[4] = {_mm512_shuffle_f32x4(lo_a, lo_b, 0x88), _mm512_shuffle_f32x4(lo_a, lo_b, 0xDD),
                                _mm512_shuffle_f32x4(hi_a, hi_b, 0x88), _mm512_shuffle_f32x4(hi_a, hi_b, 0xDD)};
        for (int k = 0; k < 4; k++) { /* pixels 4k+q and 4k+q+1 */
            float *p = d + (4 * k + q) * stride;
            if (stride == 8) {
                _mm512_storeu_ps(p, pair[k]);
            } else {
                _mm256_storeu_ps(p, _mm512_castps512_ps256(pair[k]));
                _mm256_storeu_ps(p + stride, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(pair[k]), 1)));
            }
        }
    }
}

/* Implicit A, 8 taps per panel: 16 pixels at a time, each tap's 16 values one lanes16 load, then
 * transposed. */
__attribute__((target("avx512f"))) static void pack_a_im2col__avx512f(float *restrict dst, const operand *as,
                                                                       int64_t i0, int64_t mc, int64_t p0,
                                                                       int64_t kc) {
    const fclf_conv2d_shape *s = as->conv;
    const uintptr_t x = (uintptr_t)as->x;
    int64_t offs[MC];
    int64_t bases[KC];
    row_offsets(s, as->origin + i0, mc, offs);
    column_bases(s, p0, kc, bases);
    for (int64_t q0 = 0; q0 < kc; q0 += 16) {
        const int64_t len = fclf_min64(16, kc - q0);
        lanes16 group;
        plan_lanes16(&group, bases + q0, len);
        for (int64_t ir = 0; ir < mc; ir += 8) {
            const int64_t mb = fclf_min64(8, mc - ir);
            __m512 r[8];
            for (int64_t i = 0; i < 8; i++)
                r[i] = i < mb ? load_lanes16(&group, x + (uintptr_t)(offs[ir + i] * 4)) : _mm512_setzero_ps();
            if (len == 16) {
                store_8x16_transposed(dst + ir * kc + q0 * 8, r, 8);
            } else { /* the panel's last pixels: the next panel already holds its first ones */
                float part[16 * 8] __attribute__((aligned(64)));
                store_8x16_transposed(part, r, 8);
                memcpy(dst + ir * kc + q0 * 8, part, (size_t)(len * 8) * sizeof(float));
            }
        }
    }
}

/* Stored A, transposed (op(A) = A^T, e.g. W^T in the input gradient): a panel row is 8 contiguous floats of A,
 * one masked copy (the portable loop became a memcpy call per 8 floats). */
__attribute__((target("avx512f"))) static void pack_a_trans__avx512f(float *restrict dst, const float *restrict A,
                                                                      int64_t lda, int64_t i0, int64_t mc, int64_t p0,
                                                                      int64_t kc) {
    for (int64_t ir = 0; ir < mc; ir += 8) {
        const int64_t mb = fclf_min64(8, mc - ir);
        const __mmask16 m = fclf_lanes16(mb);
        float *d = dst + ir * kc;
        for (int64_t p = 0; p < kc; p++)
            _mm256_storeu_ps(d + p * 8, _mm512_castps512_ps256(_mm512_maskz_loadu_ps(m, A + (p0 + p) * lda + i0 + ir)));
    }
}

/* Panels whose `width` (8 or 32) entries per row are `width` rows of a stored matrix M: stored A not
 * transposed (width 8) and stored B transposed (width 32). Panel (r0 + jr) row p holds M[r0 + jr + j][c0 + p]
 * for j < width, 0 past `rows`; 8 rows of 16 floats are loaded at a time and transposed in registers
 * (gathers cost about 2 cycles a float on Zen 4). */
__attribute__((target("avx512f"))) static void pack_rows_transposed__avx512f(float *restrict dst, const float *restrict M,
                                                                             int64_t ld, int64_t r0, int64_t rows,
                                                                             int64_t c0, int64_t kc, int width) {
    float part[16 * NR_MAX] __attribute__((aligned(64)));
    for (int64_t jr = 0; jr < rows; jr += width) {
        const int64_t nb = fclf_min64(width, rows - jr);
        float *d = dst + jr * kc;
        for (int64_t q0 = 0; q0 < kc; q0 += 16) {
            const int64_t len = fclf_min64(16, kc - q0);
            const __mmask16 m = fclf_lanes16(len);
            float *out = len == 16 ? d + q0 * width : part; /* a short last group: the next panel follows */
            for (int64_t jg = 0; jg < width; jg += 8) {
                __m512 r[8];
                for (int64_t i = 0; i < 8; i++)
                    r[i] = jg + i < nb ? _mm512_maskz_loadu_ps(m, M + (r0 + jr + jg + i) * ld + c0 + q0)
                                       : _mm512_setzero_ps();
                store_8x16_transposed(out + jg, r, width);
            }
            if (len < 16) memcpy(d + q0 * width, part, (size_t)(len * width) * sizeof(float));
        }
    }
}

__attribute__((target("avx512f"))) static void pack_b_plain__avx512f(float *restrict dst, const float *restrict B,
                                                                      int64_t ldb, int64_t p0, int64_t kc,
                                                                      int64_t j0, int64_t nc) {
    for (int64_t jr = 0; jr < nc; jr += 32) {
        const int64_t nb = fclf_min64(32, nc - jr);
        const __mmask16 m0 = fclf_lanes16(nb);
        const __mmask16 m1 = fclf_lanes16(nb - 16);
        float *d = dst + jr * kc;
        for (int64_t p = 0; p < kc; p++) {
            const float *src = B + (p0 + p) * ldb + j0 + jr;
            _mm512_storeu_ps(d + p * 32, _mm512_maskz_loadu_ps(m0, src));
            _mm512_storeu_ps(d + p * 32 + 16, _mm512_maskz_loadu_ps(m1, src + 16));
        }
    }
}

#endif

/* Per-thread packing buffers, grown on demand and then reused: steady-state training allocates nothing.
 * OpenMP worker threads live as long as the process, so the buffers do too. */
static _Thread_local float *tl_pack_a, *tl_pack_b;
static _Thread_local size_t tl_cap_a, tl_cap_b;

static float *scratch(float **buf, size_t *cap, size_t floats) {
    if (floats > *cap) {
        size_t bytes = (floats * sizeof(float) + 63) & ~(size_t)63;
        float *p = aligned_alloc(64, bytes);
        if (!p) return NULL;
        free(*buf);
        *buf = p;
        *cap = bytes / sizeof(float);
    }
    return *buf;
}

/* Equal K blocks (K = 400 runs as 2 x 200, not 320 + 80): a short last block pays a full load and store
 * of every C tile for little work. Depends on K only, so never on the thread count or on M and N. */
static int64_t kstep_for(int64_t K) {
    int64_t kblocks = (K + KC - 1) / KC;
    return (K + kblocks - 1) / kblocks;
}

/* Where C goes. Plain: element (i, j) at C[i*ldc + j]. Segmented (seg > 0): the columns come in groups of
 * seg, group g at C + g*seg_stride, so that a convolution's product [oc, n*P] lands straight in NCHW
 * (seg = P, seg_stride = oc*P, ldc = P) instead of a [oc, n, P] buffer that a second pass reorders. col0
 * is the first column's index in that layout (a thread's part starts inside it). bias (per row) and relu
 * are applied with the last K block. */
typedef struct {
    float *C;
    int64_t ldc, seg, seg_stride, col0;
    const float *bias;
    int relu;
} gemm_out;

static inline float *out_at(const gemm_out *o, int64_t i, int64_t j) {
    if (!o->seg) return o->C + i * o->ldc + j;
    const int64_t J = o->col0 + j, g = J / o->seg;
    return o->C + g * o->seg_stride + i * o->ldc + (J - g * o->seg);
}

static void gemm_serial(const gemm_variant *v, int64_t M, int64_t N, int64_t K, float alpha, const operand *as,
                        const operand *bs, float beta, const gemm_out *out) {
    const int mr = v->mr, nr = v->nr;
    int64_t ncap = fclf_min64(NC, (N + nr - 1) / nr * nr);
    float *apack = scratch(&tl_pack_a, &tl_cap_a, (size_t)MC * KC);
    float *bpack = scratch(&tl_pack_b, &tl_cap_b, (size_t)ncap * KC);
    if (!apack || !bpack) { /* out of memory: still give the right answer, slowly */
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double acc = 0.0;
                for (int64_t p = 0; p < K; p++) acc += (double)op_at(as, 1, i, p) * op_at(bs, 0, p, j);
                float *c = out_at(out, i, j);
                float r = (float)(alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * *c));
                if (out->bias) r = r + out->bias[i];
                if (out->relu) r = r > 0.0f ? r : 0.0f;
                *c = r;
            }
        return;
    }
    float tile[MR_MAX * NR_MAX] __attribute__((aligned(64)));
    const int64_t kstep = kstep_for(K);
#if defined(__x86_64__)
    const int wide = v->kernel == ukernel_8x32__avx512f;
#else
    const int wide = 0;
#endif
    for (int64_t jc = 0; jc < N; jc += NC) {
        int64_t nc = fclf_min64(NC, N - jc);
        for (int64_t pc = 0; pc < K; pc += kstep) {
            int64_t kc = fclf_min64(kstep, K - pc);
            float beta_k = pc == 0 ? beta : 1.0f;
            const int last = pc + kc >= K;
            if (wide && bs->conv && !(bs->conv->pad_t | bs->conv->pad_l))
                pack_b_im2col__avx512f(bpack, bs, pc, kc, jc, nc);
            else if (bs->conv)
                pack_b_im2col(bpack, bs, pc, kc, jc, nc, nr);
            else if (wide && bs->trans)
                pack_rows_transposed__avx512f(bpack, bs->B, bs->ldb, jc, nc, pc, kc, 32);
            else if (wide && !bs->trans)
                pack_b_plain__avx512f(bpack, bs->B, bs->ldb, pc, kc, jc, nc);
            else
                pack_b(bpack, bs->B, bs->ldb, bs->trans, pc, kc, jc, nc, nr);
            for (int64_t ic = 0; ic < M; ic += MC) {
                int64_t mc = fclf_min64(MC, M - ic);
                if (wide && as->conv && !(as->conv->pad_t | as->conv->pad_l))
                    pack_a_im2col__avx512f(apack, as, ic, mc, pc, kc);
                else if (as->conv)
                    pack_a_im2col(apack, as, ic, mc, pc, kc, mr);
                else if (wide && !as->trans)
                    pack_rows_transposed__avx512f(apack, as->B, as->ldb, ic, mc, pc, kc, 8);
                else if (wide)
                    pack_a_trans__avx512f(apack, as->B, as->ldb, ic, mc, pc, kc);
                else
                    pack_a(apack, as->B, as->ldb, as->trans, ic, mc, pc, kc, mr);
                for (int64_t jr = 0; jr < nc; jr += nr) {
                    int64_t nb = fclf_min64(nr, nc - jr);
                    /* A tile is stored straight when whole and, segmented, inside one group of columns. */
                    int64_t in_group = nb;
                    if (out->seg) {
                        const int64_t J = out->col0 + jc + jr;
                        in_group = out->seg - J % out->seg;
                    }
                    for (int64_t ir = 0; ir < mc; ir += mr) {
                        int64_t mb = fclf_min64(mr, mc - ir);
                        const float *bias = last && out->bias ? out->bias + ic + ir : NULL;
                        const int relu = last && out->relu;
                        const float *ap = apack + ir * kc, *bp = bpack + jr * kc;
                        if (mb == mr && nb == nr && nb <= in_group) {
                            v->kernel(kc, ap, bp, out_at(out, ic + ir, jc + jr), out->ldc, alpha, beta_k, bias, relu);
                        } else { /* compute whole, store the valid part with the same arithmetic as the kernel,
                                  * one run of columns per group (a quarter of conv2's tiles straddle two images) */
                            v->kernel(kc, ap, bp, tile, nr, alpha, 0.0f, NULL, 0);
                            for (int64_t j0 = 0, run; j0 < nb; j0 += run) {
                                run = j0 == 0 ? fclf_min64(nb, in_group) : fclf_min64(nb - j0, out->seg ? out->seg : nb);
                                float *c0 = out_at(out, ic + ir, jc + jr + j0);
                                for (int64_t i = 0; i < mb; i++) {
                                    float *c = c0 + i * out->ldc;
                                    const float *t = tile + i * nr + j0;
                                    for (int64_t j = 0; j < run; j++) {
                                        float r = t[j];
                                        if (beta_k != 0.0f) r = r + beta_k * c[j];
                                        if (bias) r = r + bias[i];
                                        if (relu) r = r > 0.0f ? r : 0.0f;
                                        c[j] = r;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/* Rows of C for a short op(A) (M < 4, e.g. one image through a dense layer), where an 8-row tile would
 * be mostly padding and packing W would cost more than the product (dense1's 1600 x 128 weights:
 * 820 KB per call). Per element the arithmetic is the micro-kernel's: the same K blocks, products
 * accumulated in p order with FMA (AVX2/AVX-512 variants) or unfused (portable variant), then
 * alpha * acc (+ beta * c). */
FCLF_CLONES static void gemm_rows(int fused, int ta, int64_t M, int64_t N, int64_t K, int64_t kstep, float alpha,
                                  const float *restrict A, int64_t lda, const float *restrict B, int64_t ldb,
                                  float beta, float *restrict C, int64_t ldc, float *restrict acc) {
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        for (int64_t pc = 0; pc < K; pc += kstep) {
            int64_t kc = fclf_min64(kstep, K - pc);
            float beta_k = pc == 0 ? beta : 1.0f;
            for (int64_t j = 0; j < N; j++) acc[j] = 0.0f;
            for (int64_t p = pc; p < pc + kc; p++) {
                const float a = ta ? A[p * lda + i] : A[i * lda + p], *b = B + p * ldb;
                if (fused)
                    for (int64_t j = 0; j < N; j++) acc[j] = __builtin_fmaf(a, b[j], acc[j]);
                else
                    for (int64_t j = 0; j < N; j++) acc[j] = acc[j] + a * b[j];
            }
            for (int64_t j = 0; j < N; j++) {
                float r = alpha * acc[j];
                c[j] = beta_k == 0.0f ? r : r + beta_k * c[j];
            }
        }
    }
}

static void scale_c(int64_t M, int64_t N, float beta, float *C, int64_t ldc) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

static void gemm_with(int isa, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                      int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

void fclf_sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    /* The active variant is supported by construction: no probe per call. */
    gemm_with(fclf_isa_active(), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* The shared driver: serial below FCLF_PAR_MIN_WORK or inside a parallel region, else one contiguous,
 * tile-aligned range of columns (or rows) per thread. */
static void gemm_drive(const gemm_variant *v, int64_t M, int64_t N, int64_t K, float alpha, const operand *as,
                       const operand *bs, float beta, const gemm_out *out) {
    int nt = FCLF_MAX_THREADS();
    if (nt <= 1 || 2.0 * (double)M * (double)N * (double)K < FCLF_PAR_MIN_WORK) {
        gemm_serial(v, M, N, K, alpha, as, bs, beta, out);
        return;
    }
    /* Split the operand whose packing would otherwise be repeated by every thread: splitting columns
     * repeats A's M x K packing, splitting rows repeats B's K x N. One image through conv2 (M = 64,
     * N = 121) split by rows packed all of B on both threads. Either split gives the same bits. */
    int64_t tiles_n = (N + v->nr - 1) / v->nr, tiles_m = (M + v->mr - 1) / v->mr;
    int split_n = tiles_n >= nt && (M <= N || tiles_m < nt);
#pragma omp parallel num_threads(nt)
    {
        int t = FCLF_THREAD_NUM(), T = FCLF_NUM_THREADS();
        int64_t tiles = split_n ? tiles_n : tiles_m, step = split_n ? v->nr : v->mr, extent = split_n ? N : M;
        int64_t lo = tiles * t / T * step, hi = fclf_min64(tiles * (t + 1) / T * step, extent);
        if (hi > lo) {
            /* This thread's columns of op(B) (or rows of op(A)): an offset into a stored matrix, or a new
             * origin in the implicit one. */
            operand part = split_n ? *bs : *as;
            if (part.conv) part.origin += lo;
            else part.B = (split_n ? part.trans : !part.trans) ? part.B + lo * part.ldb : part.B + lo;
            gemm_out mine = *out;
            if (split_n) {
                if (mine.seg) mine.col0 += lo;
                else mine.C += lo;
                gemm_serial(v, M, hi - lo, K, alpha, as, &part, beta, &mine);
            } else {
                mine.C += lo * mine.ldc;
                if (mine.bias) mine.bias += lo;
                gemm_serial(v, hi - lo, N, K, alpha, &part, bs, beta, &mine);
            }
        }
    }
}

void fclf_sgemm_isa(int isa, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                    int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    gemm_with(fclf_isa_supported(isa) ? isa : FCLF_ISA_SCALAR, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void gemm_with(int isa, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                      int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    gemm_variant v = variant_for(isa);
    if (M < 4 && !tb) {
        float *acc = scratch(&tl_pack_b, &tl_cap_b, (size_t)N);
        if (acc) {
            gemm_rows(isa != FCLF_ISA_SCALAR, ta, M, N, K, kstep_for(K), alpha, A, lda, B, ldb, beta, C, ldc, acc);
            return;
        }
    }
    operand as = {A, lda, ta, NULL, NULL, 0}, bs = {B, ldb, tb, NULL, NULL, 0};
    gemm_out out = {C, ldc, 0, 0, 0, NULL, 0};
    gemm_drive(&v, M, N, K, alpha, &as, &bs, beta, &out);
}

void fclf_sgemm_conv_forward(const float *w, const float *x, const float *col, fclf_conv2d_shape s, const float *bias,
                             int relu, float *y) {
    const int64_t P = s.oh * s.ow, N = s.n * P, K = s.c * s.kh * s.kw;
    if (s.oc <= 0 || N <= 0) return;
    gemm_variant v = variant_for(fclf_isa_active());
    operand as = {w, K, 0, NULL, NULL, 0};
    operand bs = col ? (operand){col, N, 0, NULL, NULL, 0} : (operand){NULL, 0, 0, x, &s, 0};
    gemm_out out = {y, P, P, s.oc * P, 0, bias, relu};
    gemm_drive(&v, s.oc, N, K, 1.0f, &as, &bs, 0.0f, &out);
}

void fclf_sgemm_im2col_a(const float *x, fclf_conv2d_shape s, int64_t N, const float *B, int64_t ldb, int tb, float *C,
                         int64_t ldc) {
    const int64_t M = s.c * s.kh * s.kw, K = s.n * s.oh * s.ow;
    if (M <= 0 || N <= 0) return;
    gemm_variant v = variant_for(fclf_isa_active());
    operand as = {NULL, 0, 0, x, &s, 0}, bs = {B, ldb, tb, NULL, NULL, 0};
    gemm_out out = {C, ldc, 0, 0, 0, NULL, 0};
    gemm_drive(&v, M, N, K, 1.0f, &as, &bs, 0.0f, &out);
}

void fclf_sgemm_ref(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                    const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0.0;
            for (int64_t p = 0; p < K; p++) {
                double a = ta ? A[p * lda + i] : A[i * lda + p];
                double b = tb ? B[j * ldb + p] : B[p * ldb + j];
                s += a * b;
            }
            double r = (double)alpha * s;
            C[i * ldc + j] = (float)(beta == 0.0f ? r : r + (double)beta * C[i * ldc + j]);
        }
}
