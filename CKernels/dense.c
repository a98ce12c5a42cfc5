/* dense.c: fully connected layer y = x W + b, with W stored [in, out] so that all three products are
 * plain GEMMs with one transpose at most (dW = x^T dy, dx = dy W^T). */
#include "fclf_internal.h"

void fclf_dense_forward(float *y, const float *x, const float *w, const float *b, int64_t n, int64_t in,
                        int64_t out) {
    fclf_sgemm(0, 0, n, out, in, 1.0f, x, in, w, out, 0.0f, y, out);
    if (b)
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < out; j++) y[i * out + j] += b[j];
}

void fclf_dense_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                         int64_t n, int64_t in, int64_t out) {
    fclf_sgemm(1, 0, in, out, n, 1.0f, x, in, dy, out, 1.0f, dw, out);
    if (db)
        for (int64_t j = 0; j < out; j++) {
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int64_t i = 0; i < n; i++) acc += dy[i * out + j];
            db[j] += acc;
        }
    if (dx) fclf_sgemm(0, 1, n, in, out, 1.0f, dy, out, w, out, 0.0f, dx, in);
}
