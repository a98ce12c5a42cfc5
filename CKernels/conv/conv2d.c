/* conv2d.c: 2-D convolution, stride 1, zero padding: the forward and backward drivers (which path a shape
 * takes) and the GEMM products with their operands and NCHW output; the small-K path is in direct.c, the
 * fusion with a 2x2 max pool in conv_pool.c.
 *
 * Method: im2col over the whole batch + three batch-wide GEMMs. With P = oh*ow and K = c*kh*kw:
 *   forward          Y   [oc, n*P] = W [oc, K] . col [K, n*P]          (then to NCHW, + bias)
 *   weight gradient  dW  [oc, K]  += dY [oc, n*P] . col^T [n*P, K]
 *   input gradient   dcol [K, n*P] = W^T [K, oc] . dY [oc, n*P]        (then col2im)
 * The seed CNN's cost is conv2 (M=64, K=288, n*P=3872 at batch 32: 87% of its FLOPs). A first version
 * ran one small GEMM per image and repacked the weights for each; fclf-profile measured conv2 forward
 * at 2.5 ms per batch on 1 thread (57 GFLOP/s). One GEMM per pass packs W once, gives the micro-kernel
 * long panels, and needs no per-image partial sums for dW: the K loop over n*P is blocked the same way
 * for any thread count, so results do not depend on it. A direct convolution would re-read every input
 * pixel kh*kw times from an unpacked layout; im2col's copy is small next to the product. */
#include "conv.h"
#include "plane.h"
#include "../gemm/gemm.h"

#include <string.h>

/* Bytes of dcol per product in the input gradient: half of Zen 4's 1 MB L2. */
#define DCOL_CHUNK_BYTES (512 * 1024)

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

/* Padding for the products that pack from x. A tap in the padding is a bounds check per element, which the
 * vector packers cannot make a vector at a time (their lanes read runs of x, and a run may start before x or
 * end past it), so padded shapes took the portable packers: fclf-bench conv, Zen 4, 2 threads, batch 32,
 * 'same' ran at 0.37-0.54x the GFLOP/s of 'valid' forward and 0.60-0.74x backward. Instead x is copied once
 * into zero-framed planes (oh + kh - 1 by ow + kw - 1, its pixels at pad_t, pad_l: a 32-channel 28 x 28
 * batch grows by 15%) and the products run as 'valid' over the frame. The packed panels hold the same values
 * (the padding's taps are the frame's zeros), so the bits are those of the bounds-checked packing. The
 * forward pass writes the frame into col and the weight gradient reads it from there. */
static int frames_x(fclf_conv2d_shape s) { return fclf_conv_packs_from_x(s) && fclf_im2col_padded(&s); }

static fclf_conv2d_shape framed_shape(fclf_conv2d_shape s) {
    fclf_conv2d_shape f = s;
    f.h = fclf_conv_framed_rows(s);
    f.w = fclf_conv_framed_cols(s);
    f.pad_t = f.pad_l = 0;
    return f;
}

void fclf_conv_frame_planes(float *restrict xf, const float *restrict x, int64_t p0, int64_t p1, fclf_conv2d_shape s) {
    const int64_t fh = fclf_conv_framed_rows(s), fw = fclf_conv_framed_cols(s);
    /* input columns [ix0, ix1) land inside the frame's rows; make_shape's shapes keep all of them */
    const int64_t ix0 = s.pad_l > 0 ? 0 : -s.pad_l, ix1 = fclf_min64(s.w, fw - s.pad_l);
    for (int64_t p = p0; p < p1; p++) {
        float *dst = xf + p * fh * fw;
        const float *src = x + p * s.h * s.w;
        for (int64_t r = 0; r < fh; r++) {
            float *row = dst + r * fw;
            const int64_t iy = r - s.pad_t;
            if (iy < 0 || iy >= s.h || ix1 <= ix0) {
                memset(row, 0, (size_t)fw * sizeof(float));
                continue;
            }
            const float *in = src + iy * s.w - s.pad_l; /* in[q]: the pixel under frame column q */
            const int64_t q0 = ix0 + s.pad_l, q1 = ix1 + s.pad_l;
            for (int64_t q = 0; q < q0; q++) row[q] = 0.0f;
            for (int64_t q = q0; q < q1; q++) row[q] = in[q]; /* rows of 11-28 floats: a call each cost more */
            for (int64_t q = q1; q < fw; q++) row[q] = 0.0f;
        }
    }
}

/* WRITES xf [n, c, oh + kh - 1, ow + kw - 1]: every plane of x in its frame. */
static void frame_x(float *restrict xf, const float *restrict x, fclf_conv2d_shape s) {
    FCLF_PARALLEL_IF(fclf_conv_big(s), {
        fclf_conv_frame_planes(xf, x, fclf_partition_bound(s.n * s.c, 0), fclf_partition_bound(s.n * s.c, 1), s);
    });
}

static int64_t im2col_size(fclf_conv2d_shape s) { return s.c * s.kh * s.kw * s.n * s.oh * s.ow; }

int64_t fclf_conv2d_col_size(fclf_conv2d_shape s) {
    if (frames_x(s)) {
        const fclf_conv2d_shape f = framed_shape(s);
        return s.n * s.c * f.h * f.w;
    }
    return im2col_size(s);
}
/* dz [oc, n*P] for the GEMM's products, or in zero-framed planes for the plane-tile path (plane.c). */
static int64_t gemm_dz_size(fclf_conv2d_shape s) { return s.oc * s.n * s.oh * s.ow; }
int64_t fclf_conv2d_tmp_size(fclf_conv2d_shape s) {
    return fclf_conv_plane_shape(s) ? fclf_max64(gemm_dz_size(s), fclf_conv_plane_dz_size(s)) : gemm_dz_size(s);
}
int64_t fclf_conv2d_dcol_size(fclf_conv2d_shape s) {
    int64_t col = im2col_size(s), dwt = s.c * s.kh * s.kw * s.oc;
    return col > dwt ? col : dwt;
}

int fclf_conv2d_uses_col(fclf_conv2d_shape s) { return !fclf_conv_packs_from_x(s) || frames_x(s); }

/* y [n, oc, oh, ow] = act(w [oc, K] . col + b) with col packed straight from x: the product lands in NCHW
 * (segmented output, one group of P columns per image) with bias and ReLU applied as each tile is stored,
 * so there is no [oc, n*P] intermediate and no second pass over y. */
static void gemm_forward(const fclf_gemm_kernel *gemm, const float *w, const float *wp, const float *x,
                         fclf_conv2d_shape s, const float *bias, int relu, float *y) {
    const int64_t P = s.oh * s.ow, N = s.n * P, K = s.c * s.kh * s.kw;
    if (s.oc <= 0 || N <= 0) return;
    /* wp: w packed whole for this kernel (fclf_conv2d_pack_weights), or NULL to pack it per block. */
    const fclf_gemm_operand as = {w, K, 0, NULL, NULL, 0, wp, wp ? (s.oc + gemm->mr - 1) / gemm->mr * gemm->mr : 0};
    const fclf_gemm_operand bs = {NULL, 0, 0, x, &s, 0, NULL, 0};
    const fclf_gemm_out out = {y, P, P, s.oc * P, 0, bias, relu};
    fclf_gemm_drive(gemm, s.oc, N, K, 1.0f, &as, &bs, 0.0f, &out);
}

/* C [c*kh*kw, N] = col . op(B), op(B) [n*P, N], col packed straight from x (WRITES C). */
static void gemm_im2col_a(const fclf_gemm_kernel *gemm, const float *x, fclf_conv2d_shape s, int64_t N, const float *B,
                          int64_t ldb, int tb, float *C, int64_t ldc) {
    const int64_t M = s.c * s.kh * s.kw, K = s.n * s.oh * s.ow;
    if (M <= 0 || N <= 0) return;
    const fclf_gemm_operand as = {NULL, 0, 0, x, &s, 0}, bs = {B, ldb, tb, NULL, NULL, 0};
    const fclf_gemm_out out = {C, ldc, 0, 0, 0, NULL, 0};
    fclf_gemm_drive(gemm, M, N, K, 1.0f, &as, &bs, 0.0f, &out);
}

/* Inference: w [oc, K] packed once as the forward product's A (fclf_conv2d_pack_weights). */
int64_t fclf_conv2d_packed_weights_size(fclf_conv2d_shape s) {
    if (!fclf_conv_packs_from_x(s)) return 0;
    if (fclf_conv_plane_taken(fclf_isa_active(), s)) return fclf_conv_plane_packed_size(s);
    return fclf_gemm_packed_size(fclf_gemm_kernel_for(fclf_isa_active()), 0, s.oc, s.c * s.kh * s.kw);
}

void fclf_conv2d_pack_weights(float *wp, const float *w, fclf_conv2d_shape s) {
    if (!fclf_conv_packs_from_x(s)) return;
    if (fclf_conv_plane_taken(fclf_isa_active(), s)) {
        fclf_conv_plane_pack(wp, w, s);
        return;
    }
    const int64_t K = s.c * s.kh * s.kw;
    fclf_gemm_operand as = {w, K, 0, NULL, NULL, 0, NULL, 0};
    fclf_gemm_pack_whole(fclf_gemm_kernel_for(fclf_isa_active()), wp, &as, 0, s.oc, K);
}

static void conv2d_forward(int isa, float *y, float *col, const float *x, const float *w, const float *wp,
                           const float *b, int relu, fclf_conv2d_shape s) {
    /* wp, when given, was packed for the active variant, which is isa here (the prepacked entry): in the plane
     * tiles' layout where they take the shape, which the GEMM must not read as its panels */
    const int plane = fclf_conv_plane_taken(isa, s);
    const float *gemm_wp = plane ? NULL : wp;
    if (frames_x(s) && col) {
        frame_x(col, x, s);
        if (plane && fclf_conv_plane_forward(isa, y, col, w, wp, b, relu, s) == 0) return;
        gemm_forward(fclf_gemm_kernel_for(isa), w, gemm_wp, col, framed_shape(s), b, relu, y);
    } else if (fclf_conv_packs_from_x(s)) { /* a padded shape without col packs from x with bounds checks */
        gemm_forward(fclf_gemm_kernel_for(isa), w, gemm_wp, x, s, b, relu, y);
    } else
        fclf_conv_direct_forward(isa, y, col, x, w, b, relu, s);
}

void fclf_conv2d_forward(float *y, float *col, const float *x, const float *w, const float *b, int relu,
                         fclf_conv2d_shape s) {
    conv2d_forward(fclf_isa_active(), y, col, x, w, NULL, b, relu, s);
}

void fclf_conv2d_forward_prepacked(float *y, float *col, const float *x, const float *w, const float *wp, const float *b,
                                   int relu, fclf_conv2d_shape s) {
    conv2d_forward(fclf_isa_active(), y, col, x, w, wp, b, relu, s);
}

void fclf_conv2d_forward_isa(int isa, float *y, float *col, const float *x, const float *w, const float *b, int relu,
                             fclf_conv2d_shape s) {
    conv2d_forward(fclf_isa_usable(isa), y, col, x, w, NULL, b, relu, s);
}

/* While row o of dz is in cache. */
void fclf_conv_db_row(float *restrict db, const float *restrict tmp, int64_t o, fclf_conv2d_shape s) {
    const int64_t NP = s.n * s.oh * s.ow;
    const float *d = tmp + o * NP;
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int64_t p = 0; p < NP; p++) acc += d[p];
    db[o] += acc;
}

/* Row o of dz [oc, n*P] = dy masked by ReLU (y > 0), gathered from the NCHW dy, and the bias gradient. */
static void dz_row(float *restrict tmp, float *restrict db, const float *restrict dy, const float *restrict y,
                   int relu, int64_t o, fclf_conv2d_shape s) {
    const int64_t P = s.oh * s.ow, NP = s.n * P;
    for (int64_t i = 0; i < s.n; i++) {
        const float *src = dy + (i * s.oc + o) * P;
        float *dst = tmp + o * NP + i * P;
        if (relu) {
            const float *act = y + (i * s.oc + o) * P;
            for (int64_t p = 0; p < P; p++) {
                float g = src[p];
                dst[p] = act[p] > 0.0f ? g : 0.0f;
            }
        } else {
            for (int64_t p = 0; p < P; p++) dst[p] = src[p];
        }
    }
    if (db) fclf_conv_db_row(db, tmp, o, s);
}

void fclf_conv_backward_from_dz(int isa, float *dx, float *dw, float *dcol, const float *tmp, const float *col,
                                const float *x, const float *w, fclf_conv2d_shape s) {
    const fclf_gemm_kernel *gemm = fclf_gemm_kernel_for(isa);
    const int64_t K = s.c * s.kh * s.kw, P = s.oh * s.ow, NP = s.n * P;
    /* dW^T [K, oc] = col [K, NP] . dz^T [NP, oc], then added transposed into dw: this orientation
     * transposes dz (oc x NP) while packing instead of col (K x NP, 4.5x larger). fclf-bench, 2 threads,
     * conv2 at batch 32: 161 GFLOP/s against 139 for dW = dz . col^T. dcol is free until the input
     * gradient below. */
    float *dwt = dcol;
    if (!dw) {
        /* the caller has the weight gradient (the pooled small-K path, from x) */
    } else if (frames_x(s) && col)
        gemm_im2col_a(gemm, col, framed_shape(s), s.oc, tmp, NP, 1, dwt, s.oc);
    else if (fclf_conv_packs_from_x(s))
        gemm_im2col_a(gemm, x, s, s.oc, tmp, NP, 1, dwt, s.oc);
    else
        fclf_sgemm_with(gemm, 0, 1, K, s.oc, NP, 1.0f, col, NP, tmp, NP, 0.0f, dwt, s.oc);
    if (dw)
        for (int64_t o = 0; o < s.oc; o++)
            for (int64_t k = 0; k < K; k++) dw[o * K + k] += dwt[k * s.oc + o];
    if (!dx) return;
    /* dcol = W^T dz a few images at a time, each chunk folded back by col2im while it is still in L2. One
     * batch-wide product wrote all of dcol (4.5 MB for conv2 at batch 32) out to L3 and col2im read it back
     * in 0.5 KB pieces 15 KB apart, which the prefetchers do not follow. Each thread reuses the start of its
     * own images' part of dcol. A column of dcol does not depend on how the columns are split, so the bits
     * are those of the single product. */
    const int64_t chunk = fclf_max64(1, (int64_t)(DCOL_CHUNK_BYTES / sizeof(float)) / (K * P));
    FCLF_PARALLEL_IF(fclf_conv_big(s), {
        const int64_t i0 = fclf_partition_bound(s.n, 0), i1 = fclf_partition_bound(s.n, 1);
        float *buf = dcol + i0 * K * P;
        for (int64_t ic = i0; ic < i1; ic += chunk) {
            const int64_t nc = fclf_min64(chunk, i1 - ic);
            fclf_sgemm_with(gemm, 1, 0, K, nc * P, s.oc, 1.0f, w, K, tmp + ic * P, NP, 0.0f, buf, nc * P);
            for (int64_t i = ic; i < ic + nc; i++)
                fclf_col2im_image(isa, dx + i * s.c * s.h * s.w, buf + (i - ic) * P, nc * P, s);
        }
    });
}

static void conv2d_backward(int isa, float *dx, float *dw, float *db, float *dcol, float *tmp, const float *dy,
                            const float *y, const float *col, const float *x, const float *w, int relu,
                            fclf_conv2d_shape s) {
    const int64_t K = s.c * s.kh * s.kw;
    if (K < FCLF_CONV_SMALL_K && !dx) {
        const fclf_conv_grad_source g = {dy, y, NULL, NULL, NULL, NULL};
        fclf_conv_direct_weight_grad(isa, dw, db, &g, col, NULL, relu, s);
        return;
    }
    /* the plane-tile path needs the frame the forward pass left in col */
    if (col && fclf_conv_plane_taken(isa, s) && fclf_conv_plane_backward(isa, dx, dw, db, tmp, dy, y, col, w, relu, s) == 0)
        return;
    /* dz = dy masked by ReLU (y > 0), moved from [n, oc, P] to tmp [oc, n, P], the forward GEMM's
     * output layout. */
    FCLF_PARALLEL_IF(fclf_conv_big(s), for (FCLF_STATIC_RANGE(o, s.oc)) dz_row(tmp, db, dy, y, relu, o, s););
    fclf_conv_backward_from_dz(isa, dx, dw, dcol, tmp, col, x, w, s);
}

void fclf_conv2d_backward(float *dx, float *dw, float *db, float *dcol, float *tmp, const float *dy,
                          const float *y, const float *col, const float *x, const float *w, int relu,
                          fclf_conv2d_shape s) {
    conv2d_backward(fclf_isa_active(), dx, dw, db, dcol, tmp, dy, y, col, x, w, relu, s);
}

void fclf_conv2d_backward_isa(int isa, float *dx, float *dw, float *db, float *dcol, float *tmp, const float *dy,
                              const float *y, const float *col, const float *x, const float *w, int relu,
                              fclf_conv2d_shape s) {
    conv2d_backward(fclf_isa_usable(isa), dx, dw, db, dcol, tmp, dy, y, col, x, w, relu, s);
}

int64_t fclf_conv2d_backward_tmp_size(fclf_conv2d_shape s, int with_dx, int pooled) {
    /* the small-K weight gradient without dx reads dy, or the pooled planes it routes on the stack */
    if (s.c * s.kh * s.kw < FCLF_CONV_SMALL_K && !with_dx && (!pooled || fclf_conv2d_pool_supported(s)))
        return 0;
    return pooled ? gemm_dz_size(s) : fclf_conv2d_tmp_size(s); /* the pooled backward runs the GEMM's products */
}

