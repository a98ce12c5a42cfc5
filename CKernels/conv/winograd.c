/* winograd.c: a 3x3 convolution + activation + 2x2 max pooling by Winograd's minimal filtering
 * F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016).
 *
 * A 2x2 max pooling of a 3x3 'valid' convolution reads the outputs in 2x2 windows at even offsets, which are
 * exactly F(2x2, 3x3)'s output tiles: each tile is computed from one 4x4 window of the input as
 *     Y = A^T [ U (.) V ] A,   U = G g G^T (per output and input channel, packed once),   V = B^T d B,
 * with 16 multiply-adds per tile and channel pair instead of the direct 36, and pooled in registers. The
 * 16 element-wise products summed over the input channels are 16 small GEMMs; here the tiles lie in vector
 * lanes and a block of output channels (8 on AVX-512, 6 on AVX2) are broadcast rows, so a GEMM's K loop is the
 * input channels. The tiles go into
 * the lanes by groups of whole tile rows, one 16-lane vector per group (the seed CNN's conv2: 5 x 5 tiles, rows
 * 0-2 and 3-4 in 2 vectors). Per image: V for all channels (transformed once, [16][c][groups' lanes]), then per
 * block of output channels the 16 products into an L1 buffer and the output transform, bias, activation and
 * pooling straight from it, with the pooling's winners when training asks. One image on two cores splits by groups, each transforming its own V: the helper
 * reading one V the caller wrote (64 KB) cost more than the kernel saved.
 *
 * The rounding is not the direct kernel's: the transforms add and subtract before the products (G's halves
 * are exact), so outputs differ from fclf_conv2d_pool_forward's in the last bits, about 1e-6 of the largest
 * term (Tests/FashionCLFTests/KernelWinogradTests.swift). Each image's arithmetic is fixed, so the results do not depend on the batch or
 * the thread count. AVX-512 has it (8 output channels per block) and AVX2 (6, as its GEMM's micro-tile, the
 * input transform in plain C); only 'valid' shapes whose pooled tiles fit 3 vectors and save at
 * least 1.5x the direct multiply-adds (36 T >= 1.5 x 256 per vector, the groups' empty lanes included).
 *
 * Training's backward pass is fclf_conv2d_pool_backward_winners (conv_pool.c): one term per pooling window, 9
 * multiply-adds per window and channel pair for each gradient, fewer than Winograd's 16. */
#include "winograd.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Output channels per block: the broadcast rows of the products' register tile, 8 x 16 lanes (one zmm) for
 * AVX-512, 6 x 16 (two ymm) for AVX2 as its GEMM micro-kernel, 12 of 16 registers. */
static int wino_rows(int isa) { return isa == FCLF_ISA_AVX512F ? WINO_ROWS_AVX512 : WINO_ROWS_AVX2; }

int fclf_conv2d_winograd_pool_supported(fclf_conv2d_shape s) {
    /* a tile row's 4x4 windows load 2 pw - 1 lanes from each input row (pw <= 8); one input channel (K = 9)
     * is the direct kernels' (conv_pool.c, window_pool.c), which this one would not beat */
    if (s.kh != 3 || s.kw != 3 || s.pad_t != 0 || s.pad_l != 0 || s.oh < 2 || s.ow < 2 || s.ow / 2 > 8 ||
        s.c * 9 < FCLF_CONV_SMALL_K || s.oc < 1)
        return 0;
    const int64_t T = wino_tiles(s), groups = wino_groups(s);
    return groups <= WINO_MAX_VECTORS && 3 * T >= 32 * groups;
}

static int wino_runs(int isa, fclf_conv2d_shape s) {
#if defined(__x86_64__)
    return (isa == FCLF_ISA_AVX512F || isa == FCLF_ISA_AVX2) && fclf_conv2d_winograd_pool_supported(s);
#else
    (void)isa, (void)s;
    return 0;
#endif
}

static int64_t packed_size(int isa, fclf_conv2d_shape s) {
    const int rows = wino_rows(isa);
    return wino_runs(isa, s) ? wino_blocks(s, rows) * 16 * s.c * rows : 0;
}

int64_t fclf_conv2d_winograd_pool_packed_size(fclf_conv2d_shape s) { return packed_size(fclf_isa_active(), s); }
int64_t fclf_conv2d_winograd_pool_packed_size_isa(int isa, fclf_conv2d_shape s) {
    return packed_size(fclf_isa_usable(isa), s);
}

/* U = G g G^T for each output and input channel, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], into
 * wp [oc block][16][c][the block's output channels] (rows past oc zero): a K step of the products reads
 * consecutive floats. Blocks as the active variant runs them. */
static void pack_weights(int isa, float *wp, const float *w, fclf_conv2d_shape s) {
    const int R = wino_rows(isa);
    const int64_t blocks = wino_blocks(s, R);
    for (int64_t ob = 0; ob < blocks; ob++)
        for (int64_t r = 0; r < R; r++) {
            const int64_t o = ob * R + r;
            for (int64_t c = 0; c < s.c; c++) {
                float u[4][4] = {{0}};
                if (o < s.oc) {
                    const float *g = w + (o * s.c + c) * 9;
                    float gg[4][3]; /* G g */
                    for (int v = 0; v < 3; v++) {
                        gg[0][v] = g[v];
                        gg[1][v] = 0.5f * (g[v] + g[3 + v] + g[6 + v]);
                        gg[2][v] = 0.5f * (g[v] - g[3 + v] + g[6 + v]);
                        gg[3][v] = g[6 + v];
                    }
                    for (int i = 0; i < 4; i++) {
                        u[i][0] = gg[i][0];
                        u[i][1] = 0.5f * (gg[i][0] + gg[i][1] + gg[i][2]);
                        u[i][2] = 0.5f * (gg[i][0] - gg[i][1] + gg[i][2]);
                        u[i][3] = gg[i][2];
                    }
                }
                for (int xi = 0; xi < 16; xi++)
                    wp[((ob * 16 + xi) * s.c + c) * R + r] = u[xi / 4][xi % 4];
            }
        }
}

void fclf_conv2d_winograd_pool_pack_weights(float *wp, const float *w, fclf_conv2d_shape s) {
    pack_weights(fclf_isa_active(), wp, w, s);
}
void fclf_conv2d_winograd_pool_pack_weights_isa(int isa, float *wp, const float *w, fclf_conv2d_shape s) {
    pack_weights(fclf_isa_usable(isa), wp, w, s);
}

int64_t fclf_conv2d_winograd_pool_work_size(fclf_conv2d_shape s) {
    /* the fallback's full output; and each image its own V, so that images run on any thread (one image on two
     * cores: each group its own) */
    const int64_t passes = fclf_max64(0, s.n * s.oc * s.oh * s.ow);
    if (!fclf_conv2d_winograd_pool_supported(s)) return passes;
    const int64_t v = fclf_max64(s.n * wino_v_floats(s, wino_groups(s)), wino_groups(s) * wino_v_floats(s, 1));
    return fclf_max64(v, passes);
}

#if defined(__x86_64__)
/* V = B^T d B for every channel and the tiles of groups [g0, g0 + groups) of one image, B^T = [1 0 -1 0;
 * 0 1 1 0; 0 -1 1 0; 0 1 0 -1]: a row of pw tiles at once, the tiles' columns 2 tx + k (k = 0..3) loaded as
 * 2 pw - 1 lanes from offset k; every other lane goes to the row's place in the group's 16 vectors (one per
 * element of the tile), which are stored whole once the group's rows are in. A store per tile row (16 lanes at
 * a place 5 floats on, mostly across two cache lines) took 40% of the kernel's time on a Zen 4. Lanes past the
 * group's tiles are zero. */
__attribute__((target("avx512f"))) static void input_transform__avx512f(float *restrict V, const float *restrict x,
                                                               fclf_conv2d_shape s, int64_t g0, int64_t groups) {
    const int64_t ph = s.oh / 2, pw = s.ow / 2, rows = wino_group_rows(s), S = wino_stride(groups), plane = s.h * s.w;
    const int64_t P = wino_plane(s, groups);
    const __mmask16 cols = fclf_lanes16(2 * pw - 1);
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    for (int64_t c = 0; c < s.c; c++) {
        const float *xc = x + c * plane;
        for (int64_t g = g0; g < g0 + groups; g++) {
            __m512 acc[16];
            for (int xi = 0; xi < 16; xi++) acc[xi] = _mm512_setzero_ps();
            for (int64_t t = 0, ty = g * rows; t < rows && ty < ph; t++, ty++) {
                /* lanes [t pw, t pw + pw) take the even lanes 2 (l - t pw) */
                const __mmask16 place = (__mmask16)(fclf_lanes16(pw) << (t * pw));
                const __m512i from = _mm512_slli_epi32(_mm512_sub_epi32(iota, _mm512_set1_epi32((int)(t * pw))), 1);
                const float *row = xc + 2 * ty * s.w;
                __m512 r[4][4]; /* B^T d: combined rows i, at column offset k */
                for (int k = 0; k < 4; k++) {
                    const __m512 d0 = _mm512_maskz_loadu_ps(cols, row + k), d1 = _mm512_maskz_loadu_ps(cols, row + s.w + k);
                    const __m512 d2 = _mm512_maskz_loadu_ps(cols, row + 2 * s.w + k);
                    const __m512 d3 = _mm512_maskz_loadu_ps(cols, row + 3 * s.w + k);
                    r[0][k] = _mm512_sub_ps(d0, d2);
                    r[1][k] = _mm512_add_ps(d1, d2);
                    r[2][k] = _mm512_sub_ps(d2, d1);
                    r[3][k] = _mm512_sub_ps(d1, d3);
                }
                for (int i = 0; i < 4; i++) {
                    const __m512 v[4] = {_mm512_sub_ps(r[i][0], r[i][2]), _mm512_add_ps(r[i][1], r[i][2]),
                                         _mm512_sub_ps(r[i][2], r[i][1]), _mm512_sub_ps(r[i][1], r[i][3])};
                    for (int j = 0; j < 4; j++)
                        acc[i * 4 + j] = _mm512_mask_permutexvar_ps(acc[i * 4 + j], place, from, v[j]);
                }
            }
            for (int xi = 0; xi < 16; xi++) _mm512_storeu_ps(V + xi * P + c * S + 16 * (g - g0), acc[xi]);
        }
    }
}

/* The 16 products of one block of 8 output channels for groups [g0, g0 + NV), M [16][8][16 NV] = U [16][c][8]
 * x V [16][c][16 NV] (the K loop over the input channels), into m. */
static inline __attribute__((always_inline, target("avx512f"))) void block_products(
    float *restrict m, const float *restrict V, const float *restrict wp, fclf_conv2d_shape s, int64_t ob, const int NV) {
    const int64_t S = wino_stride(NV);
    for (int xi = 0; xi < 16; xi++) {
        __m512 acc[WINO_ROWS_AVX512][WINO_MAX_VECTORS];
        for (int r = 0; r < WINO_ROWS_AVX512; r++)
            for (int j = 0; j < NV; j++) acc[r][j] = _mm512_setzero_ps();
        const float *u = wp + (ob * 16 + xi) * s.c * WINO_ROWS_AVX512, *v = V + xi * wino_plane(s, NV);
        for (int64_t c = 0; c < s.c; c++, u += WINO_ROWS_AVX512, v += S) {
            __m512 bv[WINO_MAX_VECTORS];
            for (int j = 0; j < NV; j++) bv[j] = _mm512_loadu_ps(v + 16 * j);
#pragma clang loop unroll(full)
            for (int r = 0; r < WINO_ROWS_AVX512; r++) {
                const __m512 a = _mm512_set1_ps(u[r]);
                for (int j = 0; j < NV; j++) acc[r][j] = _mm512_fmadd_ps(a, bv[j], acc[r][j]);
            }
        }
        for (int r = 0; r < WINO_ROWS_AVX512; r++)
            for (int j = 0; j < NV; j++) _mm512_store_ps(m + (xi * WINO_ROWS_AVX512 + r) * 16 * NV + 16 * j, acc[r][j]);
    }
}

/* Y = A^T M A for row r's tiles in vector j, A^T = [1 1 1 0; 0 1 -1 -1]: z[0..3] the tile's (0,0), (0,1),
 * (1,0), (1,1) outputs, + bias, ReLU as max(z, 0) (NaN to 0). */
static inline __attribute__((always_inline, target("avx512f"))) void output_tiles(__m512 z[4], const float *restrict m,
                                                                                  float bias_o, int relu, int r, int j,
                                                                                  const int NV) {
    __m512 q[16];
    for (int xi = 0; xi < 16; xi++) q[xi] = _mm512_load_ps(m + (xi * WINO_ROWS_AVX512 + r) * 16 * NV + 16 * j);
    __m512 t0[4], t1[4]; /* A^T M: rows 0 and 1 */
    for (int k = 0; k < 4; k++) {
        t0[k] = _mm512_add_ps(_mm512_add_ps(q[k], q[4 + k]), q[8 + k]);
        t1[k] = _mm512_sub_ps(_mm512_sub_ps(q[4 + k], q[8 + k]), q[12 + k]);
    }
    const __m512 bias = _mm512_set1_ps(bias_o);
    z[0] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(t0[0], t0[1]), t0[2]), bias);
    z[1] = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(t0[1], t0[2]), t0[3]), bias);
    z[2] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(t1[0], t1[1]), t1[2]), bias);
    z[3] = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(t1[1], t1[2]), t1[3]), bias);
    if (relu)
        for (int k = 0; k < 4; k++) z[k] = _mm512_max_ps(z[k], _mm512_setzero_ps());
}

/* One block of 8 output channels for groups [g0, g0 + NV): the products, then per tile the output transform,
 * pooled (max of the 4), stored for the block's channels below oc. */
static inline __attribute__((always_inline, target("avx512f"))) void block_nv(
    float *restrict y, int32_t *restrict argmax, const float *restrict V, const float *restrict wp,
    const float *restrict b, int relu, fclf_conv2d_shape s, int64_t ob, int64_t g0, const int NV) {
    const int64_t T = wino_tiles(s), per_group = wino_group_rows(s) * (s.ow / 2);
    float m[16 * WINO_ROWS_AVX512 * 16 * WINO_MAX_VECTORS] __attribute__((aligned(64)));
    block_products(m, V, wp, s, ob, NV);
    const int64_t rows = fclf_min64(WINO_ROWS_AVX512, s.oc - ob * WINO_ROWS_AVX512);
    int32_t corner[WINO_MAX_VECTORS][16];
    if (argmax)
        for (int j = 0; j < NV; j++) tile_corners(corner[j], s, g0 + j);
    for (int64_t r = 0; r < rows; r++) {
        const int64_t o = ob * WINO_ROWS_AVX512 + r;
        for (int j = 0; j < NV; j++) {
            __m512 z[4];
            output_tiles(z, m, b ? b[o] : 0.0f, relu, (int)r, j, NV);
            /* the pooling's comparisons in its order (pool.c): the first maximum of the window wins */
            __m512 p = z[0];
            __mmask16 win[4];
            for (int k = 1; k < 4; k++) {
                win[k] = _mm512_cmp_ps_mask(z[k], p, _CMP_GT_OQ);
                p = _mm512_mask_mov_ps(p, win[k], z[k]);
            }
            const int64_t first = (g0 + j) * per_group;
            const __mmask16 lanes = fclf_lanes16(fclf_min64(per_group, T - first));
            _mm512_mask_storeu_ps(y + o * T + first, lanes, p);
            if (argmax) { /* the winner's index in the oh x ow plane */
                const __m512i at = _mm512_loadu_si512(corner[j]);
                const int32_t step[4] = {0, 1, (int32_t)s.ow, (int32_t)s.ow + 1};
                __m512i best = at;
                for (int k = 1; k < 4; k++) best = _mm512_mask_add_epi32(best, win[k], at, _mm512_set1_epi32(step[k]));
                _mm512_mask_storeu_epi32(argmax + o * T + first, lanes, best);
            }
        }
    }
}

/* Unpooled: one block of 8 output channels for groups [g0, g0 + NV), each tile's 4 outputs into y [oc][oh][ow]:
 * a tile row's pw tiles make two whole output rows, (0,0) and (0,1) interleaved into the first, (1,0) and (1,1)
 * into the second. */
static inline __attribute__((always_inline, target("avx512f"))) void block_full_nv(
    float *restrict y, const float *restrict V, const float *restrict wp, const float *restrict b, int relu,
    fclf_conv2d_shape s, int64_t ob, int64_t g0, const int NV) {
    const int64_t pw = s.ow / 2, ph = s.oh / 2, rows_per = wino_group_rows(s), P = s.oh * s.ow;
    float m[16 * WINO_ROWS_AVX512 * 16 * WINO_MAX_VECTORS] __attribute__((aligned(64)));
    block_products(m, V, wp, s, ob, NV);
    const int64_t rows = fclf_min64(WINO_ROWS_AVX512, s.oc - ob * WINO_ROWS_AVX512);
    /* lanes 2k and 2k + 1 of an output row: tile k's left and right output (of the first and second vector) */
    const __m512i pairs = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __mmask16 row_lanes = fclf_lanes16(2 * pw);
    for (int64_t r = 0; r < rows; r++) {
        const int64_t o = ob * WINO_ROWS_AVX512 + r;
        for (int j = 0; j < NV; j++) {
            __m512 z[4];
            output_tiles(z, m, b ? b[o] : 0.0f, relu, (int)r, j, NV);
            for (int64_t t = 0, ty = (g0 + j) * rows_per; t < rows_per && ty < ph; t++, ty++) {
                const __m512i at = _mm512_add_epi32(pairs, _mm512_set1_epi32((int)(t * pw)));
                float *top = y + o * P + 2 * ty * s.ow;
                _mm512_mask_storeu_ps(top, row_lanes, _mm512_permutex2var_ps(z[0], at, z[1]));
                _mm512_mask_storeu_ps(top + s.ow, row_lanes, _mm512_permutex2var_ps(z[2], at, z[3]));
            }
        }
    }
}

__attribute__((target("avx512f"))) static void groups_full__avx512f(float *restrict y, const float *restrict V,
                                                                    const float *restrict wp, const float *restrict b,
                                                                    int relu, fclf_conv2d_shape s, int64_t g0,
                                                                    int64_t nv) {
    for (int64_t ob = 0; ob < wino_blocks(s, WINO_ROWS_AVX512); ob++) switch (nv) {
        case 1: block_full_nv(y, V, wp, b, relu, s, ob, g0, 1); break;
        case 2: block_full_nv(y, V, wp, b, relu, s, ob, g0, 2); break;
        default: block_full_nv(y, V, wp, b, relu, s, ob, g0, 3); break;
        }
}

/* Groups [g0, g0 + nv) of one image, V as the input transform wrote it for them, every block of output channels. */
__attribute__((target("avx512f"))) static void groups__avx512f(float *restrict y, int32_t *restrict argmax,
                                                               const float *restrict V, const float *restrict wp,
                                                               const float *restrict b, int relu, fclf_conv2d_shape s,
                                                               int64_t g0, int64_t nv) {
    for (int64_t ob = 0; ob < wino_blocks(s, WINO_ROWS_AVX512); ob++) switch (nv) {
        case 1: block_nv(y, argmax, V, wp, b, relu, s, ob, g0, 1); break;
        case 2: block_nv(y, argmax, V, wp, b, relu, s, ob, g0, 2); break;
        default: block_nv(y, argmax, V, wp, b, relu, s, ob, g0, 3); break;
        }
}

/* One image's groups [g0, g0 + nv) with this variant, V its work. */
static void image_groups(int isa, float *y, int32_t *argmax, float *V, const float *x, const float *wp,
                         const float *b, int relu, fclf_conv2d_shape s, int64_t g0, int64_t nv) {
    if (isa == FCLF_ISA_AVX512F) {
        input_transform__avx512f(V, x, s, g0, nv);
        groups__avx512f(y, argmax, V, wp, b, relu, s, g0, nv);
    } else {
        fclf_wino_input_transform_portable(V, x, s, g0, nv);
        fclf_wino_groups__avx2(y, argmax, V, wp, b, relu, s, g0, nv);
    }
}

/* One image on two cores (fclf_assisted_tasks): a group of tile rows per task, each transforming its own V
 * into its own part of work. Each lane's arithmetic is the same in any grouping, so the bits are those of the
 * whole image at once. */
typedef struct {
    float *y, *work;
    const float *x, *wp, *b;
    int isa, relu;
    fclf_conv2d_shape s;
} wino_job;

static void group_task(void *ctx, int64_t g) {
    const wino_job *j = ctx;
    image_groups(j->isa, j->y, NULL, j->work + g * wino_v_floats(j->s, 1), j->x, j->wp, j->b, j->relu, j->s, g, 1);
}
#endif

static void winograd_pool(int isa, float *y, int32_t *argmax, float *work, const float *x, const float *w,
                          const float *wp, const float *b, int relu, fclf_conv2d_shape s) {
    if (s.n <= 0 || s.oc <= 0) return;
    if (!wp || !wino_runs(isa, s)) { /* the passes this kernel stands for (a supported shape packs from x) */
        fclf_conv2d_forward_isa(isa, work, NULL, x, w, b, relu, s);
        fclf_maxpool2x2_forward_isa(isa, y, argmax, work, s.n * s.oc, s.oh, s.ow);
        return;
    }
#if defined(__x86_64__)
    const int64_t T = wino_tiles(s), G = wino_groups(s), vf = wino_v_floats(s, G);
    if (!argmax && s.n == 1 && G >= 2 && fclf_assist_active() && fclf_get_max_threads() >= 2) {
        const wino_job job = {y, work, x, wp, b, isa, relu, s};
        fclf_assisted_tasks(G, group_task, (void *)&job);
        return;
    }
    FCLF_PARALLEL_IF(s.n > 1, for (FCLF_STATIC_RANGE(i, s.n)) {
        image_groups(isa, y + i * s.oc * T, argmax ? argmax + i * s.oc * T : NULL, work + i * vf, x + i * s.c * s.h * s.w, wp,
                     b, relu, s, 0, G);
    });
#endif
}

void fclf_conv2d_winograd_pool(float *y, int32_t *argmax, float *work, const float *x, const float *w, const float *wp,
                               const float *b, int relu, fclf_conv2d_shape s) {
    winograd_pool(fclf_isa_active(), y, argmax, work, x, w, wp, b, relu, s);
}

void fclf_conv2d_winograd_pool_isa(int isa, float *y, int32_t *argmax, float *work, const float *x, const float *w,
                                   const float *wp, const float *b, int relu, fclf_conv2d_shape s) {
    winograd_pool(fclf_isa_usable(isa), y, argmax, work, x, w, wp, b, relu, s);
}

/* Unpooled (training's convolutions before a BatchNorm): every output of the even-sized plane is a tile's. The
 * products and transforms are the pooled kernel's, so are the packed weights (AVX-512's blocks of 8). */
int fclf_conv2d_winograd_supported(fclf_conv2d_shape s) {
    return s.oh % 2 == 0 && s.ow % 2 == 0 && fclf_conv2d_winograd_pool_supported(s);
}

static int wino_full_runs(int isa, fclf_conv2d_shape s) {
    return isa == FCLF_ISA_AVX512F && fclf_conv2d_winograd_supported(s);
}

static int64_t full_packed_size(int isa, fclf_conv2d_shape s) { return wino_full_runs(isa, s) ? packed_size(isa, s) : 0; }
int64_t fclf_conv2d_winograd_packed_size(fclf_conv2d_shape s) { return full_packed_size(fclf_isa_active(), s); }
int64_t fclf_conv2d_winograd_packed_size_isa(int isa, fclf_conv2d_shape s) {
    return full_packed_size(fclf_isa_usable(isa), s);
}

void fclf_conv2d_winograd_pack_weights(float *wp, const float *w, fclf_conv2d_shape s) {
    if (fclf_conv2d_winograd_packed_size(s) > 0) pack_weights(fclf_isa_active(), wp, w, s);
}
void fclf_conv2d_winograd_pack_weights_isa(int isa, float *wp, const float *w, fclf_conv2d_shape s) {
    if (fclf_conv2d_winograd_packed_size_isa(isa, s) > 0) pack_weights(fclf_isa_usable(isa), wp, w, s);
}

int64_t fclf_conv2d_winograd_work_size(fclf_conv2d_shape s) {
    return fclf_conv2d_winograd_supported(s) ? s.n * wino_v_floats(s, wino_groups(s)) : 0;
}

static void winograd_full(int isa, float *y, float *work, const float *x, const float *w, const float *wp,
                          const float *b, int relu, fclf_conv2d_shape s) {
    if (s.n <= 0 || s.oc <= 0) return;
    if (!wp || !work || !wino_full_runs(isa, s)) { /* the product this kernel stands for (packed from x) */
        fclf_conv2d_forward_isa(isa, y, NULL, x, w, b, relu, s);
        return;
    }
#if defined(__x86_64__)
    const int64_t G = wino_groups(s), vf = wino_v_floats(s, G), P = s.oh * s.ow;
    FCLF_PARALLEL_IF(s.n > 1, for (FCLF_STATIC_RANGE(i, s.n)) {
        input_transform__avx512f(work + i * vf, x + i * s.c * s.h * s.w, s, 0, G);
        groups_full__avx512f(y + i * s.oc * P, work + i * vf, wp, b, relu, s, 0, G);
    });
#endif
}

void fclf_conv2d_winograd_forward(float *y, float *work, const float *x, const float *w, const float *wp, const float *b,
                                  int relu, fclf_conv2d_shape s) {
    winograd_full(fclf_isa_active(), y, work, x, w, wp, b, relu, s);
}

void fclf_conv2d_winograd_forward_isa(int isa, float *y, float *work, const float *x, const float *w, const float *wp,
                                      const float *b, int relu, fclf_conv2d_shape s) {
    winograd_full(fclf_isa_usable(isa), y, work, x, w, wp, b, relu, s);
}
