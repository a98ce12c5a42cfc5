/* dense.c: fully connected layer y = x W + b, with W stored [in, out] so that all three products are
 * plain GEMMs with one transpose at most (dW = x^T dy, dx = dy W^T). */
#include "fclf_internal.h"
#include "gemm/gemm.h"

static void dense_forward(int isa, float *y, const float *x, const float *w, const float *b, int64_t n, int64_t in,
                          int64_t out, int relu) {
    fclf_sgemm_with(fclf_gemm_kernel_for(isa), 0, 0, n, out, in, 1.0f, x, in, w, out, 0.0f, y, out);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < out; j++) {
            float v = y[i * out + j] + (b ? b[j] : 0.0f);
            y[i * out + j] = relu && v <= 0.0f ? 0.0f : v;
        }
}

static void dense_backward(int isa, float *dx, float *dw, float *db, float *dz, const float *dy, const float *x,
                           const float *y, const float *w, int64_t n, int64_t in, int64_t out, int relu) {
    const fclf_gemm_kernel *gemm = fclf_gemm_kernel_for(isa);
    for (int64_t e = 0; e < n * out; e++) {
        float g = dy[e];
        dz[e] = relu && !(y[e] > 0.0f) ? 0.0f : g;
    }
    fclf_sgemm_with(gemm, 1, 0, in, out, n, 1.0f, x, in, dz, out, 1.0f, dw, out);
    if (db)
        for (int64_t j = 0; j < out; j++) {
            float acc = 0.0f;
            for (int64_t i = 0; i < n; i++) acc += dz[i * out + j];
            db[j] += acc;
        }
    if (dx) fclf_sgemm_with(gemm, 0, 1, n, in, out, 1.0f, dz, out, w, out, 0.0f, dx, in);
}

void fclf_dense_forward(float *y, const float *x, const float *w, const float *b, int64_t n, int64_t in,
                        int64_t out, int relu) {
    dense_forward(fclf_isa_active(), y, x, w, b, n, in, out, relu);
}

void fclf_dense_forward_isa(int isa, float *y, const float *x, const float *w, const float *b, int64_t n, int64_t in,
                            int64_t out, int relu) {
    dense_forward(fclf_isa_usable(isa), y, x, w, b, n, in, out, relu);
}

void fclf_dense_backward(float *dx, float *dw, float *db, float *dz, const float *dy, const float *x,
                         const float *y, const float *w, int64_t n, int64_t in, int64_t out, int relu) {
    dense_backward(fclf_isa_active(), dx, dw, db, dz, dy, x, y, w, n, in, out, relu);
}

void fclf_dense_backward_isa(int isa, float *dx, float *dw, float *db, float *dz, const float *dy, const float *x,
                             const float *y, const float *w, int64_t n, int64_t in, int64_t out, int relu) {
    dense_backward(fclf_isa_usable(isa), dx, dw, db, dz, dy, x, y, w, n, in, out, relu);
}
