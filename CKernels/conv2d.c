/* conv2d.c: 2-D convolution, stride 1, zero padding; forward and both backward passes.
 *
 * Method: im2col + the packed GEMM, one image per OpenMP task. The seed CNN's cost is in conv2
 * (64 x 288 x 121 per image, 87% of its FLOPs), where im2col turns the convolution into a GEMM with
 * K = 288 that runs at the micro-kernel's speed, while a direct loop nest would re-load each input
 * pixel 9 times from an unpacked layout. The im2col copy is small next to the product (288 x 121
 * floats vs 2.2 MFLOP per image) and is kept for the weight gradient, which needs exactly that matrix.
 * Parallelising over images (not inside each small GEMM) keeps the per-image GEMMs serial and gives
 * each thread independent work with a single fork/join per layer. */
#include "fclf_internal.h"

#include <string.h>

fclf_conv2d_shape fclf_conv2d_make_shape(int64_t n, int64_t c, int64_t h, int64_t w, int64_t oc, int64_t kh,
                                         int64_t kw, int same) {
    fclf_conv2d_shape s = {n, c, h, w, oc, kh, kw, 0, 0, h - kh + 1, w - kw + 1};
    if (same) {
        s.pad_t = (kh - 1) / 2;
        s.pad_l = (kw - 1) / 2;
        s.oh = h;
        s.ow = w;
    }
    return s;
}

int64_t fclf_conv2d_col_size(fclf_conv2d_shape s) { return s.n * s.c * s.kh * s.kw * s.oh * s.ow; }

/* col [c*kh*kw, oh*ow] of one image: col[(ci,ki,kj)][oy,ox] = x[ci][oy+ki-pad_t][ox+kj-pad_l] or 0. */
static void im2col(float *restrict col, const float *restrict x, fclf_conv2d_shape s) {
    for (int64_t ci = 0; ci < s.c; ci++)
        for (int64_t ki = 0; ki < s.kh; ki++)
            for (int64_t kj = 0; kj < s.kw; kj++) {
                float *row = col + ((ci * s.kh + ki) * s.kw + kj) * s.oh * s.ow;
                const float *plane = x + ci * s.h * s.w;
                for (int64_t oy = 0; oy < s.oh; oy++) {
                    int64_t iy = oy + ki - s.pad_t;
                    float *r = row + oy * s.ow;
                    if (iy < 0 || iy >= s.h) {
                        memset(r, 0, (size_t)s.ow * sizeof(float));
                        continue;
                    }
                    const float *src = plane + iy * s.w;
                    for (int64_t ox = 0; ox < s.ow; ox++) {
                        int64_t ix = ox + kj - s.pad_l;
                        r[ox] = (ix >= 0 && ix < s.w) ? src[ix] : 0.0f;
                    }
                }
            }
}

/* The adjoint of im2col: dx[ci][iy][ix] = sum of the dcol entries that im2col copied from there. */
static void col2im(float *restrict dx, const float *restrict dcol, fclf_conv2d_shape s) {
    memset(dx, 0, (size_t)(s.c * s.h * s.w) * sizeof(float));
    for (int64_t ci = 0; ci < s.c; ci++)
        for (int64_t ki = 0; ki < s.kh; ki++)
            for (int64_t kj = 0; kj < s.kw; kj++) {
                const float *row = dcol + ((ci * s.kh + ki) * s.kw + kj) * s.oh * s.ow;
                float *plane = dx + ci * s.h * s.w;
                for (int64_t oy = 0; oy < s.oh; oy++) {
                    int64_t iy = oy + ki - s.pad_t;
                    if (iy < 0 || iy >= s.h) continue;
                    const float *r = row + oy * s.ow;
                    float *dst = plane + iy * s.w;
                    for (int64_t ox = 0; ox < s.ow; ox++) {
                        int64_t ix = ox + kj - s.pad_l;
                        if (ix >= 0 && ix < s.w) dst[ix] += r[ox];
                    }
                }
            }
}

static int use_threads(fclf_conv2d_shape s) {
    double flops = 2.0 * (double)(s.n * s.oc * s.oh * s.ow) * (double)(s.c * s.kh * s.kw);
    return s.n > 1 && flops >= FCLF_PAR_MIN_WORK;
}

void fclf_conv2d_forward(float *y, float *col, const float *x, const float *w, const float *b,
                         fclf_conv2d_shape s) {
    const int64_t K = s.c * s.kh * s.kw, P = s.oh * s.ow;
#pragma omp parallel for schedule(static) if (use_threads(s))
    for (int64_t i = 0; i < s.n; i++) {
        float *ci = col + i * K * P, *yi = y + i * s.oc * P;
        im2col(ci, x + i * s.c * s.h * s.w, s);
        /* y_i [oc, P] = w [oc, K] . col_i [K, P] */
        fclf_sgemm(0, 0, s.oc, P, K, 1.0f, w, K, ci, P, 0.0f, yi, P);
        if (b)
            for (int64_t o = 0; o < s.oc; o++)
                for (int64_t p = 0; p < P; p++) yi[o * P + p] += b[o];
    }
}

void fclf_conv2d_backward_weights(float *dw, float *db, float *partial, const float *dy, const float *col,
                                  fclf_conv2d_shape s) {
    const int64_t K = s.c * s.kh * s.kw, P = s.oh * s.ow, WK = s.oc * K;
    const int par = use_threads(s);
#pragma omp parallel if (par)
    {
#pragma omp for schedule(static)
        for (int64_t i = 0; i < s.n; i++) /* partial_i [oc, K] = dy_i [oc, P] . col_i^T [P, K] */
            fclf_sgemm(0, 1, s.oc, K, P, 1.0f, dy + i * s.oc * P, P, col + i * K * P, P, 0.0f,
                       partial + i * WK, K);
        /* Sum the images in a fixed order: the result does not depend on which thread did which image. */
#pragma omp for schedule(static)
        for (int64_t e = 0; e < WK; e++) {
            float acc = 0.0f;
            for (int64_t i = 0; i < s.n; i++) acc += partial[i * WK + e];
            dw[e] += acc;
        }
        if (db) {
#pragma omp for schedule(static)
            for (int64_t o = 0; o < s.oc; o++) {
                float acc = 0.0f;
                for (int64_t i = 0; i < s.n; i++) {
                    const float *d = dy + (i * s.oc + o) * P;
                    for (int64_t p = 0; p < P; p++) acc += d[p];
                }
                db[o] += acc;
            }
        }
    }
}

void fclf_conv2d_backward_input(float *dx, float *dcol, const float *dy, const float *w, fclf_conv2d_shape s) {
    const int64_t K = s.c * s.kh * s.kw, P = s.oh * s.ow;
#pragma omp parallel for schedule(static) if (use_threads(s))
    for (int64_t i = 0; i < s.n; i++) {
        float *di = dcol + i * K * P;
        /* dcol_i [K, P] = w^T [K, oc] . dy_i [oc, P] */
        fclf_sgemm(1, 0, K, P, s.oc, 1.0f, w, K, dy + i * s.oc * P, P, 0.0f, di, P);
        col2im(dx + i * s.c * s.h * s.w, di, s);
    }
}

/* ---- naive references ---- */

void fclf_conv2d_forward_ref(float *y, const float *x, const float *w, const float *b, fclf_conv2d_shape s) {
    for (int64_t i = 0; i < s.n; i++)
        for (int64_t o = 0; o < s.oc; o++)
            for (int64_t oy = 0; oy < s.oh; oy++)
                for (int64_t ox = 0; ox < s.ow; ox++) {
                    double acc = b ? b[o] : 0.0;
                    for (int64_t ci = 0; ci < s.c; ci++)
                        for (int64_t ki = 0; ki < s.kh; ki++)
                            for (int64_t kj = 0; kj < s.kw; kj++) {
                                int64_t iy = oy + ki - s.pad_t, ix = ox + kj - s.pad_l;
                                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                                acc += (double)x[((i * s.c + ci) * s.h + iy) * s.w + ix] *
                                       w[((o * s.c + ci) * s.kh + ki) * s.kw + kj];
                            }
                    y[((i * s.oc + o) * s.oh + oy) * s.ow + ox] = (float)acc;
                }
}

void fclf_conv2d_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                              fclf_conv2d_shape s) {
    if (dx) memset(dx, 0, (size_t)(s.n * s.c * s.h * s.w) * sizeof(float));
    for (int64_t i = 0; i < s.n; i++)
        for (int64_t o = 0; o < s.oc; o++)
            for (int64_t oy = 0; oy < s.oh; oy++)
                for (int64_t ox = 0; ox < s.ow; ox++) {
                    float g = dy[((i * s.oc + o) * s.oh + oy) * s.ow + ox];
                    if (db) db[o] += g;
                    for (int64_t ci = 0; ci < s.c; ci++)
                        for (int64_t ki = 0; ki < s.kh; ki++)
                            for (int64_t kj = 0; kj < s.kw; kj++) {
                                int64_t iy = oy + ki - s.pad_t, ix = ox + kj - s.pad_l;
                                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                                int64_t xi = ((i * s.c + ci) * s.h + iy) * s.w + ix;
                                int64_t wi = ((o * s.c + ci) * s.kh + ki) * s.kw + kj;
                                dw[wi] += g * x[xi];
                                if (dx) dx[xi] += g * w[wi];
                            }
                }
}
