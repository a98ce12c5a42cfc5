/* avx512.c: the AVX-512F GEMM variant, 8 x 32 (16 zmm accumulators: 2 FMA pipes x 4-cycle latency need
 * >= 8 in flight), and its vector packers. */
#include "gemm.h"
#include "../conv/im2col.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

/* An 8 x 32 tile, B's 32 floats advancing ldb a K step: 32 in a packed panel, B's row stride read in place. */
__attribute__((target("avx512f"), always_inline)) static inline void tile_8x32__avx512f(int64_t kc,
                                                                                      const float *restrict a,
                                                                                      const float *restrict b,
                                                                                      int64_t ldb, float *restrict c,
                                                                                      int64_t ldc, float alpha,
                                                                                      float beta,
                                                                                      const float *restrict bias,
                                                                                      int relu) {
    __m512 acc[8][2];
    /* C's 16 lines asked for while the K loop runs: a later K block reads them back (beta 1) and every block
     * stores them, and in a large product they have left the caches since (square 2048, Zen 4: 187-188 ->
     * 202-203 GFLOP/s, old and new alternated; no bit changes). */
    for (int i = 0; i < 8; i++) {
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
    }
    for (int64_t p = 0; p < kc; p++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma clang loop unroll(full)
        for (int i = 0; i < 8; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += 8;
        b += ldb;
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

__attribute__((target("avx512f"))) static void ukernel_8x32__avx512f(int64_t kc, const float *restrict a,
                                                                    const float *restrict b, float *restrict c,
                                                                    int64_t ldc, float alpha, float beta,
                                                                    const float *restrict bias, int relu) {
    tile_8x32__avx512f(kc, a, b, 32, c, ldc, alpha, beta, bias, relu);
}

/* The micro-kernel reading B in place (gemm.h): whole tiles only, since this variant has no edge or pair kernel
 * (the driver computes a short row tile whole into a buffer). */
__attribute__((target("avx512f"))) static void in_place_x32__avx512f(int mb, int e, int64_t kc, const float *restrict a,
                                                                    const float *restrict b, int64_t ldb,
                                                                    float *restrict c, int64_t ldc, float alpha,
                                                                    float beta, const float *restrict bias, int relu) {
    (void)mb, (void)e;
    tile_8x32__avx512f(kc, a, b, ldb, c, ldc, alpha, beta, bias, relu);
}

/* AVX-512 packers for the 8x32 variant. The portable packers (scalar.c) move one float per load and store, with
 * an index load for each im2col element; perf put packing at about 15% of a batch-32 training step. These
 * move the same values (so the products are unchanged) a vector at a time:
 *   - implicit B and A: 16 consecutive columns of a tap (runs of consecutive output pixels, up to ow long)
 *     are read as one window of x and a permute, or run by run (lanes16); B's panel rows are two such
 *     loads, A's 8 taps are transposed in registers;
 *   - stored A not transposed and stored B transposed (a panel's entries are rows of the matrix): the same
 *     register transposes (pack_rows_transposed);
 *   - stored A transposed and stored B not transposed: a panel row is one or two vector copies. */

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
__attribute__((target("avx512f"))) static void pack_b_im2col__avx512f(float *restrict dst, const fclf_gemm_operand *bs,
                                                                       int64_t p0, int64_t kc, int64_t j0,
                                                                       int64_t nc) {
    const fclf_conv2d_shape *s = bs->conv;
    const uintptr_t x = (uintptr_t)bs->x;
    int64_t off[FCLF_GEMM_KC_MAX], bases[32];
    fclf_im2col_row_offsets(s, p0, kc, off);
    for (int64_t jr = 0; jr < nc; jr += 32) {
        const int64_t nb = fclf_min64(32, nc - jr);
        float *d = dst + jr * kc; /* 64-byte aligned, as is every 32-float row */
        fclf_im2col_column_bases(s, bs->origin + j0 + jr, nb, bases);
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
__attribute__((target("avx512f"))) static void pack_a_im2col__avx512f(float *restrict dst, const fclf_gemm_operand *as,
                                                                       int64_t i0, int64_t mc, int64_t p0,
                                                                       int64_t kc) {
    const fclf_conv2d_shape *s = as->conv;
    const uintptr_t x = (uintptr_t)as->x;
    int64_t offs[FCLF_GEMM_MC_MAX];
    int64_t bases[FCLF_GEMM_KC_MAX];
    fclf_im2col_row_offsets(s, as->origin + i0, mc, offs);
    fclf_im2col_column_bases(s, p0, kc, bases);
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
    float part[16 * FCLF_GEMM_NR_MAX] __attribute__((aligned(64)));
    for (int64_t jr = 0; jr < rows; jr += width) {
        const int64_t nb = fclf_min64(width, rows - jr);
        float *d = dst + jr * kc;
        for (int64_t q0 = 0; q0 < kc; q0 += 16) {
            const int64_t len = fclf_min64(16, kc - q0);
            const __mmask16 m = fclf_lanes16(len);
            float *out = len == 16 ? d + q0 * width : part; /* a short last group: the next panel follows */
            for (int64_t jg = 0; jg < width; jg += 8) {
                __m512 r[8];
                /* The line four ahead of each row: the rows are ld apart (dz^T: 62 KB at b128), 32 streams in
                 * step, more than the prefetchers track (perf: 5.6% -> 4% of a b128 training step). And into L2
                 * the same place of the next K block, which this panel's rows are packed from next, a whole
                 * block of panels later: a long-K operand (conv2's col at b128, 288 x 15488, 18 MB) comes
                 * from memory, and packing it had been 37% of that product's time (the micro-kernel 50%). */
                for (int64_t i = 0; i < 8; i++) {
                    if (jg + i < nb) {
                        _mm_prefetch((const char *)(M + (r0 + jr + jg + i) * ld + c0 + q0 + 64), _MM_HINT_T0);
                        _mm_prefetch((const char *)(M + (r0 + jr + jg + i) * ld + c0 + q0 + kc), _MM_HINT_T1);
                    }
                    r[i] = jg + i < nb ? _mm512_maskz_loadu_ps(m, M + (r0 + jr + jg + i) * ld + c0 + q0)
                                       : _mm512_setzero_ps();
                }
                store_8x16_transposed(out + jg, r, width);
            }
            if (len < 16) memcpy(d + q0 * width, part, (size_t)(len * width) * sizeof(float));
        }
    }
}

__attribute__((target("avx512f"))) static void pack_b_plain__avx512f(float *restrict dst, const float *restrict B,
                                                                      int64_t ldb, int64_t p0, int64_t kc,
                                                                      int64_t j0, int64_t nc) {
    const int64_t whole = nc / 32 * 32;
    const __mmask16 m0 = fclf_lanes16(nc - whole), m1 = fclf_lanes16(nc - whole - 16);
    for (int64_t p = 0; p < kc; p++) { /* a row of B at a time, as pack_b_plain__avx2 */
        const float *src = B + (p0 + p) * ldb + j0;
        float *d = dst + p * 32;
        if (p + 1 < kc)
            for (int64_t jr = 0; jr < fclf_min64(nc, 64); jr += 16)
                _mm_prefetch((const char *)(src + ldb + jr), _MM_HINT_T0);
        for (int64_t jr = 0; jr < whole; jr += 32)
            for (int h = 0; h < 2; h++) {
                _mm_prefetch((const char *)(src + jr + 16 * h + 64), _MM_HINT_T0); /* as pack_b_plain__avx2 */
                _mm512_storeu_ps(d + jr * kc + 16 * h, _mm512_loadu_ps(src + jr + 16 * h));
            }
        if (whole < nc) { /* the partial panel, its columns past nc zero */
            _mm512_storeu_ps(d + whole * kc, _mm512_maskz_loadu_ps(m0, src + whole));
            _mm512_storeu_ps(d + whole * kc + 16, _mm512_maskz_loadu_ps(m1, src + whole + 16));
        }
    }
}

/* The table's packers, one per kind of operand (fclf_gemm_pack_kind_of). */
static void pack_a__avx512f(float *restrict dst, const fclf_gemm_operand *a, int64_t i0, int64_t mc, int64_t p0,
                            int64_t kc) {
    switch (fclf_gemm_pack_kind_of(a, 0)) {
    case FCLF_PACK_IM2COL: pack_a_im2col__avx512f(dst, a, i0, mc, p0, kc); break;
    case FCLF_PACK_PORTABLE: fclf_gemm_pack_a_portable(dst, a, i0, mc, p0, kc, 8); break;
    case FCLF_PACK_ROWS: pack_rows_transposed__avx512f(dst, a->m, a->ld, i0, mc, p0, kc, 8); break;
    case FCLF_PACK_CONTIGUOUS: pack_a_trans__avx512f(dst, a->m, a->ld, i0, mc, p0, kc); break;
    }
}

static void pack_b__avx512f(float *restrict dst, const fclf_gemm_operand *b, int64_t p0, int64_t kc, int64_t j0,
                            int64_t nc) {
    switch (fclf_gemm_pack_kind_of(b, 1)) {
    case FCLF_PACK_IM2COL: pack_b_im2col__avx512f(dst, b, p0, kc, j0, nc); break;
    case FCLF_PACK_PORTABLE: fclf_gemm_pack_b_portable(dst, b, p0, kc, j0, nc, 32); break;
    case FCLF_PACK_ROWS: pack_rows_transposed__avx512f(dst, b->m, b->ld, j0, nc, p0, kc, 32); break;
    case FCLF_PACK_CONTIGUOUS: pack_b_plain__avx512f(dst, b->m, b->ld, p0, kc, j0, nc); break;
    }
}

/* The short-M rows (one image through a dense layer: 1 x 128 from K = 1600 for dense1) in strips of 128
 * columns held in 8 registers over a whole K block. The portable loop kept its sums in memory, a load and
 * a store per FMA (fclf-profile infer: dense1 19 us per image). The same FMAs in the same order, except that
 * a row's zero entries of op(A) are skipped: after a ReLU and a pooling most of a dense layer's inputs are
 * exactly 0, and a row of B is 512 bytes read for nothing (dense1 reads 820 KB per image, from L2 at best).
 * For finite B, acc + 0 * b is acc, so the sums keep their bits; the one exception is the sign of a sum that
 * is exactly 0 after a product underflowed to -0 (0 * b would have made it +0). NaN entries are kept. */
enum { ROW_STRIP = 128 };
__attribute__((target("avx512f"))) static void rows__avx512f(int ta, int64_t M, int64_t N, int64_t K, int64_t kstep,
                                                             float alpha, const float *restrict A, int64_t lda,
                                                             const float *restrict B, int64_t ldb, float beta,
                                                             float *restrict C, int64_t ldc) {
    int32_t nonzero[FCLF_GEMM_KC_MAX];
    for (int64_t i = 0; i < M; i++)
        for (int64_t pc = 0; pc < K; pc += kstep) {
            const int64_t kc = fclf_min64(kstep, K - pc);
            const float beta_k = pc == 0 ? beta : 1.0f;
            /* the block's nonzero entries of row i, in order (NaN != 0 holds) */
            int64_t count = 0;
            if (!ta)
                for (int64_t p = 0; p < kc; p += 16) {
                    const __mmask16 live = fclf_lanes16(kc - p);
                    const __m512 a = _mm512_maskz_loadu_ps(live, A + i * lda + pc + p);
                    const __mmask16 nz = _mm512_mask_cmp_ps_mask(live, a, _mm512_setzero_ps(), _CMP_NEQ_UQ);
                    const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32((int32_t)(pc + p)),
                                                         _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0));
                    _mm512_mask_compressstoreu_epi32(nonzero + count, nz, idx);
                    count += __builtin_popcount(nz);
                }
            else
                for (int64_t p = pc; p < pc + kc; p++) {
                    nonzero[count] = (int32_t)p;
                    count += A[p * lda + i] != 0.0f;
                }
            for (int64_t j0 = 0; j0 < N; j0 += ROW_STRIP) {
                __mmask16 m[8];
                for (int v = 0; v < 8; v++) m[v] = fclf_lanes16(N - j0 - 16 * v);
                float *c = C + i * ldc + j0;
                __m512 acc[8];
                for (int v = 0; v < 8; v++) acc[v] = _mm512_setzero_ps();
                for (int64_t q = 0; q < count; q++) {
                    const int64_t p = nonzero[q];
                    const __m512 a = _mm512_set1_ps(ta ? A[p * lda + i] : A[i * lda + p]);
                    const float *b = B + p * ldb + j0;
                    for (int v = 0; v < 8; v++) acc[v] = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m[v], b + 16 * v), acc[v]);
                }
                for (int v = 0; v < 8; v++) {
                    __m512 r = _mm512_mul_ps(_mm512_set1_ps(alpha), acc[v]);
                    if (beta_k != 0.0f)
                        r = _mm512_add_ps(r, _mm512_mul_ps(_mm512_set1_ps(beta_k), _mm512_maskz_loadu_ps(m[v], c + 16 * v)));
                    _mm512_mask_storeu_ps(c + 16 * v, m[v], r);
                }
            }
        }
}

const fclf_gemm_kernel fclf_gemm_avx512f = {FCLF_ISA_AVX512F, 8, 32, 1, ukernel_8x32__avx512f, NULL, NULL, pack_a__avx512f,
                                            pack_b__avx512f, rows__avx512f, in_place_x32__avx512f};
#endif
