/* dense.c: fully connected layer y = x W + b, with W stored [in, out] so that all three products are
 * plain GEMMs with one transpose at most (dW = x^T dy, dx = dy W^T). */
#include "fclf_internal.h"
#include "gemm/gemm.h"

/* wp: W packed whole for this variant (fclf_dense_pack_weights), or NULL to pack it in the product. */
static void dense_forward(int isa, float *y, const float *x, const float *w, const float *wp, const float *b, int64_t n,
                          int64_t in, int64_t out, int relu) {
    const fclf_gemm_kernel *k = fclf_gemm_kernel_for(isa);
    const fclf_gemm_operand as = {x, in, 0, NULL, NULL, 0, NULL, 0};
    const fclf_gemm_operand bs = {w, out, 0, NULL, NULL, 0, wp, wp ? (out + k->nr - 1) / k->nr * k->nr : 0};
    fclf_gemm_product(k, n, out, in, 1.0f, &as, &bs, 0.0f, y, out);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < out; j++) {
            float v = y[i * out + j] + (b ? b[j] : 0.0f);
            y[i * out + j] = relu && v <= 0.0f ? 0.0f : v;
        }
}

/* Inference: W [in, out] packed once as the product's B (fclf_dense_pack_weights), read in place per call. */
int64_t fclf_dense_packed_weights_size(int64_t in, int64_t out) {
    return fclf_gemm_packed_size(fclf_gemm_kernel_for(fclf_isa_active()), 1, in, out);
}

void fclf_dense_pack_weights(float *wp, const float *w, int64_t in, int64_t out) {
    fclf_gemm_operand bs = {w, out, 0, NULL, NULL, 0, NULL, 0};
    fclf_gemm_pack_whole(fclf_gemm_kernel_for(fclf_isa_active()), wp, &bs, 1, in, out);
}

void fclf_dense_forward_prepacked(float *y, const float *x, const float *w, const float *wp, const float *b, int64_t n,
                                  int64_t in, int64_t out, int relu) {
    dense_forward(fclf_isa_active(), y, x, w, wp, b, n, in, out, relu);
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
    dense_forward(fclf_isa_active(), y, x, w, NULL, b, n, in, out, relu);
}

void fclf_dense_forward_isa(int isa, float *y, const float *x, const float *w, const float *b, int64_t n, int64_t in,
                            int64_t out, int relu) {
    dense_forward(fclf_isa_usable(isa), y, x, w, NULL, b, n, in, out, relu);
}

void fclf_dense_backward(float *dx, float *dw, float *db, float *dz, const float *dy, const float *x,
                         const float *y, const float *w, int64_t n, int64_t in, int64_t out, int relu) {
    dense_backward(fclf_isa_active(), dx, dw, db, dz, dy, x, y, w, n, in, out, relu);
}

void fclf_dense_backward_isa(int isa, float *dx, float *dw, float *db, float *dz, const float *dy, const float *x,
                             const float *y, const float *w, int64_t n, int64_t in, int64_t out, int relu) {
    dense_backward(fclf_isa_usable(isa), dx, dw, db, dz, dy, x, y, w, n, in, out, relu);
}

/* ---- naive references (tests only): the layer's formulas as loops, sums in double ---- */

void fclf_dense_forward_ref(float *y, const float *x, const float *w, const float *b, int64_t n, int64_t in,
                            int64_t out, int relu) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < out; j++) {
            double acc = b ? b[j] : 0.0;
            for (int64_t p = 0; p < in; p++) acc += (double)x[i * in + p] * w[p * out + j];
            y[i * out + j] = relu && !(acc > 0.0) ? 0.0f : (float)acc;
        }
}

void fclf_dense_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x, const float *y,
                             const float *w, int64_t n, int64_t in, int64_t out, int relu) {
#define DZ(i, j) (relu && !(y[(i) * out + (j)] > 0.0f) ? 0.0 : (double)dy[(i) * out + (j)])
    for (int64_t p = 0; p < in; p++)
        for (int64_t j = 0; j < out; j++) {
            double acc = 0.0;
            for (int64_t i = 0; i < n; i++) acc += (double)x[i * in + p] * DZ(i, j);
            dw[p * out + j] = (float)(dw[p * out + j] + acc);
        }
    if (db)
        for (int64_t j = 0; j < out; j++) {
            double acc = 0.0;
            for (int64_t i = 0; i < n; i++) acc += DZ(i, j);
            db[j] = (float)(db[j] + acc);
        }
    if (dx)
        for (int64_t i = 0; i < n; i++)
            for (int64_t p = 0; p < in; p++) {
                double acc = 0.0;
                for (int64_t j = 0; j < out; j++) acc += DZ(i, j) * w[p * out + j];
                dx[i * in + p] = (float)acc;
            }
#undef DZ
}
