/* avx2.c: the AVX2 + FMA GEMM variant, 6 x 16 (12 ymm accumulators, BLIS's Haswell shape, 15 of 16
 * registers), and its packers. */
#include "gemm.h"
#include "../conv/im2col.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

/* mb rows of a 6 x 16 tile (mb and split constants once inlined): rows i < split read A's panel at a (row i of
 * it), rows from split on the panel at a2 (row i - split of it); both panels advance 6 floats a K step, and B's
 * 16 floats advance ldb (16 in a packed panel, B's row stride read in place). As the
 * micro-kernel (mb = split = 6), as the edge kernel for the last row tile of an M that 6 does not divide (64 =
 * 10 x 6 + 4), and as the pair kernel's halves (below). Each row's arithmetic is the same in all of them: the
 * same FMAs in p order, the same epilogue. */
__attribute__((target("avx2,fma"), always_inline)) static inline void rows_x16__avx2(const int mb, const int split, int64_t kc,
                                                                                   const float *restrict a,
                                                                                   const float *restrict a2,
                                                                                   const float *restrict b,
                                                                                   int64_t ldb,
                                                                                   float *restrict c, int64_t ldc,
                                                                                   float alpha, float beta,
                                                                                   const float *restrict bias, int relu) {
    __m256 acc[6][2];
    /* C's rows asked for while the K loop runs, as the AVX-512 kernel does (16 floats: one line, or two when
     * the row does not start on one) */
    for (int i = 0; i < mb; i++) {
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 15), _MM_HINT_T0);
    }
    for (int64_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma clang loop unroll(full)
        for (int i = 0; i < mb; i++) {
            __m256 ai = _mm256_broadcast_ss(i < split ? a + i : a2 + (i - split));
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += 6;
        a2 += 6;
        b += ldb;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (int i = 0; i < mb; i++)
        for (int h = 0; h < 2; h++) {
            __m256 r = _mm256_mul_ps(va, acc[i][h]);
            if (beta != 0.0f) r = _mm256_add_ps(r, _mm256_mul_ps(vb, _mm256_loadu_ps(c + i * ldc + 8 * h)));
            if (bias) r = _mm256_add_ps(r, _mm256_set1_ps(bias[i]));
            if (relu) r = _mm256_max_ps(r, _mm256_setzero_ps()); /* r > 0 ? r : 0, NaN to 0 */
            _mm256_storeu_ps(c + i * ldc + 8 * h, r);
        }
}

__attribute__((target("avx2,fma"))) static void ukernel_6x16__avx2(int64_t kc, const float *restrict a,
                                                                  const float *restrict b, float *restrict c,
                                                                  int64_t ldc, float alpha, float beta,
                                                                  const float *restrict bias, int relu) {
    rows_x16__avx2(6, 6, kc, a, a, b, 16, c, ldc, alpha, beta, bias, relu);
}

/* The short last row tile alone: 4 rows keep 8 accumulators, enough for both FMA pipes (4-cycle latency), so
 * that tile costs 4/6 of a whole one. */
__attribute__((target("avx2,fma"), always_inline)) static inline void edge_rows__avx2(int mb, int64_t kc,
                                                                                    const float *restrict a,
                                                                                    const float *restrict b, int64_t ldb,
                                                                                    float *restrict c, int64_t ldc,
                                                                                    float alpha, float beta,
                                                                                    const float *restrict bias, int relu) {
    switch (mb) {
    case 1: rows_x16__avx2(1, 1, kc, a, a, b, ldb, c, ldc, alpha, beta, bias, relu); break;
    case 2: rows_x16__avx2(2, 2, kc, a, a, b, ldb, c, ldc, alpha, beta, bias, relu); break;
    case 3: rows_x16__avx2(3, 3, kc, a, a, b, ldb, c, ldc, alpha, beta, bias, relu); break;
    case 4: rows_x16__avx2(4, 4, kc, a, a, b, ldb, c, ldc, alpha, beta, bias, relu); break;
    default: rows_x16__avx2(5, 5, kc, a, a, b, ldb, c, ldc, alpha, beta, bias, relu); break; /* 5: column_panel asks for 1-5 */
    }
}

__attribute__((target("avx2,fma"))) static void edge_x16__avx2(int mb, int64_t kc, const float *restrict a,
                                                              const float *restrict b, float *restrict c, int64_t ldc,
                                                              float alpha, float beta, const float *restrict bias,
                                                              int relu) {
    edge_rows__avx2(mb, kc, a, b, 16, c, ldc, alpha, beta, bias, relu);
}

/* The last whole row tile and a short one of e = 1-3 rows after it (M = 32 = 5 x 6 + 2, 128 = 21 x 6 + 2: a dense
 * layer at batch 32 or 128), as two tiles of 6 + e rows between them. Alone, e rows keep 2e accumulators, fewer
 * than the 8 the FMA pipes need in flight, so each K step waits on the latency (4 cycles for 1-3 rows, against 6
 * for a whole tile's 12 FMAs: 6 + 2 rows cost 10 cycles a step); as 4 + 4 rows they cost 8. The second half
 * takes the whole tile's last rows and the short panel's first. */
__attribute__((target("avx2,fma"), always_inline)) static inline void pair_rows__avx2(int e, int64_t kc,
                                                                                    const float *restrict a,
                                                                                    const float *restrict b, int64_t ldb,
                                                                                    float *restrict c, int64_t ldc,
                                                                                    float alpha, float beta,
                                                                                    const float *restrict bias, int relu) {
    const float *a2 = a + 6 * kc; /* the short tile's panel */
    const int h = e == 3 ? 5 : 4; /* the first half's rows: 4 + 3, 4 + 4, 5 + 4 */
    const float *bias2 = bias ? bias + h : NULL;
    if (h == 4) rows_x16__avx2(4, 4, kc, a, a, b, ldb, c, ldc, alpha, beta, bias, relu);
    else rows_x16__avx2(5, 5, kc, a, a, b, ldb, c, ldc, alpha, beta, bias, relu);
    c += h * ldc;
    switch (e) {
    case 1: rows_x16__avx2(3, 2, kc, a + 4, a2, b, ldb, c, ldc, alpha, beta, bias2, relu); break; /* rows 4, 5 | 0 */
    case 2: rows_x16__avx2(4, 2, kc, a + 4, a2, b, ldb, c, ldc, alpha, beta, bias2, relu); break; /* rows 4, 5 | 0, 1 */
    default: rows_x16__avx2(4, 1, kc, a + 5, a2, b, ldb, c, ldc, alpha, beta, bias2, relu); break; /* row 5 | 0, 1, 2 */
    }
}

__attribute__((target("avx2,fma"))) static void pair_x16__avx2(int e, int64_t kc, const float *restrict a,
                                                              const float *restrict b, float *restrict c, int64_t ldc,
                                                              float alpha, float beta, const float *restrict bias,
                                                              int relu) {
    pair_rows__avx2(e, kc, a, b, 16, c, ldc, alpha, beta, bias, relu);
}

/* The three kernels above reading B in place (gemm.h), each row's FMAs as theirs. */
__attribute__((target("avx2,fma"))) static void in_place_x16__avx2(int mb, int e, int64_t kc, const float *restrict a,
                                                                  const float *restrict b, int64_t ldb,
                                                                  float *restrict c, int64_t ldc, float alpha,
                                                                  float beta, const float *restrict bias, int relu) {
    if (e > 0) pair_rows__avx2(e, kc, a, b, ldb, c, ldc, alpha, beta, bias, relu);
    else if (mb == 6) rows_x16__avx2(6, 6, kc, a, a, b, ldb, c, ldc, alpha, beta, bias, relu);
    else edge_rows__avx2(mb, kc, a, b, ldb, c, ldc, alpha, beta, bias, relu);
}

/* AVX2 packers. The portable ones move one float per load and store, with an index load for each im2col
 * element. Forced onto this variant (FCLF_ISA=avx2) on a Zen 4, whose AVX2 FMA peak equals its AVX-512 one,
 * conv2's weight-gradient product at batch 32 ran at 150 GFLOP/s against 189 for the AVX-512 variant. These
 * move the same values (the products are unchanged) 8 at a time:
 *   - implicit A and B: 8 consecutive columns of a tap are one run of x, or two where they cross an output
 *     row, each one load (lanes8); B's panel rows are two such loads, A's 6 taps are transposed;
 *   - stored A not transposed and stored B transposed (a panel's entries are rows of the matrix): the same
 *     8 x 8 register transposes;
 *   - stored A transposed and stored B not transposed: a panel row is contiguous; B's whole panels are copied
 *     with plain loads a row of B at a time, A's rows and a partial panel's with masked loads. */

/* How 8 lanes read one tap's values of up to 8 consecutive columns of the implicit im2col matrix, whose bases
 * (offsets in x, less the tap's) are given, one load per run of consecutive offsets. Conv2's output rows are
 * 11 or 12 pixels long, so 8 columns are one or two runs.
 *   - A full group (8 columns): plain loads, each run's lanes blended in. Bases rise by at least 1 per
 *     column, so every lane of every run's 8-float load lies between the group's first and last value of
 *     the tap, inside x. VMASKMOVPS cost a Zen 4 more than twice the plain load and blend.
 *   - A short group (a panel's last columns): one masked load per run, joined by OR (disjoint lanes).
 *     Masked-off lanes never touch memory (VMASKMOVPS does not fault on them); lanes past the columns are 0. */
typedef struct {
    int runs, full;
    int64_t shift[8]; /* run r: lanes in mask[r] read x[tap + shift[r] + lane] */
    __m256i mask[8];
} lanes8;

__attribute__((target("avx2"))) static void plan_lanes8(lanes8 *L, const int64_t *restrict bases, int64_t n) {
    L->runs = 0;
    L->full = n == 8;
    for (int64_t q = 0; q < n;) {
        int64_t len = 1;
        while (q + len < n && bases[q + len] == bases[q] + len) len++;
        L->shift[L->runs] = bases[q] - q;
        L->mask[L->runs] = _mm256_andnot_si256(fclf_lanes8(q), fclf_lanes8(q + len));
        L->runs++;
        q += len;
    }
}

/* The lanes for the tap whose values start at byte address `tap` (x plus the tap's offset). */
__attribute__((target("avx2"), always_inline)) static inline __m256 load_lanes8(const lanes8 *L, uintptr_t tap) {
    if (L->full) {
        __m256 v = _mm256_loadu_ps((const float *)(tap + (uintptr_t)(L->shift[0] * 4)));
        for (int r = 1; r < L->runs; r++)
            v = _mm256_blendv_ps(v, _mm256_loadu_ps((const float *)(tap + (uintptr_t)(L->shift[r] * 4))),
                                 _mm256_castsi256_ps(L->mask[r]));
        return v;
    }
    __m256 v = _mm256_setzero_ps();
    for (int r = 0; r < L->runs; r++)
        v = _mm256_or_ps(v, _mm256_maskload_ps((const float *)(tap + (uintptr_t)(L->shift[r] * 4)), L->mask[r]));
    return v;
}

/* r[i] holds 8 values of row i; afterwards r[q] holds value q of every row (an 8 x 8 transpose). */
__attribute__((target("avx2"), always_inline)) static inline void transpose8x8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int k = 0; k < 4; k++) {
        t[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    for (int h = 0; h < 2; h++) { /* rows 0-3 (h = 0) and 4-7 */
        u[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
        u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);
        u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
        u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
    }
    for (int q = 0; q < 4; q++) {
        r[q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x20);
        r[q + 4] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x31);
    }
}

/* An A panel's entries for `len` (<= 8) consecutive K positions from r[i] = 8 values of panel row i (rows
 * 6 and 7 unused): transposed, then 6 floats per position. Each 8-float store runs 2 floats into the next
 * position, which is written after it; only the panel's last position (`ends`), whose next floats belong to
 * another panel, is copied exactly. (Masked stores are microcoded on AMD's cores.) */
__attribute__((target("avx2"), always_inline)) static inline void store_a_positions(float *restrict d, __m256 r[8],
                                                                                    int64_t len, int ends) {
    transpose8x8(r);
    const int64_t full = ends ? len - 1 : len;
    for (int64_t q = 0; q < full; q++) _mm256_storeu_ps(d + q * 6, r[q]);
    if (ends) {
        float last[8];
        _mm256_storeu_ps(last, r[len - 1]);
        memcpy(d + (len - 1) * 6, last, 6 * sizeof(float));
    }
}

/* Implicit A, 6 taps per panel: 8 pixels at a time, each tap's 8 values one lanes8 load, then transposed. */
__attribute__((target("avx2"))) static void pack_a_im2col__avx2(float *restrict dst, const fclf_gemm_operand *as,
                                                                 int64_t i0, int64_t mc, int64_t p0, int64_t kc) {
    const fclf_conv2d_shape *s = as->conv;
    const uintptr_t x = (uintptr_t)as->x;
    int64_t offs[FCLF_GEMM_MC_MAX];
    int64_t bases[FCLF_GEMM_KC_MAX];
    fclf_im2col_row_offsets(s, as->origin + i0, mc, offs);
    fclf_im2col_column_bases(s, p0, kc, bases);
    for (int64_t q0 = 0; q0 < kc; q0 += 8) {
        const int64_t len = fclf_min64(8, kc - q0);
        lanes8 group;
        plan_lanes8(&group, bases + q0, len);
        for (int64_t ir = 0; ir < mc; ir += 6) {
            const int64_t mb = fclf_min64(6, mc - ir);
            __m256 r[8];
            for (int64_t i = 0; i < 8; i++)
                r[i] = i < mb ? load_lanes8(&group, x + (uintptr_t)(offs[ir + i] * 4)) : _mm256_setzero_ps();
            store_a_positions(dst + ir * kc + q0 * 6, r, len, q0 + len == kc);
        }
    }
}

/* Stored A transposed (op(A) = A^T): a panel row is 6 contiguous floats of A. */
__attribute__((target("avx2"))) static void pack_a_trans__avx2(float *restrict dst, const float *restrict A, int64_t lda,
                                                                int64_t i0, int64_t mc, int64_t p0, int64_t kc) {
    for (int64_t ir = 0; ir < mc; ir += 6) {
        const __m256i m = fclf_lanes8(fclf_min64(6, mc - ir));
        float *d = dst + ir * kc, last[8];
        for (int64_t p = 0; p + 1 < kc; p++) /* 2 floats into the next row, written after it */
            _mm256_storeu_ps(d + p * 6, _mm256_maskload_ps(A + (p0 + p) * lda + i0 + ir, m));
        _mm256_storeu_ps(last, _mm256_maskload_ps(A + (p0 + kc - 1) * lda + i0 + ir, m));
        memcpy(d + (kc - 1) * 6, last, 6 * sizeof(float));
    }
}

/* Implicit B, 16 columns per panel: each half of a panel row is one lanes8 load. */
__attribute__((target("avx2"))) static void pack_b_im2col__avx2(float *restrict dst, const fclf_gemm_operand *bs,
                                                                 int64_t p0, int64_t kc, int64_t j0, int64_t nc) {
    const fclf_conv2d_shape *s = bs->conv;
    const uintptr_t x = (uintptr_t)bs->x;
    int64_t off[FCLF_GEMM_KC_MAX], bases[16];
    fclf_im2col_row_offsets(s, p0, kc, off);
    for (int64_t jr = 0; jr < nc; jr += 16) {
        const int64_t nb = fclf_min64(16, nc - jr);
        float *d = dst + jr * kc;
        fclf_im2col_column_bases(s, bs->origin + j0 + jr, nb, bases);
        lanes8 half[2];
        plan_lanes8(&half[0], bases, fclf_min64(8, nb));
        plan_lanes8(&half[1], bases + 8, nb - 8);
        for (int64_t p = 0; p < kc; p++) {
            const uintptr_t tap = x + (uintptr_t)(off[p] * 4);
            _mm256_storeu_ps(d + p * 16, load_lanes8(&half[0], tap));
            _mm256_storeu_ps(d + p * 16 + 8, load_lanes8(&half[1], tap));
        }
    }
}

/* Panels whose `width` (6 or 16) entries per position are `width` rows of a stored matrix M (A not transposed,
 * B transposed): panel (r0 + jr) position p holds M[r0 + jr + j][c0 + p] for j < width, 0 past `rows`; 8 rows of
 * 8 floats at a time, transposed in registers. */
__attribute__((target("avx2"))) static void pack_rows_transposed__avx2(float *restrict dst, const float *restrict M,
                                                                        int64_t ld, int64_t r0, int64_t rows,
                                                                        int64_t c0, int64_t kc, int width) {
    for (int64_t jr = 0; jr < rows; jr += width) {
        const int64_t nb = fclf_min64(width, rows - jr);
        float *d = dst + jr * kc;
        for (int64_t q0 = 0; q0 < kc; q0 += 8) {
            const int64_t len = fclf_min64(8, kc - q0);
            const __m256i m = fclf_lanes8(len);
            for (int64_t jg = 0; jg < width; jg += 8) {
                __m256 r[8];
                for (int64_t j = 0; j < 8; j++) {
                    const float *src = M + (r0 + jr + jg + j) * ld + c0 + q0;
                    if (jg + j < nb && q0 % 16 == 0) { /* once a line: see pack_rows_transposed__avx512f */
                        _mm_prefetch((const char *)(src + 64), _MM_HINT_T0);
                        _mm_prefetch((const char *)(src + kc), _MM_HINT_T1);
                    }
                    r[j] = jg + j < nb ? _mm256_maskload_ps(src, m) : _mm256_setzero_ps();
                }
                if (width == 6) {
                    store_a_positions(d + q0 * 6, r, len, q0 + len == kc);
                } else {
                    transpose8x8(r);
                    for (int64_t q = 0; q < len; q++) _mm256_storeu_ps(d + (q0 + q) * width + jg, r[q]);
                }
            }
        }
    }
}

/* Stored B not transposed: a panel row is 16 contiguous floats of B. A row of B at a time across all the whole
 * panels, then the partial one: a panel at a time read one 64-byte line from each of kc rows (18 KB apart at
 * conv2's b32 shapes) per pass, which no prefetcher follows, and perf had this packer at 20-28% of a 64 x 4608
 * x 288 product on one thread. Each row's next lines and the next row's first ones are asked for ahead. */
__attribute__((target("avx2"))) static void pack_b_plain__avx2(float *restrict dst, const float *restrict B, int64_t ldb,
                                                                int64_t p0, int64_t kc, int64_t j0, int64_t nc) {
    const int64_t whole = nc / 16 * 16;
    const __m256i m0 = fclf_lanes8(nc - whole), m1 = fclf_lanes8(nc - whole - 8);
    for (int64_t p = 0; p < kc; p++) { /* plain loads: VMASKMOVPS issues at half their rate on AMD's cores */
        const float *src = B + (p0 + p) * ldb + j0;
        float *d = dst + p * 16;
        /* the next row's first 4 lines, and 4 lines ahead in this row: past the chunk's end, the next chunk's
         * (dropping those cost 3% at 64 x 18432 x 288) */
        if (p + 1 < kc)
            for (int64_t jr = 0; jr < fclf_min64(nc, 64); jr += 16)
                _mm_prefetch((const char *)(src + ldb + jr), _MM_HINT_T0);
        for (int64_t jr = 0; jr < whole; jr += 16) {
            _mm_prefetch((const char *)(src + jr + 64), _MM_HINT_T0);
            _mm256_storeu_ps(d + jr * kc, _mm256_loadu_ps(src + jr));
            _mm256_storeu_ps(d + jr * kc + 8, _mm256_loadu_ps(src + jr + 8));
        }
        if (whole < nc) { /* the partial panel, its columns past nc zero */
            _mm256_storeu_ps(d + whole * kc, _mm256_maskload_ps(src + whole, m0));
            _mm256_storeu_ps(d + whole * kc + 8, _mm256_maskload_ps(src + whole + 8, m1));
        }
    }
}

/* The table's packers, one per kind of operand (fclf_gemm_pack_kind_of). */
static void pack_a__avx2(float *restrict dst, const fclf_gemm_operand *a, int64_t i0, int64_t mc, int64_t p0,
                         int64_t kc) {
    switch (fclf_gemm_pack_kind_of(a, 0)) {
    case FCLF_PACK_IM2COL: pack_a_im2col__avx2(dst, a, i0, mc, p0, kc); break;
    case FCLF_PACK_PORTABLE: fclf_gemm_pack_a_portable(dst, a, i0, mc, p0, kc, 6); break;
    case FCLF_PACK_ROWS: pack_rows_transposed__avx2(dst, a->m, a->ld, i0, mc, p0, kc, 6); break;
    case FCLF_PACK_CONTIGUOUS: pack_a_trans__avx2(dst, a->m, a->ld, i0, mc, p0, kc); break;
    }
}

static void pack_b__avx2(float *restrict dst, const fclf_gemm_operand *b, int64_t p0, int64_t kc, int64_t j0,
                         int64_t nc) {
    switch (fclf_gemm_pack_kind_of(b, 1)) {
    case FCLF_PACK_IM2COL: pack_b_im2col__avx2(dst, b, p0, kc, j0, nc); break;
    case FCLF_PACK_PORTABLE: fclf_gemm_pack_b_portable(dst, b, p0, kc, j0, nc, 16); break;
    case FCLF_PACK_ROWS: pack_rows_transposed__avx2(dst, b->m, b->ld, j0, nc, p0, kc, 16); break;
    case FCLF_PACK_CONTIGUOUS: pack_b_plain__avx2(dst, b->m, b->ld, p0, kc, j0, nc); break;
    }
}

/* The short-M rows (one image through a dense layer) as the AVX-512 variant's rows__avx512f: strips of 64
 * columns in 8 registers over a whole K block, the row's zero entries of op(A) skipped (most of a dense layer's
 * inputs after a ReLU and a pooling), the same FMAs in the same order as the portable fused loop otherwise. For
 * finite B the sums keep their bits, except the sign of a sum that is exactly 0 after a product underflowed to
 * -0; NaN entries are kept. */
enum { ROW_STRIP8 = 64 };
__attribute__((target("avx2,fma,bmi"))) static void rows__avx2(int ta, int64_t M, int64_t N, int64_t K, int64_t kstep,
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
                for (int64_t p = 0; p < kc; p += 8) {
                    const __m256i live = fclf_lanes8(kc - p);
                    const __m256 a = _mm256_maskload_ps(A + i * lda + pc + p, live);
                    unsigned nz = (unsigned)_mm256_movemask_ps(_mm256_and_ps(_mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_NEQ_UQ),
                                                                             _mm256_castsi256_ps(live)));
                    for (; nz; nz &= nz - 1) nonzero[count++] = (int32_t)(pc + p + __builtin_ctz(nz));
                }
            else
                for (int64_t p = pc; p < pc + kc; p++) {
                    nonzero[count] = (int32_t)p;
                    count += A[p * lda + i] != 0.0f;
                }
            for (int64_t j0 = 0; j0 < N; j0 += ROW_STRIP8) {
                __m256i m[8];
                for (int v = 0; v < 8; v++) m[v] = fclf_lanes8(N - j0 - 8 * v);
                float *c = C + i * ldc + j0;
                __m256 acc[8];
                for (int v = 0; v < 8; v++) acc[v] = _mm256_setzero_ps();
                if (N - j0 >= ROW_STRIP8) {
                    for (int64_t q = 0; q < count; q++) {
                        const int64_t p = nonzero[q];
                        const __m256 a = _mm256_set1_ps(ta ? A[p * lda + i] : A[i * lda + p]);
                        const float *b = B + p * ldb + j0;
                        for (int v = 0; v < 8; v++) acc[v] = _mm256_fmadd_ps(a, _mm256_loadu_ps(b + 8 * v), acc[v]);
                    }
                } else {
                    for (int64_t q = 0; q < count; q++) {
                        const int64_t p = nonzero[q];
                        const __m256 a = _mm256_set1_ps(ta ? A[p * lda + i] : A[i * lda + p]);
                        const float *b = B + p * ldb + j0;
                        for (int v = 0; v < 8; v++) acc[v] = _mm256_fmadd_ps(a, _mm256_maskload_ps(b + 8 * v, m[v]), acc[v]);
                    }
                }
                for (int v = 0; v < 8; v++) {
                    if (N - j0 - 8 * v <= 0) break;
                    __m256 r = _mm256_mul_ps(_mm256_set1_ps(alpha), acc[v]);
                    if (beta_k != 0.0f)
                        r = _mm256_add_ps(r, _mm256_mul_ps(_mm256_set1_ps(beta_k), _mm256_maskload_ps(c + 8 * v, m[v])));
                    if (N - j0 - 8 * v >= 8)
                        _mm256_storeu_ps(c + 8 * v, r);
                    else
                        _mm256_maskstore_ps(c + 8 * v, m[v], r);
                }
            }
        }
}

const fclf_gemm_kernel fclf_gemm_avx2 = {FCLF_ISA_AVX2, 6, 16, 1, ukernel_6x16__avx2, edge_x16__avx2, pair_x16__avx2,
                                         pack_a__avx2, pack_b__avx2, rows__avx2, in_place_x16__avx2};
#endif
