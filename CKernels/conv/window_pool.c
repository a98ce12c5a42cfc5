/* window_pool.c: inference's convolution + activation + 2x2 max pooling, computed pooling window by pooling
 * window with the output channels in vector lanes.
 *
 * Through the GEMM, one image's conv2 (64 x 121 outputs, K = 288) is packed as an im2col panel (35k floats),
 * multiplied, stored whole and pooled in a second pass; its last row and column (21 of 121 pixels) are computed
 * for nothing, since a 2x2 pooling of 11 x 11 drops them (fclf-profile infer: 47 us of the seed CNN's 81 us
 * per image). Here each tile is one or more pooling windows (2x2 pixels) times 16 to 64 output channels: per
 * tap, the weights of those channels are one vector load each (packed once, [tap][channel]) and each pixel's
 * input value one broadcast read straight from x, so there is no packing per call; the four pixels of a
 * window are pooled in registers and only the pooled value is stored.
 *
 * The arithmetic is the GEMM's (the variant's micro-kernel, fclf_conv2d_forward) element by element: each K
 * block (fclf_gemm_kstep) summed from 0 in tap order with FMA, the blocks' sums added in order, then + bias and
 * ReLU as max(r, 0), then the pooling's comparisons in its order. So the results are those of
 * fclf_conv2d_forward then fclf_maxpool2x2_forward, bit for bit, for any batch or thread count. AVX-512 has
 * 16-channel vectors and a pixel-lane kernel for conv1; AVX2 has 8-channel vectors for the GEMM's shapes and
 * its own pixel-lane kernel for conv1 (window_pool_avx2.c). */
#include "window_pool.h"
#include "plane.h"
#include "../gemm/gemm.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Taps whose offsets are tabulated on the stack (c*kh*kw: conv2 288, a 512-channel 3x3 layer 4608). */
enum { WINDOW_MAX_TAPS = 8192 };

static int64_t padded_plane(fclf_conv2d_shape s) { return fclf_conv_framed_rows(s) * fclf_conv_framed_cols(s); }

/* K = 9 (conv1: a 3x3 kernel on one channel) rounds as the one-pass kernel's AVX-512 path (conv_pool.c,
 * direct.c): the sum starts at the bias, then the nine FMAs; other small K round as the portable loops, which
 * this kernel does not copy. */
static int rounds_as_small_k(fclf_conv2d_shape s) { return s.c * s.kh * s.kw == 9; }

int fclf_conv2d_window_pool_supported(fclf_conv2d_shape s) {
    const int64_t K = s.c * s.kh * s.kw, plane = fclf_im2col_padded(&s) ? padded_plane(s) : s.h * s.w;
    /* the tap offsets are int32 (off[]): one image's (padded) input must index with them */
    return (fclf_conv_packs_from_x(s) || (rounds_as_small_k(s) && fclf_conv2d_pool_supported(s))) && K <= WINDOW_MAX_TAPS &&
           s.oh >= 2 && s.ow >= 2 && s.c * plane <= INT32_MAX;
}

#if defined(__x86_64__)
/* Whether the pixel-lane kernels (k9_image__avx512f below, fclf_k9_image__avx2) take this shape. */
static int pixels_in_lanes(fclf_conv2d_shape s) { return s.c == 1 && s.kh == 3 && s.kw == 3; }
#endif

/* Whether this process runs the window kernel (else the GEMM and the pooling pass). AVX2 has it for the GEMM's
 * shapes and for conv1's (one channel, 3x3); other small-K shapes keep the one-pass kernel there. */
static int window_kernel_runs(int isa, fclf_conv2d_shape s) {
#if defined(__x86_64__)
    /* the plane tiles (plane.c) round otherwise than the GEMM whose bits this kernel keeps: such shapes take the
     * passes, so that inference's pooled output is training's */
    return fclf_conv2d_window_pool_supported(s) && !fclf_conv_plane_taken(isa, s) &&
           (isa == FCLF_ISA_AVX512F || (isa == FCLF_ISA_AVX2 && (fclf_conv_packs_from_x(s) || pixels_in_lanes(s))));
#else
    (void)isa, (void)s;
    return 0;
#endif
}


int64_t fclf_conv2d_window_pool_packed_size(fclf_conv2d_shape s) {
    return window_kernel_runs(fclf_isa_active(), s) ? s.c * s.kh * s.kw * fclf_window_channels_padded(s) : 0;
}

void fclf_conv2d_window_pool_pack_weights(float *wp, const float *w, fclf_conv2d_shape s) {
    const int64_t K = s.c * s.kh * s.kw, ocp = fclf_window_channels_padded(s);
    for (int64_t k = 0; k < K; k++)
        for (int64_t o = 0; o < ocp; o++) wp[k * ocp + o] = o < s.oc ? w[o * K + k] : 0.0f;
}

int64_t fclf_conv2d_window_pool_work_size(fclf_conv2d_shape s) {
    /* the two passes' full output (the one-pass kernel needs none); the window kernel's padded input */
    const int64_t passes = fclf_conv_packs_from_x(s) ? s.n * s.oc * s.oh * s.ow : 0;
    const int64_t padded = fclf_im2col_padded(&s) ? s.n * s.c * padded_plane(s) : 0;
    return passes > padded ? passes : padded;
}

#if defined(__x86_64__)
/* Taps [c0, c1) for W pooling windows side by side in one pooled row, times V vectors of 16 output channels
 * from o0: 4W x V accumulators (<= 16, with the V weights and a broadcast: 2 FMA pipes x 4-cycle latency
 * need 8 in flight). part and sum hold the tile's [4W][V][16] partial and K-block sums. fresh: c0 starts a K
 * block (accumulate from 0, or from the bias b when bias_first, else from part); finish: c1 ends it, whose sum goes into sum as the
 * micro-kernel stores it (r = 1 * acc for the first block, else r = 1 * acc + 1 * sum). xb: the (padded)
 * input at the tile's first pixel, off[k] tap k's offset from it, wrow its row length. */
static inline __attribute__((always_inline, target("avx512f"))) void tile_taps(
    const int V, const int W, float *restrict part, float *restrict sum, const float *restrict xb, int64_t wrow,
    const int32_t *restrict off, const float *restrict wp, int64_t ocp, int64_t o0, int64_t oc, int64_t c0, int64_t c1,
    int fresh, int finish, int first_block, const float *restrict bias_first) {
    __m512 acc[4 * 4][4];
    int64_t px[4 * 4];
    for (int w = 0; w < W; w++)
        for (int d = 0; d < 4; d++) px[4 * w + d] = (d >> 1) * wrow + 2 * w + (d & 1);
    for (int j = 0; j < 4 * W; j++)
        for (int v = 0; v < V; v++)
            acc[j][v] = !fresh      ? _mm512_load_ps(part + (j * V + v) * 16)
                        : bias_first ? _mm512_maskz_loadu_ps(fclf_lanes16(oc - o0 - 16 * v), bias_first + o0 + 16 * v)
                                     : _mm512_setzero_ps();
    for (int64_t k = c0; k < c1; k++) {
        const float *xk = xb + off[k], *wk = wp + k * ocp + o0;
        __m512 wv[4];
        for (int v = 0; v < V; v++) wv[v] = _mm512_loadu_ps(wk + 16 * v);
        for (int j = 0; j < 4 * W; j++) {
            const __m512 xv = _mm512_set1_ps(xk[px[j]]);
            for (int v = 0; v < V; v++) acc[j][v] = _mm512_fmadd_ps(wv[v], xv, acc[j][v]);
        }
    }
    for (int j = 0; j < 4 * W; j++)
        for (int v = 0; v < V; v++) {
            float *at = (finish ? sum : part) + (j * V + v) * 16;
            _mm512_store_ps(at, finish && !first_block ? _mm512_add_ps(acc[j][v], _mm512_load_ps(at)) : acc[j][v]);
        }
}

/* The 2x2 pooling's maximum of a window's top left, top right, bottom left and bottom right values, lane by
 * lane, with the pooling's comparisons in its order: a later one wins if greater (NaN never does). */
static inline __attribute__((always_inline, target("avx512f"))) __m512 pool_max4(const __m512 q[4]) {
    __m512 m = q[0];
    for (int d = 1; d < 4; d++) m = _mm512_mask_mov_ps(m, _mm512_cmp_ps_mask(q[d], m, _CMP_GT_OQ), q[d]);
    return m;
}

/* The tile's epilogue: + bias, ReLU as the micro-kernel applies them, then each window's 2x2 maximum with the
 * pooling's comparisons in its order, stored at y + o*Q + at + w for the channels below oc. */
static inline __attribute__((always_inline, target("avx512f"))) void tile_store(
    const int V, const int W, float *restrict y, const float *restrict sum, const float *restrict b, int relu,
    int64_t o0, int64_t oc, int64_t Q, int64_t at) {
    const __m512 zero = _mm512_setzero_ps();
    for (int v = 0; v < V; v++) {
        const int64_t o = o0 + 16 * v, lanes = oc - o < 16 ? oc - o : 16;
        if (lanes <= 0) break;
        const __m512 bv = b ? _mm512_maskz_loadu_ps(fclf_lanes16(lanes), b + o) : zero;
        for (int w = 0; w < W; w++) {
            __m512 q[4];
            for (int d = 0; d < 4; d++) {
                __m512 t = _mm512_load_ps(sum + ((4 * w + d) * V + v) * 16);
                if (b) t = _mm512_add_ps(t, bv);
                if (relu) t = _mm512_max_ps(t, zero); /* t > 0 ? t : 0, NaN to 0, as the micro-kernel */
                q[d] = t;
            }
            const __m512 m = pool_max4(q);
            float lane[16] __attribute__((aligned(64)));
            _mm512_store_ps(lane, m);
            for (int64_t l = 0; l < lanes; l++) y[(o + l) * Q + at + w] = lane[l];
        }
    }
}

/* V vector groups of channels from o0 over every window of one image, a group of windows of one pooled row
 * at a time: tiles of W = 4 / V windows where the group has them, then single windows. */
static inline __attribute__((always_inline, target("avx512f"))) void window_group(
    const int V, float *restrict y, const float *restrict xp, int64_t wrow, const int32_t *restrict off,
    const float *restrict wp, int64_t ocp, int64_t o0, int64_t K, int64_t kstep, const float *restrict b, int relu,
    int bias_first, fclf_conv2d_shape s, int64_t py0, int64_t py1) {
    const int64_t ph = s.oh / 2, pw = s.ow / 2, Q = ph * pw, per = 4 * V * 16; /* floats per window */
    const int W = V == 1 ? 4 : V == 2 ? 2 : 1;
    const int64_t group = FCLF_WINDOW_GROUP_FLOATS / per, chunk = FCLF_WINDOW_CHUNK_FLOATS / (16 * V);
    float part[FCLF_WINDOW_GROUP_FLOATS] __attribute__((aligned(64))), sum[FCLF_WINDOW_GROUP_FLOATS] __attribute__((aligned(64)));
    const float *init = bias_first ? b : NULL, *add = bias_first ? NULL : b;
    for (int64_t py = py0; py < py1; py++) {
        const float *row = xp + 2 * py * wrow;
        for (int64_t g0 = 0; g0 < pw; g0 += group) {
            const int64_t g1 = g0 + group < pw ? g0 + group : pw, wide_end = g0 + (g1 - g0) / W * W;
            for (int64_t k0 = 0; k0 < K; k0 += kstep) {
                const int64_t k1 = k0 + kstep < K ? k0 + kstep : K;
                for (int64_t c0 = k0; c0 < k1; c0 += chunk) {
                    const int64_t c1 = c0 + chunk < k1 ? c0 + chunk : k1;
                    const int fresh = c0 == k0, finish = c1 == k1, first = k0 == 0;
                    for (int64_t q = g0; q < wide_end; q += W)
                        tile_taps(V, W, part + (q - g0) * per, sum + (q - g0) * per, row + 2 * q, wrow, off, wp, ocp, o0,
                                  s.oc, c0, c1, fresh, finish, first, init);
                    for (int64_t q = wide_end; q < g1; q++)
                        tile_taps(V, 1, part + (q - g0) * per, sum + (q - g0) * per, row + 2 * q, wrow, off, wp, ocp, o0,
                                  s.oc, c0, c1, fresh, finish, first, init);
                }
            }
            for (int64_t q = g0; q < wide_end; q += W) tile_store(V, W, y, sum + (q - g0) * per, add, relu, o0, s.oc, Q, py * pw + q);
            for (int64_t q = wide_end; q < g1; q++) tile_store(V, 1, y, sum + (q - g0) * per, add, relu, o0, s.oc, Q, py * pw + q);
        }
    }
}

/* Pooled rows [py0, py1) of one image for the vector groups of 16 channels [v0, v1): groups of V = 4 where they
 * fit, then the rest. */
__attribute__((target("avx512f"))) static void window_span__avx512f(float *restrict y, const float *restrict xp,
                                                                    int64_t wrow, const int32_t *restrict off,
                                                                    const float *restrict wp, const float *restrict b,
                                                                    int relu, int64_t kstep, int bias_first,
                                                                    fclf_conv2d_shape s, int64_t v0, int64_t v1,
                                                                    int64_t py0, int64_t py1) {
    const int64_t K = s.c * s.kh * s.kw, ocp = fclf_window_channels_padded(s);
    int64_t v = v0;
    for (; v + 4 <= v1; v += 4) window_group(4, y, xp, wrow, off, wp, ocp, 16 * v, K, kstep, b, relu, bias_first, s, py0, py1);
    switch (v1 - v) {
    case 3: window_group(3, y, xp, wrow, off, wp, ocp, 16 * v, K, kstep, b, relu, bias_first, s, py0, py1); break;
    case 2: window_group(2, y, xp, wrow, off, wp, ocp, 16 * v, K, kstep, b, relu, bias_first, s, py0, py1); break;
    case 1: window_group(1, y, xp, wrow, off, wp, ocp, 16 * v, K, kstep, b, relu, bias_first, s, py0, py1); break;
    default: break;
    }
}

__attribute__((target("avx512f"))) static void window_image__avx512f(float *restrict y, const float *restrict xp,
                                                                     int64_t wrow, int64_t plane,
                                                                     const float *restrict wp, const float *restrict b,
                                                                     int relu, int64_t kstep, int bias_first,
                                                                     fclf_conv2d_shape s) {
    int32_t off[WINDOW_MAX_TAPS];
    fclf_conv_tap_offsets(off, plane, wrow, s);
    window_span__avx512f(y, xp, wrow, off, wp, b, relu, kstep, bias_first, s, 0, fclf_window_channels_padded(s) / 16, 0, s.oh / 2);
}
#endif

#if defined(__x86_64__)
/* One input channel, 3x3 (conv1): with channels in lanes, each tile has only 9 taps of work for an epilogue
 * that stores its pooled values one float at a time into the channel-major output (fclf-profile infer:
 * conv1 8.5 us of 54.6 per image, about a third of the FMA rate conv2 reaches). Here output pixels are in
 * the lanes instead: 4 channels x 2 output rows x 32 columns of one pooled row in 16 registers, one input
 * load per row and tap shared by the 4 channels, then the columns' pairs split with two permutes, pooled in
 * registers and stored as a row of the output. Each output is still the one-pass kernel's bias + 9 FMAs in
 * tap order, then ReLU as max(r, 0) and the comparisons in the pooling's order, so the bits do not change. */
static inline __attribute__((always_inline, target("avx512f"))) void k9_rows(
    const int G, float *restrict y, const float *restrict xp, int64_t wrow, const float *restrict w,
    const float *restrict b, int relu, int64_t o0, int64_t py, int64_t cb, int64_t pw, int64_t Q) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const __m512 zero = _mm512_setzero_ps();
    const __mmask16 m[2] = {fclf_lanes16(2 * pw - cb), fclf_lanes16(2 * pw - cb - 16)};
    __m512 acc[4][2][2]; /* [channel][output row][column vector] */
    for (int g = 0; g < G; g++) {
        const __m512 bv = _mm512_set1_ps(b ? b[o0 + g] : 0.0f);
        for (int r = 0; r < 2; r++) acc[g][r][0] = acc[g][r][1] = bv;
    }
    for (int ki = 0; ki < 3; ki++)
        for (int kj = 0; kj < 3; kj++) {
            __m512 xv[2][2];
            for (int r = 0; r < 2; r++)
                for (int v = 0; v < 2; v++)
                    xv[r][v] = _mm512_maskz_loadu_ps(m[v], xp + (2 * py + r + ki) * wrow + cb + 16 * v + kj);
            for (int g = 0; g < G; g++) {
                const __m512 wv = _mm512_set1_ps(w[(o0 + g) * 9 + ki * 3 + kj]);
                for (int r = 0; r < 2; r++)
                    for (int v = 0; v < 2; v++) acc[g][r][v] = _mm512_fmadd_ps(wv, xv[r][v], acc[g][r][v]);
            }
        }
    for (int g = 0; g < G; g++) {
        __m512 q[4]; /* top left, top right, bottom left, bottom right of 16 windows */
        for (int r = 0; r < 2; r++) {
            const __m512 a = relu ? _mm512_max_ps(acc[g][r][0], zero) : acc[g][r][0];
            const __m512 c = relu ? _mm512_max_ps(acc[g][r][1], zero) : acc[g][r][1];
            q[2 * r] = _mm512_permutex2var_ps(a, even, c);
            q[2 * r + 1] = _mm512_permutex2var_ps(a, odd, c);
        }
        _mm512_mask_storeu_ps(y + (o0 + g) * Q + py * pw + cb / 2, fclf_lanes16(pw - cb / 2), pool_max4(q));
    }
}

/* y [oc, Q] of one image from its input plane xp (rows wrow apart, zero border included where padded). */
__attribute__((target("avx512f"))) static void k9_image__avx512f(float *restrict y, const float *restrict xp,
                                                                 int64_t wrow, const float *restrict w,
                                                                 const float *restrict b, int relu,
                                                                 fclf_conv2d_shape s) {
    const int64_t ph = s.oh / 2, pw = s.ow / 2, Q = ph * pw;
    for (int64_t py = 0; py < ph; py++)
        for (int64_t cb = 0; cb < 2 * pw; cb += 32) {
            int64_t o = 0;
            for (; o + 4 <= s.oc; o += 4) k9_rows(4, y, xp, wrow, w, b, relu, o, py, cb, pw, Q);
            switch (s.oc - o) {
            case 3: k9_rows(3, y, xp, wrow, w, b, relu, o, py, cb, pw, Q); break;
            case 2: k9_rows(2, y, xp, wrow, w, b, relu, o, py, cb, pw, Q); break;
            case 1: k9_rows(1, y, xp, wrow, w, b, relu, o, py, cb, pw, Q); break;
            default: break;
            }
        }
}

#endif

#if defined(__x86_64__)
/* One image's per-window convolution split for fclf_assisted_tasks (a single image on two cores): pooled rows
 * times pairs of channel vectors, 10 tasks for conv2. Tasks differ only in which outputs they write, so the
 * bits are those of the loop below. conv1's shape and the dense rows were split too, and gained nothing on an
 * AMD Zen 4 (5.3 and 7.6 us per image either way, the helper running half their tasks), so they run whole. */
enum { TASK_VECTORS = 2 };
typedef struct {
    float *y;
    const float *x, *wp, *b;
    const int32_t *off;
    int isa, relu, bias_first;
    int64_t kstep, plane, wrow, per_image;
    fclf_conv2d_shape s;
} window_job;

static void window_task(void *ctx, int64_t t) {
    const window_job *j = ctx;
    const fclf_conv2d_shape s = j->s;
    const int64_t i = t / j->per_image, r = t % j->per_image, ph = s.oh / 2, Q = ph * (s.ow / 2);
    const int64_t nv = fclf_window_channels_padded(s) / 16, v0 = r / ph * TASK_VECTORS, py = r % ph;
    if (j->isa == FCLF_ISA_AVX2)
        fclf_window_span__avx2(j->y + i * s.oc * Q, j->x + i * s.c * j->plane, j->wrow, j->off, j->wp, j->b, j->relu, j->kstep,
                          s, v0, fclf_min64(v0 + TASK_VECTORS, nv), py, py + 1);
    else
        window_span__avx512f(j->y + i * s.oc * Q, j->x + i * s.c * j->plane, j->wrow, j->off, j->wp, j->b, j->relu,
                             j->kstep, j->bias_first, s, v0, fclf_min64(v0 + TASK_VECTORS, nv), py, py + 1);
}

static void assisted(int isa, float *y, float *work, const float *x, const float *wp, const float *b, int relu,
                     int64_t kstep, int bias_first, int padded, int64_t plane, int64_t wrow, fclf_conv2d_shape s) {
    if (padded) {
        fclf_conv_frame_planes(work, x, 0, s.n * s.c, s);
        x = work;
    }
    int32_t off[WINDOW_MAX_TAPS];
    fclf_conv_tap_offsets(off, plane, wrow, s);
    const int64_t per_image = (fclf_window_channels_padded(s) / 16 + TASK_VECTORS - 1) / TASK_VECTORS * (s.oh / 2);
    window_job job = {y, x, wp, b, off, isa, relu, bias_first, kstep, plane, wrow, per_image, s};
    fclf_assisted_tasks(s.n * per_image, window_task, &job);
}
#endif

static void window_pool(int isa, float *y, float *work, const float *x, const float *w, const float *wp, const float *b,
                        int relu, fclf_conv2d_shape s) {
    if (s.n <= 0 || s.oc <= 0) return;
    if (!wp || !window_kernel_runs(isa, s)) { /* the passes this kernel stands for */
        if (rounds_as_small_k(s)) {
            fclf_conv2d_pool_forward_isa(isa, y, NULL, x, w, b, relu, s);
        } else {
            fclf_conv2d_forward_isa(isa, work, NULL, x, w, b, relu, s);
            fclf_maxpool2x2_forward_isa(isa, y, NULL, work, s.n * s.oc, s.oh, s.ow);
        }
        return;
    }
#if defined(__x86_64__)
    const int bias_first = rounds_as_small_k(s);
    const int64_t K = s.c * s.kh * s.kw, kstep = bias_first ? K : fclf_gemm_kstep(fclf_gemm_kernel_for(isa), K);
    const int padded = fclf_im2col_padded(&s);
    const int64_t plane = padded ? padded_plane(s) : s.h * s.w, wrow = padded ? fclf_conv_framed_cols(s) : s.w;
    const int64_t Q = (s.oh / 2) * (s.ow / 2);
    if (fclf_assist_active() && fclf_get_max_threads() >= 2 && !pixels_in_lanes(s)) { /* else one pass, V = 4 */
        assisted(isa, y, work, x, wp, b, relu, kstep, bias_first, padded, plane, wrow, s);
        return;
    }
    FCLF_PARALLEL_IF(s.n > 1 && fclf_conv_big(s), for (FCLF_STATIC_RANGE(i, s.n)) {
        const float *xi = x + i * s.c * s.h * s.w;
        if (padded) {
            float *xp = work + i * s.c * plane;
            fclf_conv_frame_planes(xp, xi, 0, s.c, s);
            xi = xp;
        }
        if (pixels_in_lanes(s) && isa == FCLF_ISA_AVX2) {
            fclf_k9_image__avx2(y + i * s.oc * Q, xi, wrow, w, b, relu, s);
        } else if (isa == FCLF_ISA_AVX2) {
            int32_t off[WINDOW_MAX_TAPS];
            fclf_conv_tap_offsets(off, plane, wrow, s);
            fclf_window_span__avx2(y + i * s.oc * Q, xi, wrow, off, wp, b, relu, kstep, s, 0, fclf_window_channels_padded(s) / 16, 0, s.oh / 2);
        } else if (pixels_in_lanes(s)) {
            k9_image__avx512f(y + i * s.oc * Q, xi, wrow, w, b, relu, s);
        } else {
            window_image__avx512f(y + i * s.oc * Q, xi, wrow, plane, wp, b, relu, kstep, bias_first, s);
        }
    });
#endif
}

void fclf_conv2d_window_pool(float *y, float *work, const float *x, const float *w, const float *wp, const float *b,
                             int relu, fclf_conv2d_shape s) {
    window_pool(fclf_isa_active(), y, work, x, w, wp, b, relu, s);
}

void fclf_conv2d_window_pool_isa(int isa, float *y, float *work, const float *x, const float *w, const float *wp,
                                 const float *b, int relu, fclf_conv2d_shape s) {
    window_pool(fclf_isa_usable(isa), y, work, x, w, wp, b, relu, s);
}
