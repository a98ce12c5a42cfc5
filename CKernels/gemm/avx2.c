/* avx2.c: the AVX2 + FMA GEMM variant, 6 x 16 (12 ymm accumulators, BLIS's Haswell shape, 15 of 16
 * registers). It packs with the portable packers. */
#include "gemm.h"

#if defined(__x86_64__)
#include <immintrin.h>

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

static void pack_a__avx2(float *restrict dst, const fclf_gemm_operand *a, int64_t i0, int64_t mc, int64_t p0,
                         int64_t kc) {
    fclf_gemm_pack_a_portable(dst, a, i0, mc, p0, kc, 6);
}

static void pack_b__avx2(float *restrict dst, const fclf_gemm_operand *b, int64_t p0, int64_t kc, int64_t j0,
                         int64_t nc) {
    fclf_gemm_pack_b_portable(dst, b, p0, kc, j0, nc, 16);
}

const fclf_gemm_kernel fclf_gemm_avx2 = {FCLF_ISA_AVX2, 6, 16, 1, ukernel_6x16__avx2, pack_a__avx2, pack_b__avx2, NULL};
#endif
