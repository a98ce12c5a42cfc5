/* plane.c: a padded ('same') stride-1 convolution of few output channels computed in tiles of its output planes
 * straight from x's zero-framed planes, forward and backward: the driver, the weights' layout and the AVX-512
 * kernels (plane_avx2.c has the AVX2 kernels).
 *
 * Why: res-bn's first stage is six 16 -> 16 'same' 3x3 convolutions on 28 x 28 planes. As a GEMM (conv2d.c) that
 * is W [16, 144] . col [144, n P]: every column of col (144 floats per output pixel) is packed from the frame and
 * then used for only 16 multiply-adds, so the packing costs about what the product does. A harness timing
 * fclf_conv2d_forward and _backward on that shape at batch 128 (Zen 4, AVX-512) measured, GEMM against this file:
 * forward 6.9 -> 6.3 ms on one thread, 4.1 -> 3.8 ms on two; backward with dx 19.4 -> 13.8 ms and 10.6 -> 7.5 ms;
 * one image's forward on one thread 47 -> 41 us. For 32 and 64 channels (28 x 28, 14 x 14, 7 x 7) it was no faster
 * or slower than the GEMM, whose tiles reuse each packed column 32 or 64 times; those keep the GEMM.
 *
 * Here nothing is packed but the weights. An output plane is read as the frame's rows, fw = ow + kw - 1 apart:
 * flat position p is output pixel (p / fw, p % fw) when p % fw < ow, and tap k = (ci, u, v) of every position lies
 * at off[k] + p in the image's frame. An AVX-512 tile is 32 consecutive positions (two vectors) by 8 output channels
 * (broadcast weights): 16 accumulators, and per tap two loads and 16 FMAs:
 *     y[o, p .. p+31] = b[o] + sum over k of w[o, k] xf[off[k] + p .. off[k] + p + 31].
 * The kw - 1 positions per row that are not pixels are computed and not stored (28 of every 30 lanes are pixels at
 * 28 x 28). The sums start at the bias and add the taps in order; the GEMM adds the bias last and splits K into
 * blocks at the machine's KC: the bits differ from the GEMM path's in the last place.
 *
 * The backward pass:
 * - dz = dy masked by ReLU goes into zero-framed planes (tmp), its per-channel sums (db) taken plane by plane;
 * - dx is the same tiles run on dz's frame with the weights transposed and flipped (a 'full' correlation:
 *   dx[ci, i, j] = sum over o, u, v of w[o, ci, kh-1-u, kw-1-v] dzf[o, i + u, j + v]);
 * - dw[o, k] = sum over images and pixels of dz[o, p] xf[off[k] + p]: dz's frame has x's row length ('same'),
 *   so on AVX-512 the same flat walk serves, with the positions that are not pixels masked off (a tap there may
 *   read a pixel the sum must not: 0 x Inf is NaN, where the GEMM gives no term), and AVX2 walks the pixels row by
 *   row. A register tile of 4 channels x 6 taps (AVX2: 2 x 6) keeps 16-lane (AVX2: 8-lane) sums per (channel
 *   block, tap block) in scratch across the images, reduced once, so the two variants' dw differ in rounding.
 *   Threads take whole (channel block, tap block) pairs, each summed over the images in order, so the bits
 *   do not depend on the thread count; forward and dx split tiles, which never changes a tile's sums.
 *
 * Which shapes (fclf_conv_plane_taken): 'same' shapes that frame x (padded, K = c kh kw >= 16) with at most 16
 * input and 16 output channels and rows of 17 pixels or more (what was measured to gain), on AVX-512 and AVX2.
 * AVX2's tiles are smaller (plane_avx2.c): 4 channels x 16 positions forward, 2 channels x 6 taps for dw. */
#include "plane.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Taps whose offsets live on the stack; the channel and row limits of the path (above). */
enum { PLANE_K_MAX = 1152, PLANE_OC_MAX = 16, PLANE_OW_MIN = 17 };
/* AVX-512's weight gradient register tile: 4 channels x 6 taps = 24 accumulators, 10 loads per 24 FMAs. */
enum { GRAD_OB = 4, GRAD_KB = 6 };
_Static_assert(FCLF_PLANE_AVX2_GRAD_OB <= GRAD_OB && FCLF_PLANE_AVX2_GRAD_KB <= GRAD_KB,
               "grad_pairs' channel and tap arrays hold either variant's tile");
_Static_assert(FCLF_PLANE_TILE_BLOCK % FCLF_PLANE_AVX2_CHANNELS == 0,
               "an AVX2 channel group lies inside one packed block (plane_run reads it at o0 % TILE_BLOCK)");

static int64_t taps_of(fclf_conv2d_shape s) { return s.c * s.kh * s.kw; }
/* AVX-512's forward tile: 8 channels (a packed block) x 2 vectors of 16 flat positions = 16 accumulators. */
enum { TILE_BLOCK = FCLF_PLANE_TILE_BLOCK, TILE_POSITIONS = 32 };

/* A variant's tiles: forward, channels (of a packed block) by flat positions; the weight gradient's, channels by
 * taps of lanes-wide sums. */
typedef struct {
    int isa;
    int64_t channels, positions, grad_ob, grad_kb, lanes;
} plane_tiles;

static plane_tiles tiles_for(int isa) {
    if (isa == FCLF_ISA_AVX2) {
        const plane_tiles t = {isa, FCLF_PLANE_AVX2_CHANNELS, FCLF_PLANE_AVX2_POSITIONS, FCLF_PLANE_AVX2_GRAD_OB, FCLF_PLANE_AVX2_GRAD_KB, 8};
        return t;
    }
    const plane_tiles t = {isa, TILE_BLOCK, TILE_POSITIONS, GRAD_OB, GRAD_KB, 16};
    return t;
}
static int64_t grad_tile_floats(plane_tiles g) { return g.grad_ob * g.grad_kb * g.lanes; }

int fclf_conv_plane_shape(fclf_conv2d_shape s) {
    const int64_t K = taps_of(s), fh = fclf_conv_framed_rows(s), fw = fclf_conv_framed_cols(s);
    /* padding inside the kernel (the transposed correlation's is kh - 1 - pad_t), and tap offsets (int32) that index
     * an image's frames of x and of dz */
    return K >= FCLF_CONV_SMALL_K && fclf_im2col_padded(&s) && s.oh == s.h && s.ow == s.w && s.pad_t >= 0 &&
           s.pad_t < s.kh && s.pad_l >= 0 && s.pad_l < s.kw && s.oc >= 1 && s.oc <= PLANE_OC_MAX && s.c <= PLANE_OC_MAX &&
           s.ow >= PLANE_OW_MIN && K <= PLANE_K_MAX && s.oc * s.kh * s.kw <= PLANE_K_MAX &&
           fclf_max64(s.c, s.oc) * fh * fw <= INT32_MAX;
}

int fclf_conv_plane_taken(int isa, fclf_conv2d_shape s) {
    return (isa == FCLF_ISA_AVX512F || isa == FCLF_ISA_AVX2) && fclf_conv_plane_shape(s);
}

int fclf_conv2d_plane_taken_isa(int isa, fclf_conv2d_shape s) { return fclf_conv_plane_taken(fclf_isa_usable(isa), s); }

/* The 'full' correlation that gives dx: dz's planes as its input, x's channels as its outputs. */
static fclf_conv2d_shape transposed(fclf_conv2d_shape s) {
    fclf_conv2d_shape t = {s.n, s.oc, s.oh, s.ow, s.c, s.kh, s.kw, s.kh - 1 - s.pad_t, s.kw - 1 - s.pad_l, s.h, s.w};
    return t;
}

int64_t fclf_conv_plane_packed_size(fclf_conv2d_shape s) {
    const int64_t ob = TILE_BLOCK;
    return (s.oc + ob - 1) / ob * ob * taps_of(s);
}

int64_t fclf_conv_plane_dz_size(fclf_conv2d_shape s) {
    return s.n * s.oc * fclf_conv_framed_rows(transposed(s)) * fclf_conv_framed_cols(transposed(s));
}

/* wt [block][k][ob]: block b's ob channels side by side for each tap, zero past oc. */
void fclf_conv_plane_pack(float *restrict wt, const float *restrict w, fclf_conv2d_shape s) {
    const int64_t ob = TILE_BLOCK, K = taps_of(s), blocks = (s.oc + ob - 1) / ob;
    for (int64_t bl = 0; bl < blocks; bl++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t j = 0; j < ob; j++) {
                const int64_t o = bl * ob + j;
                wt[(bl * K + k) * ob + j] = o < s.oc ? w[o * K + k] : 0.0f;
            }
}

/* The transposed correlation's packed weights: output channel ci, tap (o, u, v) = w[o, ci, kh-1-u, kw-1-v]. */
static void pack_flipped(float *restrict wt, const float *restrict w, fclf_conv2d_shape s) {
    const fclf_conv2d_shape t = transposed(s);
    const int64_t ob = TILE_BLOCK, K = taps_of(t), blocks = (t.oc + ob - 1) / ob, khw = s.kh * s.kw;
    for (int64_t bl = 0; bl < blocks; bl++)
        for (int64_t o = 0; o < s.oc; o++)
            for (int64_t u = 0; u < s.kh; u++)
                for (int64_t v = 0; v < s.kw; v++) {
                    const int64_t k = (o * s.kh + u) * s.kw + v;
                    for (int64_t j = 0; j < ob; j++) {
                        const int64_t ci = bl * ob + j;
                        wt[(bl * K + k) * ob + j] =
                            ci < s.c ? w[(o * s.c + ci) * khw + (s.kh - 1 - u) * s.kw + (s.kw - 1 - v)] : 0.0f;
                    }
                }
}

/* off[k]: tap k's offset in an image's frame (fh x fw planes) from its output position's. */
static void tap_offsets(int32_t *off, fclf_conv2d_shape s) {
    fclf_conv_tap_offsets(off, fclf_conv_framed_rows(s) * fclf_conv_framed_cols(s), fclf_conv_framed_cols(s), s);
}

#if defined(__x86_64__)
/* Store lanes [lo, hi) of a vector (lanes outside are not written, nor their addresses touched). */
static inline __mmask16 lane_range(int64_t lo, int64_t hi) { return (__mmask16)(fclf_lanes16(hi) & ~fclf_lanes16(lo)); }

/* One tile: the flat positions [p0, p0 + 32) of one image's output (two vectors; L positions in all) for one block of
 * TILE_BLOCK channels, valid of them stored. Position p is output pixel (p / fw, p % fw) when p % fw < ow; the others
 * are computed from the frame and not stored. y: the block's first output plane, planes P apart; xi: the image's
 * frame. */
__attribute__((target("avx512f"))) static void plane_tile(float *restrict y, int64_t P, const float *restrict xi,
                                                         const int32_t *restrict off, int64_t K, const float *restrict wt,
                                                         const float *restrict bias, int relu, int64_t p0, int64_t L,
                                                         int64_t fw, int64_t ow, int64_t valid) {
    const __mmask16 m0 = fclf_lanes16(L - p0), m1 = fclf_lanes16(L - p0 - 16);
    __m512 acc[TILE_BLOCK][2];
    for (int j = 0; j < TILE_BLOCK; j++) acc[j][0] = acc[j][1] = _mm512_set1_ps(bias && j < valid ? bias[j] : 0.0f);
    const float *x = xi + p0;
    for (int64_t k = 0; k < K; k++) {
        const float *p = x + off[k];
        const __m512 x0 = _mm512_maskz_loadu_ps(m0, p), x1 = _mm512_maskz_loadu_ps(m1, p + 16);
        const float *wk = wt + k * TILE_BLOCK;
        for (int j = 0; j < TILE_BLOCK; j++) {
            const __m512 wv = _mm512_set1_ps(wk[j]);
            acc[j][0] = _mm512_fmadd_ps(wv, x0, acc[j][0]);
            acc[j][1] = _mm512_fmadd_ps(wv, x1, acc[j][1]);
        }
    }
    const __m512 zero = _mm512_setzero_ps();
    if (relu)
        for (int j = 0; j < TILE_BLOCK; j++) {
            acc[j][0] = _mm512_max_ps(acc[j][0], zero);
            acc[j][1] = _mm512_max_ps(acc[j][1], zero);
        }
    /* each output row the tile covers: its lanes go to y's row, at y + r ow + (p - r fw) for position p */
    const int64_t end = fclf_min64(p0 + TILE_POSITIONS, L);
    for (int64_t r = p0 / fw; r * fw < end; r++) {
        const int64_t lo = fclf_max64(p0, r * fw), hi = fclf_min64(end, r * fw + ow);
        if (hi <= lo) continue;
        const __mmask16 k0 = lane_range(lo - p0, hi - p0), k1 = lane_range(lo - p0 - 16, hi - p0 - 16);
        /* the address of lane 0: before the row when the tile starts left of it, and only the mask's lanes store */
        const intptr_t lane0 = (intptr_t)(r * ow - r * fw + p0);
        for (int j = 0; j < valid && j < TILE_BLOCK; j++) {
            float *dst = (float *)((uintptr_t)(y + j * P) + (uintptr_t)(lane0 * (intptr_t)sizeof(float)));
            if (k0) _mm512_mask_storeu_ps(dst, k0, acc[j][0]);
            if (k1) _mm512_mask_storeu_ps(dst + 16, k1, acc[j][1]);
        }
    }
}

/* dw's register tile for one image: acc[o][k] += dz[o] * xf[tap k] over the L flat positions, 16 lanes each, the
 * sums kept in part (GRAD_OB x GRAD_KB x 16 floats) between images. dz[o]: channel o's gradient at position 0 in its frame, whose
 * rows are as long as x's (fw: a 'same' shape), so that position p is dz[o] + p, and the frame's zeros stand at
 * every position that is not an output pixel; xi: the image's frame; off: the block's six taps. */
__attribute__((target("avx512f"))) static void grad_tile(float *restrict part, const float *const *dz,
                                                        const float *restrict xi, const int32_t *off, int64_t L,
                                                        int64_t fw, int64_t ow) {
    __m512 acc[GRAD_OB][GRAD_KB];
    for (int o = 0; o < GRAD_OB; o++)
        for (int k = 0; k < GRAD_KB; k++) acc[o][k] = _mm512_load_ps(part + (o * GRAD_KB + k) * 16);
    /* q: the column of the vector's first position; rows of fw > 16 positions: a vector spans at most two */
    for (int64_t p = 0, q = 0; p < L; p += 16, q = (q + 16) % fw) {
        const __mmask16 m = (__mmask16)(fclf_lanes16(L - p) &
                                        (fclf_lanes16(ow - q) | lane_range(fw - q, fw - q + ow)));
        __m512 d[GRAD_OB];
        for (int o = 0; o < GRAD_OB; o++) d[o] = _mm512_maskz_loadu_ps(m, dz[o] + p);
        for (int k = 0; k < GRAD_KB; k++) {
            const __m512 xv = _mm512_maskz_loadu_ps(m, xi + off[k] + p);
            for (int o = 0; o < GRAD_OB; o++) acc[o][k] = _mm512_fmadd_ps(d[o], xv, acc[o][k]);
        }
    }
    for (int o = 0; o < GRAD_OB; o++)
        for (int k = 0; k < GRAD_KB; k++) _mm512_store_ps(part + (o * GRAD_KB + k) * 16, acc[o][k]);
}

__attribute__((target("avx512f"))) static float lane_sum16(const float *part) {
    return _mm512_reduce_add_ps(_mm512_load_ps(part));
}

#endif

/* The tiles of the forward pass: task t = (image, group of the variant's tile channels, tile), in that order. */
typedef struct {
    float *y;
    const float *xf, *wt, *b;
    const int32_t *off;
    fclf_conv2d_shape s;
    int relu;
    plane_tiles g;
} plane_job;

/* Flat positions of one output plane over its frame's rows: (oh - 1) fw + ow. */
static int64_t flat_positions(fclf_conv2d_shape s) { return (s.oh - 1) * fclf_conv_framed_cols(s) + s.ow; }
static int64_t tiles_of(fclf_conv2d_shape s, plane_tiles g) { return (flat_positions(s) + g.positions - 1) / g.positions; }
/* Forward tasks: (image, group of g.channels output channels, tile). */
static int64_t tasks_of(fclf_conv2d_shape s, plane_tiles g) {
    return s.n * ((s.oc + g.channels - 1) / g.channels) * tiles_of(s, g);
}

static void plane_run(const plane_job *j, int64_t t0, int64_t t1) {
#if defined(__x86_64__)
    const fclf_conv2d_shape s = j->s;
    const plane_tiles g = j->g;
    const int64_t cg = g.channels, groups = (s.oc + cg - 1) / cg, K = taps_of(s), P = s.oh * s.ow;
    const int64_t fh = fclf_conv_framed_rows(s), fw = fclf_conv_framed_cols(s), L = flat_positions(s), tiles = tiles_of(s, g);
    for (int64_t t = t0; t < t1; t++) {
        const int64_t i = t / (groups * tiles), o0 = t / tiles % groups * cg, tile = t % tiles;
        /* the group's weights: its channels' columns of their packed block */
        const float *wt = j->wt + o0 / TILE_BLOCK * K * TILE_BLOCK + o0 % TILE_BLOCK, *b = j->b ? j->b + o0 : NULL;
        float *y = j->y + (i * s.oc + o0) * P;
        const float *xi = j->xf + i * s.c * fh * fw;
        const int64_t valid = fclf_min64(cg, s.oc - o0);
        if (g.isa == FCLF_ISA_AVX2)
            fclf_plane_tile__avx2(y, P, xi, j->off, K, wt, b, j->relu, tile * g.positions, L, fw, s.ow, valid);
        else
            plane_tile(y, P, xi, j->off, K, wt, b, j->relu, tile * g.positions, L, fw, s.ow, valid);
    }
#else
    (void)j, (void)t0, (void)t1;
#endif
}

/* One image split among the caller and the assisting core: ASSIST_TASKS ranges of tiles. */
enum { ASSIST_TASKS = 8 };
typedef struct {
    const plane_job *job;
    int64_t tasks;
} plane_assist;

static void plane_assist_task(void *ctx, int64_t task) {
    const plane_assist *a = ctx;
    plane_run(a->job, a->tasks * task / ASSIST_TASKS, a->tasks * (task + 1) / ASSIST_TASKS);
}

static void plane_forward_packed(plane_tiles g, float *y, const float *xf, const float *wt, const float *b, int relu,
                                 fclf_conv2d_shape s) {
    int32_t off[PLANE_K_MAX];
    tap_offsets(off, s);
    const plane_job job = {y, xf, wt, b, off, s, relu, g};
    const int64_t tasks = tasks_of(s, g);
    const double work = 2.0 * (double)(s.n * s.oc * s.oh * s.ow) * (double)taps_of(s);
    if (work < FCLF_PAR_MIN_WORK || FCLF_MAX_THREADS() <= 1) {
        if (fclf_assist_active() && tasks >= ASSIST_TASKS) {
            const plane_assist a = {&job, tasks};
            fclf_assisted_tasks(ASSIST_TASKS, plane_assist_task, (void *)&a);
        } else
            plane_run(&job, 0, tasks);
        return;
    }
    FCLF_PARALLEL_IF(1, { plane_run(&job, fclf_partition_bound(tasks, 0), fclf_partition_bound(tasks, 1)); });
}

int fclf_conv_plane_forward(int isa, float *y, const float *xf, const float *w, const float *wt, const float *b,
                            int relu, fclf_conv2d_shape s) {
    if (!wt) {
        float *p = fclf_scratch_slot(FCLF_SCRATCH_PACK_A, fclf_conv_plane_packed_size(s));
        if (!p) return -1;
        fclf_conv_plane_pack(p, w, s);
        wt = p;
    }
    plane_forward_packed(tiles_for(isa), y, xf, wt, b, relu, s);
    return 0;
}

/* out = g where a > 0, else 0: both read unconditionally so that the select vectorises (as a branch on random
 * signs it took as long as the weight gradient's products: Zen 4, batch 128). */
FCLF_CLONES static void relu_gate_row(float *restrict out, const float *restrict g, const float *restrict a, int64_t n) {
    for (int64_t q = 0; q < n; q++) {
        const float gv = g[q], av = a[q];
        out[q] = av > 0.0f ? gv : 0.0f;
    }
}

/* dzf's planes of channels [o0, o1), every image: dy masked by ReLU (y > 0) in its frame; sum[o - o0] = the
 * channel's sum for db, image by image (each plane's in 16 lanes: a float chain over 7 MB took 1.5 ms). */
static void frame_dz(float *restrict dzf, float *restrict sum, const float *restrict dy, const float *restrict y,
                     int relu, int64_t o0, int64_t o1, fclf_conv2d_shape s) {
    const fclf_conv2d_shape t = transposed(s);
    const int64_t fh = fclf_conv_framed_rows(t), fw = fclf_conv_framed_cols(t), P = s.oh * s.ow;
    const int64_t right = fw - t.pad_l - s.ow;
    for (int64_t o = o0; o < o1; o++) {
        float total = 0.0f;
        for (int64_t i = 0; i < s.n; i++) {
            const int64_t at = i * s.oc + o;
            const float *g = dy + at * P, *a = y + at * P;
            float *plane = dzf + at * fh * fw;
            /* the frame's border only: the rows above and below, then each row's columns left and right */
            memset(plane, 0, (size_t)(t.pad_t * fw) * sizeof(float));
            memset(plane + (t.pad_t + s.oh) * fw, 0, (size_t)((fh - t.pad_t - s.oh) * fw) * sizeof(float));
            float image = 0.0f;
            for (int64_t r = 0; r < s.oh; r++) {
                float *row = plane + (r + t.pad_t) * fw;
                for (int64_t q = 0; q < t.pad_l; q++) row[q] = 0.0f;
                for (int64_t q = t.pad_l + s.ow; q < t.pad_l + s.ow + right; q++) row[q] = 0.0f;
                row += t.pad_l;
                const float *gr = g + r * s.ow, *ar = a + r * s.ow;
                if (relu)
                    relu_gate_row(row, gr, ar, s.ow);
                else
                    memcpy(row, gr, (size_t)s.ow * sizeof(float));
            }
            const float *d = plane;
#pragma omp simd reduction(+ : image)
            for (int64_t e = 0; e < fh * fw; e++) image += d[e];
            total += image;
        }
        sum[o - o0] = total;
    }
}

/* dw += the pairs [p0, p1) of (channel block, tap block), part holding their lane sums. */
static void grad_pairs(plane_tiles g, float *restrict dw, float *restrict part, const float *dzf, const float *xf,
                       int64_t p0, int64_t p1, const int32_t *off, fclf_conv2d_shape s) {
#if defined(__x86_64__)
    const fclf_conv2d_shape t = transposed(s);
    const int64_t K = taps_of(s), kblocks = (K + g.grad_kb - 1) / g.grad_kb, tile = grad_tile_floats(g);
    const int64_t fh = fclf_conv_framed_rows(s), fw = fclf_conv_framed_cols(s);
    const int64_t zh = fclf_conv_framed_rows(t), zw = fclf_conv_framed_cols(t); /* zw = fw */
    memset(part, 0, (size_t)((p1 - p0) * tile) * sizeof(float));
    for (int64_t i = 0; i < s.n; i++) {
        const float *xi = xf + i * s.c * fh * fw;
        for (int64_t p = p0; p < p1; p++) {
            const int64_t ob = p / kblocks, kb = p % kblocks;
            const float *dz[GRAD_OB];
            int32_t offk[GRAD_KB];
            /* a block past oc or K repeats its last channel or tap: computed, never added to dw */
            for (int64_t o = 0; o < g.grad_ob; o++) {
                const int64_t ch = fclf_min64(ob * g.grad_ob + o, s.oc - 1);
                dz[o] = dzf + (i * s.oc + ch) * zh * zw + t.pad_t * zw + t.pad_l;
            }
            for (int64_t k = 0; k < g.grad_kb; k++) offk[k] = off[fclf_min64(kb * g.grad_kb + k, K - 1)];
            if (g.isa == FCLF_ISA_AVX2)
                fclf_plane_grad_tile__avx2(part + (p - p0) * tile, dz, xi, offk, s.oh, fw, s.ow);
            else
                grad_tile(part + (p - p0) * tile, dz, xi, offk, flat_positions(s), fw, s.ow);
        }
    }
    for (int64_t p = p0; p < p1; p++) {
        const int64_t ob = p / kblocks, kb = p % kblocks;
        for (int64_t o = 0; o < g.grad_ob && ob * g.grad_ob + o < s.oc; o++)
            for (int64_t k = 0; k < g.grad_kb && kb * g.grad_kb + k < K; k++) {
                const float *lanes = part + (p - p0) * tile + (o * g.grad_kb + k) * g.lanes;
                dw[(ob * g.grad_ob + o) * K + kb * g.grad_kb + k] += g.lanes == 8 ? fclf_fold_lanes(lanes, 8) : lane_sum16(lanes);
            }
    }
#else
    (void)g, (void)dw, (void)part, (void)dzf, (void)xf, (void)p0, (void)p1, (void)off, (void)s;
#endif
}

int fclf_conv_plane_backward(int isa, float *dx, float *dw, float *db, float *dzf, const float *dy, const float *y,
                             const float *xf, const float *w, int relu, fclf_conv2d_shape s) {
    const plane_tiles g = tiles_for(isa);
    const int64_t K = taps_of(s), pairs = (s.oc + g.grad_ob - 1) / g.grad_ob * ((K + g.grad_kb - 1) / g.grad_kb);
    const int64_t tile = grad_tile_floats(g);
    const int big = 2.0 * (double)(s.n * s.oc * s.oh * s.ow) * (double)K >= FCLF_PAR_MIN_WORK;
    /* every scratch first, so that a failure changes nothing but dzf */
    float *flipped = dx ? fclf_scratch_slot(FCLF_SCRATCH_PACK_A, fclf_conv_plane_packed_size(transposed(s))) : NULL;
    if (dx && !flipped) return -1;
    int failed = 0;
    float sums[PLANE_OC_MAX];
    int32_t off[PLANE_K_MAX];
    tap_offsets(off, s);
    /* A team only outside any parallel region and serial section (FCLF_MAX_THREADS() says 1 there): its barrier
     * must bind to this region, never to a caller's team (fclf_parallel_tasks' workers run kernels serially). */
    if (!big || FCLF_MAX_THREADS() <= 1) {
        frame_dz(dzf, sums, dy, y, relu, 0, s.oc, s);
        float *part = fclf_scratch_slot(FCLF_SCRATCH_SPLIT_K, fclf_max64(1, pairs * tile));
        if (!part) return -1;
        if (db)
            for (int64_t o = 0; o < s.oc; o++) db[o] += sums[o];
        if (dw) grad_pairs(g, dw, part, dzf, xf, 0, pairs, off, s);
    } else {
#pragma omp parallel num_threads(fclf_get_max_threads())
        {
            const int64_t o0 = fclf_partition_bound(s.oc, 0), o1 = fclf_partition_bound(s.oc, 1);
            frame_dz(dzf, sums + o0, dy, y, relu, o0, o1, s);
            const int64_t p0 = fclf_partition_bound(pairs, 0), p1 = fclf_partition_bound(pairs, 1);
            float *part = fclf_scratch_slot(FCLF_SCRATCH_SPLIT_K, fclf_max64(1, (p1 - p0) * tile));
            if (fclf_team_all_ok(&failed, part != NULL)) { /* nothing is added to dw or db unless all have scratch */
                if (db)
                    for (int64_t o = o0; o < o1; o++) db[o] += sums[o];
                if (dw) grad_pairs(g, dw, part, dzf, xf, p0, p1, off, s);
            }
        }
    }
    if (failed) return -1;
    if (dx) {
        pack_flipped(flipped, w, s);
        plane_forward_packed(g, dx, dzf, flipped, NULL, 0, transposed(s));
    }
    return 0;
}
