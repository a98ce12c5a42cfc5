/* ref.c: the GEMM's naive reference (tests only): every product summed in double. */
#include "../fclf_internal.h"

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
