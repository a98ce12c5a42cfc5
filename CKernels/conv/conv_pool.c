/* conv_pool.c: convolution + activation + 2x2 max pooling, fused.
 *
 * The first layer of an image model (c*kh*kw < 16) writes the largest activation of the network (conv1:
 * 2.8 MB per batch of 32), which the pool reads once and whose gradient the pool writes and the weight
 * gradient reads once more. Fused, each image's output planes are computed two at a time into an L1 buffer
 * and pooled from there, and the backward pass routes the pooled gradient into the same buffer: the full
 * activation and its gradient never reach memory. Nor does an im2col matrix: both passes read the taps from x
 * (a padded image from its zero-framed copy on the stack), output rows as long as x's (fclf_conv_taps_x). The
 * matrix they read before (conv1: 9 x 676 floats per image, 3.1 MB at batch 128) was written by the forward
 * pass and read back by the weight gradient; perf put its copy at 3.3% of a batch-128 step, and building it
 * per image in L1 instead took conv1's forward from 0.91-0.99 to 0.65-0.68 ms (Zen 4, 2 threads). The
 * forward's values and winners are those of the separate layers (the pool's ReLU mask included), bit for bit;
 * the weight gradient sums the same products in other lanes (the output rows are longer), so to rounding. The
 * backward pass at the winners (below, for the larger shapes) sums fewer terms in another order: the same
 * gradients to rounding. */
#include "conv.h"

#include <string.h>

int fclf_conv2d_pool_supported(fclf_conv2d_shape s) {
    /* two output planes with rows as long as the frame's on the stack, and a padded image's frame */
    return s.c * s.kh * s.kw < FCLF_CONV_SMALL_K && s.oh >= 2 && s.ow >= 2 && s.kh >= 1 && s.kw >= 1 &&
           s.oh * fclf_conv_framed_cols(s) <= FCLF_CONV_FUSED_PLANE_MAX &&
           (fclf_conv_x_is_framed(s) || s.c * fclf_conv_framed_rows(s) * fclf_conv_framed_cols(s) <= FCLF_CONV_FRAME_MAX);
}

static void conv_pool_image(int isa, float *restrict y, int32_t *restrict argmax, const float *restrict src,
                            const fclf_conv_taps *t, const float *restrict w, const float *restrict b, int relu,
                            fclf_conv2d_shape s) {
    const int64_t K = s.c * s.kh * s.kw, Q = (s.oh / 2) * (s.ow / 2);
    float planes[2 * FCLF_CONV_FUSED_PLANE_MAX] __attribute__((aligned(64)));
    for (int64_t o = 0; o < s.oc; o += 2) {
        const int64_t pair = fclf_min64(2, s.oc - o);
        fclf_conv_direct_image(isa, planes, src, t, w + o * K, b ? b + o : NULL, pair, K, relu);
        for (int64_t j = 0; j < pair; j++)
            fclf_pool_plane(isa, y + (o + j) * Q, argmax ? argmax + (o + j) * Q : NULL, planes + j * t->plane, s.oh,
                            s.ow, t->ld);
    }
}

static void conv_pool_forward(int isa, float *y, int32_t *argmax, const float *x, const float *w, const float *b,
                              int relu, fclf_conv2d_shape s) {
    if (s.n <= 0 || s.oc <= 0 || !fclf_conv2d_pool_supported(s)) return;
    const int64_t Q = (s.oh / 2) * (s.ow / 2);
    FCLF_PARALLEL_IF(fclf_conv_big(s), {
        float frame[FCLF_CONV_FRAME_MAX] __attribute__((aligned(64)));
        const fclf_conv_tap_source taps = fclf_conv_tap_source_of(NULL, x, frame, s);
        for (FCLF_STATIC_RANGE(i, s.n))
            conv_pool_image(isa, y + i * s.oc * Q, argmax ? argmax + i * s.oc * Q : NULL,
                            fclf_conv_tap_image(&taps, i, s), &taps.t, w, b, relu, s);
    });
}

void fclf_conv2d_pool_forward(float *y, int32_t *argmax, const float *x, const float *w, const float *b, int relu,
                              fclf_conv2d_shape s) {
    conv_pool_forward(fclf_isa_active(), y, argmax, x, w, b, relu, s);
}

void fclf_conv2d_pool_forward_isa(int isa, float *y, int32_t *argmax, const float *x, const float *w, const float *b,
                                  int relu, fclf_conv2d_shape s) {
    conv_pool_forward(fclf_isa_usable(isa), y, argmax, x, w, b, relu, s);
}

/* Row o of dz [oc, n*P] routed back from the pooled gradient (only where the pooled y > 0 when given): what
 * the pool's backward pass, then dz_row without a mask, would write. */
static void dz_row_pooled(int isa, float *restrict tmp, float *restrict db, const float *restrict dy,
                          const int32_t *restrict argmax, const float *restrict y, int64_t o, fclf_conv2d_shape s) {
    const int64_t P = s.oh * s.ow, NP = s.n * P;
    fclf_unpool_channel(isa, tmp + o * NP, P, dy, argmax, y, s.n, s.oc, o, s.oh, s.ow);
    if (db) fclf_conv_db_row(db, tmp, o, s);
}

static void conv_pool_backward(int isa, float *dx, float *dw, float *db, float *dcol, float *tmp, const float *dy,
                               const int32_t *argmax, const float *y, const float *col, const float *x, const float *w,
                               fclf_conv2d_shape s) {
    const int small = s.c * s.kh * s.kw < FCLF_CONV_SMALL_K, one_pass = small && fclf_conv2d_pool_supported(s);
    if (one_pass) { /* the weight gradient from x, routed plane by plane into L1; dx below from the routed dz */
        const fclf_conv_grad_source g = {NULL, NULL, dy, y, argmax, NULL};
        fclf_conv_direct_weight_grad(isa, dw, db, &g, NULL, x, 0, s);
        if (!dx) return;
        dw = NULL, db = NULL, col = NULL; /* done: the products below give dx alone */
    } else if (small && !col) {
        /* A small-K shape the one-pass forward refuses (its planes or frame too large for the stack, or oh, ow < 2)
         * was convolved by fclf_conv2d_forward, which wrote col: below, the separate passes' sums, bit for bit.
         * Without col, the naive loops (slow, to rounding). */
        fclf_maxpool2x2_backward_with(isa, tmp, dy, argmax, y, s.n * s.oc, s.oh, s.ow);
        fclf_conv2d_backward_ref(dx, dw, db, tmp, x, w, s);
        return;
    } else if (small && !dx) { /* routed into tmp, NCHW, as the separate pool would */
        fclf_maxpool2x2_backward_with(isa, tmp, dy, argmax, y, s.n * s.oc, s.oh, s.ow);
        const fclf_conv_grad_source g = {tmp, NULL, NULL, NULL, NULL, NULL};
        fclf_conv_direct_weight_grad(isa, dw, db, &g, col, NULL, 0, s);
        return;
    }
    /* Routed straight into the GEMM layout [oc, n*P]: no full-size gradient in NCHW, no copy of it. */
    FCLF_PARALLEL_IF(fclf_conv_big(s), for (FCLF_STATIC_RANGE(o, s.oc)) dz_row_pooled(isa, tmp, db, dy, argmax, y, o, s););
    fclf_conv_backward_from_dz(isa, dx, dw, dcol, tmp, col, x, w, s);
}

void fclf_conv2d_pool_backward(float *dx, float *dw, float *db, float *dcol, float *tmp, const float *dy,
                               const int32_t *argmax, const float *y, const float *col, const float *x, const float *w,
                               fclf_conv2d_shape s) {
    conv_pool_backward(fclf_isa_active(), dx, dw, db, dcol, tmp, dy, argmax, y, col, x, w, s);
}

void fclf_conv2d_pool_backward_isa(int isa, float *dx, float *dw, float *db, float *dcol, float *tmp, const float *dy,
                                   const int32_t *argmax, const float *y, const float *col, const float *x,
                                   const float *w, fclf_conv2d_shape s) {
    conv_pool_backward(fclf_isa_usable(isa), dx, dw, db, dcol, tmp, dy, argmax, y, col, x, w, s);
}

/* The backward pass at the pooling's winners. The pool passes each window's gradient g to one output (the winner,
 * where the pooled y > 0 for ReLU), so the convolution's gradients sum one term per window:
 *     dw[o][:, u, v] += g x[:, wy + u, wx + v],   dx[:, wy + u, wx + v] += g w[o][:, u, v],   db[o] += g
 * over (image, output channel, window), (wy, wx) the winner. The GEMM path (fclf_conv2d_pool_backward) routes g
 * into the full output and multiplies all of it: 4 times the terms for a 2x2 pool, and the windows ReLU masks
 * count too. Here a term is the c channels of one tap, contiguous: x and dx in channel-last planes (zero-framed
 * for padding), w as [oc][kh][kw][c]. Each output channel's dw sums its windows image by image in window order;
 * each image's dx sums its terms window by window, per window output channel by output channel (general loops),
 * or output channel by output channel, per channel window by window (the seed CNN's conv2), whichever thread takes
 * them: the same bits for any thread count. The seed CNN's conv2 multiply-adds with FMA in the AVX2 and AVX-512
 * variants and unfused in the portable one, as the GEMM's rows do (gemm_rows): the variant decides, not the CPU's
 * target_clones copy, so the portable variant gives the same bits on a CPU with FMA as without (it contracted in
 * the FMA copies, and QEMU's Nehalem trained other bits than FCLF_ISA=scalar here: scripts/emulated-cpu.sh).
 * Positions that pass no gradient are skipped rather than multiplied by 0, so an Inf or NaN there in x or w does
 * not reach dw or dx as it does through the GEMM path; for finite x and w the two agree to rounding.
 * The seed CNN's conv2 (Zen 4, 2 threads, fclf-profile cnn 32 / 128): 0.60-0.61 / 2.6-2.7 ms for this pass
 * (889b7ca; 128: 75ee355) against 1.7-2.0 / 7.0-7.5 ms for the GEMM path and 1.1-1.3 / 4.6-4.9 ms for the same
 * gradients in Winograd's domain (16 GEMMs per gradient over the tiles, 4766f4b), which multiplied 2 x 16 per
 * tile and channel pair where this multiplies 2 x 9 per window. */
static int64_t winners_plane(fclf_conv2d_shape s) { return fclf_conv_framed_rows(s) * fclf_conv_framed_cols(s) * s.c; }

/* Floats rounded up to whole cache lines. The planes' vectors start on cache lines (a window's taps lie c floats
 * apart), which they only do when the buffers do: loads split across two lines halve the products' rate. */
static int64_t winners_round(int64_t floats) { return (floats + 15) / 16 * 16; }

int fclf_conv2d_pool_backward_winners_supported(fclf_conv2d_shape s) {
    /* the image must fit its frame (oh + kh - 1 rows): a shape whose sizes disagree is refused, not overrun */
    return s.c * s.kh * s.kw >= FCLF_CONV_SMALL_K && s.oh >= 2 && s.ow >= 2 && s.pad_t >= 0 && s.pad_l >= 0 &&
           s.h + s.pad_t <= fclf_conv_framed_rows(s) && s.w + s.pad_l <= fclf_conv_framed_cols(s);
}

int64_t fclf_conv2d_pool_backward_winners_work_size(fclf_conv2d_shape s) {
    if (!fclf_conv2d_pool_backward_winners_supported(s) || s.n <= 0) return 0;
    /* x and dx channel-last, w [oc][kh][kw][c], dw the same, each on a cache line (winners_parts) */
    return 2 * winners_round(s.n * winners_plane(s)) + 2 * winners_round(s.oc * s.kh * s.kw * s.c) + 16;
}

/* Images [i0, i1) of x into xt [n][fh][fw][c], their frames zero. */
FCLF_CLONES static void to_channel_last(float *restrict xt, const float *restrict x, fclf_conv2d_shape s, int64_t i0,
                                        int64_t i1) {
    const int64_t fw = fclf_conv_framed_cols(s), C = s.c;
    for (int64_t i = i0; i < i1; i++) {
        float *d = xt + i * winners_plane(s);
        if (fclf_conv_framed_rows(s) != s.h || fclf_conv_framed_cols(s) != s.w) /* padded: the frame */
            memset(d, 0, (size_t)winners_plane(s) * sizeof(float));
        for (int64_t y = 0; y < s.h; y++)
            for (int64_t ci = 0; ci < C; ci++) {
                const float *src = x + ((i * C + ci) * s.h + y) * s.w;
                float *dst = d + ((y + s.pad_t) * fw + s.pad_l) * C + ci;
                for (int64_t q = 0; q < s.w; q++) dst[q * C] = src[q];
            }
    }
}

/* Image i's dx from its channel-last dxt (the frame dropped). */
FCLF_CLONES static void from_channel_last(float *restrict dx, const float *restrict dxt, fclf_conv2d_shape s, int64_t i) {
    const int64_t fw = fclf_conv_framed_cols(s), C = s.c;
    const float *d = dxt + i * winners_plane(s);
    for (int64_t ci = 0; ci < C; ci++)
        for (int64_t y = 0; y < s.h; y++) {
            const float *src = d + ((y + s.pad_t) * fw + s.pad_l) * C + ci;
            float *dst = dx + ((i * C + ci) * s.h + y) * s.w;
            for (int64_t q = 0; q < s.w; q++) dst[q] = src[q * C];
        }
}

/* Where the winner of the window at (oy, ox) of the output lies in the framed channel-last plane (its top-left tap), or -1 when no gradient passes
 * (ReLU's mask). The winner's offset from its window's corner is read as a row and column of 0 or 1 whatever the
 * index, so a bad index cannot reach outside the plane. */
static inline int64_t winner_at(const int32_t *restrict argmax, const float *restrict y, int64_t at, int64_t oy,
                                int64_t ox, fclf_conv2d_shape s) {
    if (y && !(y[at] > 0.0f)) return -1;
    const int64_t off = (int64_t)argmax[at] - (oy * s.ow + ox), wi = off >= s.ow, wj = (off - wi * s.ow) & 1;
    return ((oy + wi) * fclf_conv_framed_cols(s) + ox + wj) * s.c;
}

/* Any shape: dw for output channels [o0, o1) into dwt [oc][kh][kw][c], and db; the sums in dwt. */
static inline __attribute__((always_inline)) void winners_dw(float *restrict dwt, float *restrict db,
                                                            const float *restrict dy, const int32_t *restrict argmax,
                                                            const float *restrict y, const float *restrict xt,
                                                            fclf_conv2d_shape s, int64_t o0, int64_t o1) {
    const int64_t C = s.c, KH = s.kh, KW = s.kw, Q = (s.oh / 2) * (s.ow / 2), pw = s.ow / 2, fw = fclf_conv_framed_cols(s), plane = winners_plane(s);
    for (int64_t o = o0; o < o1; o++) {
        float *acc = dwt + o * KH * KW * C;
        for (int64_t k = 0; k < KH * KW * C; k++) acc[k] = 0.0f;
        float sum = 0.0f;
        for (int64_t i = 0; i < s.n; i++)
            for (int64_t q = 0; q < Q; q++) {
                const int64_t at = (i * s.oc + o) * Q + q, p = winner_at(argmax, y, at, 2 * (q / pw), 2 * (q % pw), s);
                if (p < 0) continue;
                const float g = dy[at];
                sum += g;
                const float *xp = xt + i * plane + p;
                for (int64_t u = 0; u < KH; u++)
                    for (int64_t v = 0; v < KW; v++)
                        for (int64_t ci = 0; ci < C; ci++) acc[(u * KW + v) * C + ci] += g * xp[(u * fw + v) * C + ci];
            }
        if (db) db[o] += sum;
    }
}

/* 16 floats as one value (a zmm, or 2 ymm, 4 xmm): the seed CNN's conv2 keeps an output channel's 9 taps x 32
 * channels of weight-gradient sums, or of weights for dx, in 18 of them, which the compiler holds in registers
 * where it has 32 (the general loops, winners_dw above and winners_dx below, keep the sums in memory: 2x slower
 * for dw). */
typedef float fclf_v16 __attribute__((vector_size(64), aligned(4)));

/* The seed CNN's conv2 (32 channels, 3x3): the register paths below take it, each in a fused and an unfused copy. */
static int is_c32k3(fclf_conv2d_shape s) { return s.c == 32 && s.kh == 3 && s.kw == 3; }

/* *acc += g *v per lane: one FMA (fused) or a product and a sum, each rounded. fused is a constant at every call,
 * so that each always-inlined copy has one of the two. (Pointers: a 64-byte vector passed by value changes the
 * ABI in the copies without AVX-512.) */
static inline __attribute__((always_inline)) void madd16(int fused, float g, const fclf_v16 *v, fclf_v16 *acc) {
    if (!fused) {
        *acc = *acc + g * *v;
        return;
    }
    fclf_v16 gv;
    for (int l = 0; l < 16; l++) gv[l] = g;
    *acc = __builtin_elementwise_fma(gv, *v, *acc);
}

static inline __attribute__((always_inline)) void winners_dw_c32k3(int fused, float *restrict dwt, float *restrict db,
                                                                  const float *restrict dy,
                                                                  const int32_t *restrict argmax,
                                                                  const float *restrict y, const float *restrict xt,
                                                                  fclf_conv2d_shape s, int64_t o0, int64_t o1) {
    const int64_t Q = (s.oh / 2) * (s.ow / 2), fw = fclf_conv_framed_cols(s), plane = winners_plane(s);
    for (int64_t o = o0; o < o1; o++) memset(dwt + o * 288, 0, 288 * sizeof(float));
    /* image by image, so that its channel-last x (21.6 KB) stays in L1 for every output channel; each output
     * channel's sums go from registers to dwt and back between images (the order of its terms is the same) */
    for (int64_t i = 0; i < s.n; i++)
        for (int64_t o = o0; o < o1; o++) {
            fclf_v16 acc[18];
            memcpy(acc, dwt + o * 288, sizeof acc);
            float sum = 0.0f;
            for (int64_t q = 0, oy = 0; oy + 1 < s.oh; oy += 2)
                for (int64_t ox = 0; ox + 1 < s.ow; ox += 2, q++) {
                const int64_t at = (i * s.oc + o) * Q + q, p = winner_at(argmax, y, at, oy, ox, s);
                if (p < 0) continue;
                const float g = dy[at];
                sum += g;
                const float *xp = xt + i * plane + p;
                for (int u = 0; u < 3; u++)
                    for (int v = 0; v < 3; v++)
                        for (int h = 0; h < 2; h++) {
                            fclf_v16 xv;
                            memcpy(&xv, xp + (u * fw + v) * 32 + 16 * h, sizeof xv);
                            madd16(fused, g, &xv, &acc[(u * 3 + v) * 2 + h]);
                        }
            }
            memcpy(dwt + o * 288, acc, sizeof acc);
            if (db) db[o] += sum;
        }
}

FCLF_CLONES static void winners_dw_rows(int fused, float *restrict dwt, float *restrict db, const float *restrict dy,
                                        const int32_t *restrict argmax, const float *restrict y,
                                        const float *restrict xt, fclf_conv2d_shape s, int64_t o0, int64_t o1) {
    if (is_c32k3(s) && fused)
        winners_dw_c32k3(1, dwt, db, dy, argmax, y, xt, s, o0, o1);
    else if (is_c32k3(s))
        winners_dw_c32k3(0, dwt, db, dy, argmax, y, xt, s, o0, o1);
    else
        winners_dw(dwt, db, dy, argmax, y, xt, s, o0, o1);
}

/* Any shape: dx of images [i0, i1), each image's windows and per window its output channels added into dxt, then
 * to NCHW. */
static inline __attribute__((always_inline)) void winners_dx(float *restrict dx, float *restrict dxt,
                                                            const float *restrict dy, const int32_t *restrict argmax,
                                                            const float *restrict y, const float *restrict wt,
                                                            fclf_conv2d_shape s, int64_t i0, int64_t i1) {
    const int64_t C = s.c, KH = s.kh, KW = s.kw, Q = (s.oh / 2) * (s.ow / 2), pw = s.ow / 2, fw = fclf_conv_framed_cols(s), plane = winners_plane(s);
    for (int64_t i = i0; i < i1; i++) {
        float *d = dxt + i * plane;
        memset(d, 0, (size_t)plane * sizeof(float));
        for (int64_t q = 0; q < Q; q++)
            for (int64_t o = 0; o < s.oc; o++) {
                const int64_t at = (i * s.oc + o) * Q + q, p = winner_at(argmax, y, at, 2 * (q / pw), 2 * (q % pw), s);
                if (p < 0) continue;
                const float g = dy[at];
                const float *wo = wt + o * KH * KW * C;
                float *dp = d + p;
                for (int64_t u = 0; u < KH; u++)
                    for (int64_t v = 0; v < KW; v++)
                        for (int64_t ci = 0; ci < C; ci++) dp[(u * fw + v) * C + ci] += g * wo[(u * KW + v) * C + ci];
            }
        from_channel_last(dx, dxt, s, i);
    }
}

/* The seed CNN's conv2: per image, output channel by output channel, its 9 taps x 32 channels of weights held in
 * registers and added at each window's winner into dxt (21.6 KB, in L1). Per window, with the output channels as
 * the inner loop, their weights (74 KB) came from L2 for every window, and picking a window's registers by the
 * winner's place took a branch per term or a sort: 2-3x slower. */
static inline __attribute__((always_inline)) void winners_dx_c32k3(int fused, float *restrict dx, float *restrict dxt,
                                                                  const float *restrict dy,
                                                                  const int32_t *restrict argmax,
                                                                  const float *restrict y, const float *restrict wt,
                                                                  fclf_conv2d_shape s, int64_t i0, int64_t i1) {
    const int64_t Q = (s.oh / 2) * (s.ow / 2), fw = fclf_conv_framed_cols(s), plane = winners_plane(s);
    for (int64_t i = i0; i < i1; i++) {
        float *d = dxt + i * plane;
        memset(d, 0, (size_t)plane * sizeof(float));
        for (int64_t o = 0; o < s.oc; o++) {
            fclf_v16 wv[18];
            memcpy(wv, wt + o * 288, sizeof wv);
            for (int64_t q = 0, oy = 0; oy + 1 < s.oh; oy += 2)
                for (int64_t ox = 0; ox + 1 < s.ow; ox += 2, q++) {
                    const int64_t at = (i * s.oc + o) * Q + q, p = winner_at(argmax, y, at, oy, ox, s);
                    if (p < 0) continue;
                    const float g = dy[at];
                    float *dp = d + p;
                    for (int u = 0; u < 3; u++)
                        for (int v = 0; v < 3; v++)
                            for (int h = 0; h < 2; h++) {
                                fclf_v16 cur;
                                memcpy(&cur, dp + (u * fw + v) * 32 + 16 * h, sizeof cur);
                                madd16(fused, g, &wv[(u * 3 + v) * 2 + h], &cur);
                                memcpy(dp + (u * fw + v) * 32 + 16 * h, &cur, sizeof cur);
                            }
                }
        }
        from_channel_last(dx, dxt, s, i);
    }
}

FCLF_CLONES static void winners_dx_images(int fused, float *restrict dx, float *restrict dxt, const float *restrict dy,
                                          const int32_t *restrict argmax, const float *restrict y,
                                          const float *restrict wt, fclf_conv2d_shape s, int64_t i0, int64_t i1) {
    if (is_c32k3(s) && fused)
        winners_dx_c32k3(1, dx, dxt, dy, argmax, y, wt, s, i0, i1);
    else if (is_c32k3(s))
        winners_dx_c32k3(0, dx, dxt, dy, argmax, y, wt, s, i0, i1);
    else
        winners_dx(dx, dxt, dy, argmax, y, wt, s, i0, i1);
}

static void pool_backward_winners(int isa, float *dx, float *dw, float *db, float *work, const float *dy,
                                  const int32_t *argmax, const float *y, const float *x, const float *w,
                                  fclf_conv2d_shape s) {
    if (s.n <= 0 || s.oc <= 0 || !fclf_conv2d_pool_backward_winners_supported(s)) return;
    const int64_t taps = s.kh * s.kw, K = s.c * taps;
    const int fused = isa != FCLF_ISA_SCALAR;
    float *xt = (float *)(((uintptr_t)work + 63) & ~(uintptr_t)63), *dxt = xt + winners_round(s.n * winners_plane(s));
    float *wt = dxt + winners_round(s.n * winners_plane(s)), *dwt = wt + winners_round(s.oc * K);
    FCLF_PARALLEL_IF(fclf_conv_big(s), {
        to_channel_last(xt, x, s, fclf_partition_bound(s.n, 0), fclf_partition_bound(s.n, 1));
        if (dx)
            for (FCLF_STATIC_RANGE(o, s.oc))
                for (int64_t ci = 0; ci < s.c; ci++)
                    for (int64_t k = 0; k < taps; k++) wt[(o * taps + k) * s.c + ci] = w[(o * s.c + ci) * taps + k];
    });
    FCLF_PARALLEL_IF(fclf_conv_big(s), {
        const int64_t o0 = fclf_partition_bound(s.oc, 0), o1 = fclf_partition_bound(s.oc, 1);
        winners_dw_rows(fused, dwt, db, dy, argmax, y, xt, s, o0, o1);
        for (int64_t o = o0; o < o1; o++)
            for (int64_t ci = 0; ci < s.c; ci++)
                for (int64_t k = 0; k < taps; k++) dw[(o * s.c + ci) * taps + k] += dwt[(o * taps + k) * s.c + ci];
        if (dx) winners_dx_images(fused, dx, dxt, dy, argmax, y, wt, s, fclf_partition_bound(s.n, 0), fclf_partition_bound(s.n, 1));
    });
}

void fclf_conv2d_pool_backward_winners(float *dx, float *dw, float *db, float *work, const float *dy,
                                       const int32_t *argmax, const float *y, const float *x, const float *w,
                                       fclf_conv2d_shape s) {
    pool_backward_winners(fclf_isa_active(), dx, dw, db, work, dy, argmax, y, x, w, s);
}

void fclf_conv2d_pool_backward_winners_isa(int isa, float *dx, float *dw, float *db, float *work, const float *dy,
                                           const int32_t *argmax, const float *y, const float *x, const float *w,
                                           fclf_conv2d_shape s) {
    pool_backward_winners(fclf_isa_usable(isa), dx, dw, db, work, dy, argmax, y, x, w, s);
}
