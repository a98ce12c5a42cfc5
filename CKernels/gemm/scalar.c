/* scalar.c: the portable GEMM variant (4 x 8: SSE2 on x86-64, plain C the compiler vectorises elsewhere) and
 * the portable packers, which move one float per load and store; the AVX2 variant packs with them too. */
#include "gemm.h"
#include "../conv/im2col.h"

#include <string.h>

/* c = alpha * acc (+ beta * c), + bias[i] per row when bias, then max(., 0) when relu: the tile's epilogue. */
static inline void store_4x8(const float acc[4][8], float *restrict c, int64_t ldc, float alpha, float beta,
                             const float *restrict bias, int relu) {
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
#include <emmintrin.h>

/* The tile with SSE2, which every x86-64 CPU has: what CPUs without AVX2 run (the Atom-class Celerons and
 * Pentiums of many tills). The compiler's vectorisation of the plain loop below kept few accumulators and
 * spilled them to the stack (perf, FCLF_ISA=scalar on a Zen 4: 82% of a one-image prediction in that kernel,
 * 286 us against 38 us with AVX-512). Here the 8 accumulators stay in registers, and each product is rounded
 * and then added, as the loop computes it (-ffp-contract=off; SSE2 has no FMA): the same bits. */
static void ukernel_4x8__sse2(int64_t kc, const float *restrict a, const float *restrict b, float *restrict c,
                              int64_t ldc, float alpha, float beta, const float *restrict bias, int relu) {
    __m128 acc[4][2];
    for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        const __m128 b0 = _mm_loadu_ps(b + p * 8), b1 = _mm_loadu_ps(b + p * 8 + 4), av = _mm_loadu_ps(a + p * 4);
        const __m128 a_i[4] = {_mm_shuffle_ps(av, av, 0x00), _mm_shuffle_ps(av, av, 0x55),
                               _mm_shuffle_ps(av, av, 0xAA), _mm_shuffle_ps(av, av, 0xFF)};
        for (int i = 0; i < 4; i++) {
            acc[i][0] = _mm_add_ps(acc[i][0], _mm_mul_ps(a_i[i], b0));
            acc[i][1] = _mm_add_ps(acc[i][1], _mm_mul_ps(a_i[i], b1));
        }
    }
    float t[4][8];
    for (int i = 0; i < 4; i++) {
        _mm_storeu_ps(t[i], acc[i][0]);
        _mm_storeu_ps(t[i] + 4, acc[i][1]);
    }
    store_4x8(t, c, ldc, alpha, beta, bias, relu);
}
#define FCLF_SCALAR_UKERNEL ukernel_4x8__sse2
#else
/* Plain C for the compiler to vectorise (NEON and others). */
static void ukernel_4x8__scalar(int64_t kc, const float *restrict a, const float *restrict b, float *restrict c,
                                int64_t ldc, float alpha, float beta, const float *restrict bias, int relu) {
    float acc[4][8] = {{0}};
    for (int64_t p = 0; p < kc; p++) {
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 8; j++) acc[i][j] += a[p * 4 + i] * b[p * 8 + j];
    }
    store_4x8(acc, c, ldc, alpha, beta, bias, relu);
}
#define FCLF_SCALAR_UKERNEL ukernel_4x8__scalar
#endif

/* ---- stored operands ---- */

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

/* ---- the implicit im2col matrix ---- */

static void pack_b_im2col(float *restrict dst, const fclf_gemm_operand *bs, int64_t p0, int64_t kc, int64_t j0,
                          int64_t nc, int nr) {
    const fclf_conv2d_shape *s = bs->conv;
    const float *x = bs->x;
    const int padded = fclf_im2col_padded(s);
    for (int64_t jr = 0; jr < nc; jr += nr) {
        const int64_t nb = fclf_min64(nr, nc - jr);
        float *d = dst + jr * kc;
        fclf_im2col_column col[FCLF_GEMM_NR_MAX];
        col[0] = fclf_im2col_column_at(s, bs->origin + j0 + jr);
        for (int64_t jj = 1; jj < nb; jj++) { /* the walker: no divisions per element (fclf_im2col_next_column) */
            col[jj] = col[jj - 1];
            fclf_im2col_next_column(s, &col[jj]);
        }
        /* Groups of 4 columns on one output row are 4 consecutive floats of x for every tap: one 16-byte copy
         * (a vector move) instead of 4 (perf: this packer had 14-20% of a one-image prediction on the scalar
         * variant). */
        int run4[FCLF_GEMM_NR_MAX / 4];
        for (int64_t q = 0; q + 4 <= nb; q += 4) run4[q / 4] = col[q + 3].base == col[q].base + 3;
        fclf_im2col_row row = fclf_im2col_row_at(s, p0);
        for (int64_t p = 0; p < kc; p++, fclf_im2col_next_row(s, &row)) {
            float *dp = d + p * nr;
            if (!padded) { /* 'valid': every tap is inside the image */
                int64_t jj = 0;
                for (; jj + 4 <= nb; jj += 4) {
                    if (run4[jj / 4])
                        memcpy(dp + jj, x + col[jj].base + row.off, 4 * sizeof(float));
                    else
                        for (int64_t q = jj; q < jj + 4; q++) dp[q] = x[col[q].base + row.off];
                }
                for (; jj < nb; jj++) dp[jj] = x[col[jj].base + row.off];
            } else
                for (int64_t jj = 0; jj < nb; jj++) dp[jj] = fclf_im2col_tap(s, x, col[jj], row);
            for (int64_t jj = nb; jj < nr; jj++) dp[jj] = 0.0f;
        }
    }
}

/* The A panels of the implicit im2col matrix (not transposed): rows k from origin + i0, columns j from p0. */
static void pack_a_im2col(float *restrict dst, const fclf_gemm_operand *as, int64_t i0, int64_t mc, int64_t p0,
                          int64_t kc, int mr) {
    const fclf_conv2d_shape *s = as->conv;
    const float *x = as->x;
    const int padded = fclf_im2col_padded(s);
    fclf_im2col_column col[FCLF_GEMM_KC_MAX];
    col[0] = fclf_im2col_column_at(s, p0);
    for (int64_t p = 1; p < kc; p++) {
        col[p] = col[p - 1];
        fclf_im2col_next_column(s, &col[p]);
    }
    for (int64_t ir = 0; ir < mc; ir += mr) {
        const int64_t mb = fclf_min64(mr, mc - ir);
        float *d = dst + ir * kc;
        for (int64_t i = 0; i < mb; i++) {
            const fclf_im2col_row row = fclf_im2col_row_at(s, as->origin + i0 + ir + i);
            if (!padded)
                for (int64_t p = 0; p < kc; p++) d[p * mr + i] = x[col[p].base + row.off];
            else
                for (int64_t p = 0; p < kc; p++) d[p * mr + i] = fclf_im2col_tap(s, x, col[p], row);
        }
        for (int64_t i = mb; i < mr; i++)
            for (int64_t p = 0; p < kc; p++) d[p * mr + i] = 0.0f;
    }
}

void fclf_gemm_pack_a_portable(float *restrict dst, const fclf_gemm_operand *a, int64_t i0, int64_t mc, int64_t p0,
                               int64_t kc, int mr) {
    if (a->conv)
        pack_a_im2col(dst, a, i0, mc, p0, kc, mr);
    else
        pack_a(dst, a->m, a->ld, a->trans, i0, mc, p0, kc, mr);
}

void fclf_gemm_pack_b_portable(float *restrict dst, const fclf_gemm_operand *b, int64_t p0, int64_t kc, int64_t j0,
                               int64_t nc, int nr) {
    if (b->conv)
        pack_b_im2col(dst, b, p0, kc, j0, nc, nr);
    else
        pack_b(dst, b->m, b->ld, b->trans, p0, kc, j0, nc, nr);
}

static void pack_a__scalar(float *restrict dst, const fclf_gemm_operand *a, int64_t i0, int64_t mc, int64_t p0,
                           int64_t kc) {
    fclf_gemm_pack_a_portable(dst, a, i0, mc, p0, kc, 4);
}

static void pack_b__scalar(float *restrict dst, const fclf_gemm_operand *b, int64_t p0, int64_t kc, int64_t j0,
                           int64_t nc) {
    fclf_gemm_pack_b_portable(dst, b, p0, kc, j0, nc, 8);
}

const fclf_gemm_kernel fclf_gemm_scalar = {FCLF_ISA_SCALAR, 4, 8, 0, FCLF_SCALAR_UKERNEL, NULL, NULL, pack_a__scalar,
                                           pack_b__scalar, NULL, NULL};
