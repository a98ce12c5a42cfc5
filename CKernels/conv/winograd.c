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
 * Training's backward pass (the end of this file) stays in the Winograd domain too, as 16 GEMMs per gradient over
 * the whole batch's tiles (plain C and the GEMM: any variant). */
#include "conv.h"
#include "../gemm/gemm.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { WINO_MAX_VECTORS = 3, WINO_ROWS_AVX512 = 8, WINO_ROWS_AVX2 = 6 };

/* Output channels per block: the broadcast rows of the products' register tile, 8 x 16 lanes (one zmm) for
 * AVX-512, 6 x 16 (two ymm) for AVX2 as its GEMM micro-kernel, 12 of 16 registers. */
static int wino_rows(int isa) { return isa == FCLF_ISA_AVX512F ? WINO_ROWS_AVX512 : WINO_ROWS_AVX2; }

/* Pooled tiles per image; tile rows per 16-lane group; groups. */
static int64_t wino_tiles(fclf_conv2d_shape s) { return (s.oh / 2) * (s.ow / 2); }
static int64_t wino_group_rows(fclf_conv2d_shape s) { return 16 / (s.ow / 2); }
static int64_t wino_groups(fclf_conv2d_shape s) { return (s.oh / 2 + wino_group_rows(s) - 1) / wino_group_rows(s); }

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

static int64_t wino_blocks(fclf_conv2d_shape s, int rows) { return (s.oc + rows - 1) / rows; }

static int64_t packed_size(int isa, fclf_conv2d_shape s) {
    const int rows = wino_rows(isa);
    return wino_runs(isa, s) ? wino_blocks(s, rows) * 16 * s.c * rows : 0;
}

int64_t fclf_conv2d_winograd_pool_packed_size(fclf_conv2d_shape s) { return packed_size(fclf_isa_active(), s); }
int64_t fclf_conv2d_winograd_pool_packed_size_isa(int isa, fclf_conv2d_shape s) {
    return packed_size(fclf_isa_usable(isa), s);
}

/* U = G g G^T of one output and input channel's 3x3 filter g, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]. */
static void filter_transform(float u[4][4], const float *restrict g) {
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

/* U for each output and input channel into wp [oc block][16][c][the block's output channels] (rows past oc zero):
 * a K step of the products reads consecutive floats. Blocks as the active variant runs them. */
static void pack_weights(int isa, float *wp, const float *w, fclf_conv2d_shape s) {
    const int R = wino_rows(isa);
    const int64_t blocks = wino_blocks(s, R);
    for (int64_t ob = 0; ob < blocks; ob++)
        for (int64_t r = 0; r < R; r++) {
            const int64_t o = ob * R + r;
            for (int64_t c = 0; c < s.c; c++) {
                float u[4][4] = {{0}};
                if (o < s.oc) filter_transform(u, w + (o * s.c + c) * 9);
                for (int xi = 0; xi < 16; xi++)
                    wp[((ob * 16 + xi) * s.c + c) * R + r] = u[xi / 4][xi % 4];
            }
        }
}

/* V [16][c][16 x groups]: a group's tiles in one 16-lane vector. The 16 element planes lie c x stride + 16
 * floats apart: at c x stride (4 KB for the seed CNN's conv2) a tile's 16 values all fell in one L1 set, and
 * the input transform ran 3x slower. */
static int64_t wino_stride(int64_t groups) { return 16 * groups; }
static int64_t wino_plane(fclf_conv2d_shape s, int64_t groups) { return s.c * wino_stride(groups) + 16; }
static int64_t wino_v_floats(fclf_conv2d_shape s, int64_t groups) { return 16 * wino_plane(s, groups); }

/* Where group g's 16 lanes pool from: lane l's tile (ty, tx) has its window's first pixel at 2 ty ow + 2 tx of
 * the oh x ow plane (lanes past the group's tiles get indices never stored). */
static void tile_corners(int32_t corner[16], fclf_conv2d_shape s, int64_t g) {
    const int64_t pw = s.ow / 2;
    for (int64_t l = 0; l < 16; l++) corner[l] = (int32_t)(2 * (g * wino_group_rows(s) + l / pw) * s.ow + 2 * (l % pw));
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
 * x V [16][c][16 NV] (the K loop over the input channels), then Y = A^T M A per tile, A^T = [1 1 1 0;
 * 0 1 -1 -1], pooled (max of the 4), + bias, ReLU as max(r, 0), stored for the block's channels below oc. */
static inline __attribute__((always_inline, target("avx512f"))) void block_nv(
    float *restrict y, int32_t *restrict argmax, const float *restrict V, const float *restrict wp,
    const float *restrict b, int relu, fclf_conv2d_shape s, int64_t ob, int64_t g0, const int NV) {
    const int64_t S = wino_stride(NV), T = wino_tiles(s), pw = s.ow / 2, per_group = wino_group_rows(s) * pw;
    float m[16 * WINO_ROWS_AVX512 * 16 * WINO_MAX_VECTORS] __attribute__((aligned(64)));
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
    const int64_t rows = fclf_min64(WINO_ROWS_AVX512, s.oc - ob * WINO_ROWS_AVX512);
    int32_t corner[WINO_MAX_VECTORS][16];
    if (argmax)
        for (int j = 0; j < NV; j++) tile_corners(corner[j], s, g0 + j);
    for (int64_t r = 0; r < rows; r++) {
        const int64_t o = ob * WINO_ROWS_AVX512 + r;
        for (int j = 0; j < NV; j++) {
            __m512 q[16];
            for (int xi = 0; xi < 16; xi++) q[xi] = _mm512_load_ps(m + (xi * WINO_ROWS_AVX512 + r) * 16 * NV + 16 * j);
            __m512 t0[4], t1[4]; /* A^T M: rows 0 and 1 */
            for (int k = 0; k < 4; k++) {
                t0[k] = _mm512_add_ps(_mm512_add_ps(q[k], q[4 + k]), q[8 + k]);
                t1[k] = _mm512_sub_ps(_mm512_sub_ps(q[4 + k], q[8 + k]), q[12 + k]);
            }
            const __m512 bias = _mm512_set1_ps(b ? b[o] : 0.0f);
            __m512 z[4] = {_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(t0[0], t0[1]), t0[2]), bias),
                           _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(t0[1], t0[2]), t0[3]), bias),
                           _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(t1[0], t1[1]), t1[2]), bias),
                           _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(t1[1], t1[2]), t1[3]), bias)};
            if (relu)
                for (int k = 0; k < 4; k++) z[k] = _mm512_max_ps(z[k], _mm512_setzero_ps()); /* NaN to 0 */
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

/* The same transform in plain C, tile by tile (AVX2's: without AVX-512's masked permutes, moving a row's
 * every other lane into place would take several shuffles per vector). Each tile's 16 values go to their lanes;
 * a group's lanes past its tiles are zero. The same arithmetic as the vector transform, value by value. */
FCLF_CLONES static void input_transform_portable(float *restrict V, const float *restrict x, fclf_conv2d_shape s,
                                                 int64_t g0, int64_t groups) {
    const int64_t ph = s.oh / 2, pw = s.ow / 2, rows = wino_group_rows(s), S = wino_stride(groups), plane = s.h * s.w;
    const int64_t P = wino_plane(s, groups);
    for (int64_t c = 0; c < s.c; c++) {
        const float *xc = x + c * plane;
        for (int64_t g = 0; g < groups; g++)
            for (int64_t l = 0; l < 16; l++) {
                const int64_t ty = (g0 + g) * rows + l / pw, tx = l % pw;
                float *v = V + c * S + 16 * g + l;
                if (l / pw >= rows || ty >= ph) { /* past the group's tiles */
                    for (int xi = 0; xi < 16; xi++) v[xi * P] = 0.0f;
                    continue;
                }
                const float *d = xc + 2 * ty * s.w + 2 * tx;
                float r[4][4]; /* B^T d */
                for (int k = 0; k < 4; k++) {
                    const float d0 = d[k], d1 = d[s.w + k], d2 = d[2 * s.w + k], d3 = d[3 * s.w + k];
                    r[0][k] = d0 - d2;
                    r[1][k] = d1 + d2;
                    r[2][k] = d2 - d1;
                    r[3][k] = d1 - d3;
                }
                for (int i = 0; i < 4; i++) {
                    v[(i * 4 + 0) * P] = r[i][0] - r[i][2];
                    v[(i * 4 + 1) * P] = r[i][1] + r[i][2];
                    v[(i * 4 + 2) * P] = r[i][2] - r[i][1];
                    v[(i * 4 + 3) * P] = r[i][1] - r[i][3];
                }
            }
    }
}

/* AVX2: one block of 6 output channels and one group (16 lanes, two ymm), the products into m [16][6][16], then
 * the output transform, pooling and winners as the AVX-512 block's, into out [6][row] (whole 8-lane stores,
 * each group's spilling into the next group's place, which that group then writes: VMASKMOVPS stores are slow
 * on AMD's cores), copied out by the caller. */
__attribute__((target("avx2,fma"))) static void block6__avx2(float *restrict out, int32_t *restrict oarg,
                                                             int64_t row, const float *restrict V, int64_t S,
                                                             const float *restrict wp, const float *restrict b,
                                                             int relu, fclf_conv2d_shape s, int64_t ob, int64_t g,
                                                             int64_t vg) {
    enum { R = WINO_ROWS_AVX2 };
    const int64_t pw = s.ow / 2, per_group = wino_group_rows(s) * pw, P = wino_plane(s, S / 16);
    float m[16 * R * 16] __attribute__((aligned(32)));
    for (int xi = 0; xi < 16; xi++) {
        __m256 acc[R][2];
        for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        const float *u = wp + (ob * 16 + xi) * s.c * R, *v = V + xi * P + 16 * vg;
        for (int64_t c = 0; c < s.c; c++, u += R, v += S) {
            const __m256 b0 = _mm256_loadu_ps(v), b1 = _mm256_loadu_ps(v + 8);
#pragma clang loop unroll(full)
            for (int r = 0; r < R; r++) {
                const __m256 a = _mm256_broadcast_ss(u + r);
                acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
            }
        }
        for (int r = 0; r < R; r++) {
            _mm256_store_ps(m + (xi * R + r) * 16, acc[r][0]);
            _mm256_store_ps(m + (xi * R + r) * 16 + 8, acc[r][1]);
        }
    }
    const int64_t rows = fclf_min64(R, s.oc - ob * R), first = g * per_group;
    int32_t corner[16];
    tile_corners(corner, s, g);
    const int32_t step[4] = {0, 1, (int32_t)s.ow, (int32_t)s.ow + 1};
    for (int64_t r = 0; r < rows; r++) {
        const __m256 bias = _mm256_set1_ps(b ? b[ob * R + r] : 0.0f);
        for (int h = 0; h < 2; h++) {
            __m256 q[16];
            for (int xi = 0; xi < 16; xi++) q[xi] = _mm256_load_ps(m + (xi * R + r) * 16 + 8 * h);
            __m256 t0[4], t1[4]; /* A^T M: rows 0 and 1 */
            for (int k = 0; k < 4; k++) {
                t0[k] = _mm256_add_ps(_mm256_add_ps(q[k], q[4 + k]), q[8 + k]);
                t1[k] = _mm256_sub_ps(_mm256_sub_ps(q[4 + k], q[8 + k]), q[12 + k]);
            }
            __m256 z[4] = {_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(t0[0], t0[1]), t0[2]), bias),
                           _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(t0[1], t0[2]), t0[3]), bias),
                           _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(t1[0], t1[1]), t1[2]), bias),
                           _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(t1[1], t1[2]), t1[3]), bias)};
            if (relu)
                for (int k = 0; k < 4; k++) z[k] = _mm256_max_ps(z[k], _mm256_setzero_ps()); /* NaN to 0 */
            /* the pooling's comparisons in its order: the first maximum wins */
            const __m256i at = _mm256_loadu_si256((const __m256i *)(corner + 8 * h));
            __m256 p = z[0];
            __m256i best = at;
            for (int k = 1; k < 4; k++) {
                const __m256 win = _mm256_cmp_ps(z[k], p, _CMP_GT_OQ);
                p = _mm256_blendv_ps(p, z[k], win);
                const __m256 moved = _mm256_castsi256_ps(_mm256_add_epi32(at, _mm256_set1_epi32(step[k])));
                best = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(best), moved, win));
            }
            _mm256_storeu_ps(out + r * row + first + 8 * h, p);
            if (oarg) _mm256_storeu_si256((__m256i *)(oarg + r * row + first + 8 * h), best);
        }
    }
}

/* Groups [g0, g0 + nv) of one image on AVX2: per block of 6 output channels, each group into the block's rows on
 * the stack, then the rows' values copied out. */
__attribute__((target("avx2,fma"))) static void groups__avx2(float *restrict y, int32_t *restrict argmax,
                                                             const float *restrict V, const float *restrict wp,
                                                             const float *restrict b, int relu, fclf_conv2d_shape s,
                                                             int64_t g0, int64_t nv) {
    enum { R = WINO_ROWS_AVX2, ROW = 16 * (WINO_MAX_VECTORS + 1) };
    float out[R * ROW];
    int32_t oarg[R * ROW];
    const int64_t T = wino_tiles(s), per_group = wino_group_rows(s) * (s.ow / 2);
    const int64_t lo = g0 * per_group, hi = fclf_min64(T, (g0 + nv) * per_group);
    for (int64_t ob = 0; ob < wino_blocks(s, R); ob++) {
        for (int64_t g = g0; g < g0 + nv; g++)
            block6__avx2(out, argmax ? oarg : NULL, ROW, V, wino_stride(nv), wp, b, relu, s, ob, g, g - g0);
        for (int64_t r = 0; r < fclf_min64(R, s.oc - ob * R); r++) {
            const int64_t o = ob * R + r;
            memcpy(y + o * T + lo, out + r * ROW + lo, (size_t)(hi - lo) * sizeof(float));
            if (argmax) memcpy(argmax + o * T + lo, oarg + r * ROW + lo, (size_t)(hi - lo) * sizeof(int32_t));
        }
    }
}

/* One image's groups [g0, g0 + nv) with this variant, V its work. */
static void image_groups(int isa, float *y, int32_t *argmax, float *V, const float *x, const float *wp,
                         const float *b, int relu, fclf_conv2d_shape s, int64_t g0, int64_t nv) {
    if (isa == FCLF_ISA_AVX512F) {
        input_transform__avx512f(V, x, s, g0, nv);
        groups__avx512f(y, argmax, V, wp, b, relu, s, g0, nv);
    } else {
        input_transform_portable(V, x, s, g0, nv);
        groups__avx2(y, argmax, V, wp, b, relu, s, g0, nv);
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

/* The backward pass. Per tile the forward pass computes Y = A^T [sum_c U_oc,c (.) V_c] A with V_c = B^T d_c B, and
 * the pooling keeps one of Y's 4 values (the winner). The gradient, in the Winograd domain:
 *     D_o      = A dY A^T          per output channel and tile; dY is the pooled gradient at the winner (where the
 *                                  pooled y > 0), so D is g times the outer product of A's rows for the winner's row
 *                                  and column: entries 0 and +-g
 *     dU_oc,c  = sum_tiles D_o (.) V_c          16 products [oc, c]    = D [oc, n T] . V^T [n T, c]
 *     dV_c     = sum_o U_oc,c (.) D_o           16 products [c, n T]   = U^T [c, oc] . D [oc, n T]
 *     dg = G^T dU G per channel pair;  dd = B dV B^T per tile, added into dx (the 4x4 windows overlap by 2)
 * 2 x 16 multiply-adds per tile and channel pair, against the GEMM path's 2 x 36 per output pixel, which also
 * counts the outputs the pool never reads (conv2's row and column 10: 21%). The 32 products are the GEMM's,
 * the 16 pairs of them spread over the threads (each product on one thread), so the bits depend on neither the
 * thread count nor the variant's blocking beyond the GEMM's own. work, [16][oc][n T] (D) + [16][c][n T] (V, then
 * dV) + 2 x [16][oc][c] (U, dU), is the forward's V again rather than kept from it: the forward transforms per image
 * into lanes, which would pad the products' K by the groups' empty lanes. */
enum { WINO_MAX_TILES = 16 * WINO_MAX_VECTORS };

/* Images per pass: D and V of a chunk of images (at most 6 MB; the seed CNN's conv2: 40 images, so a batch of 32 in
 * one pass, 128 in four) stay in L3 between the transforms, the products and the input gradient. This pass timed
 * alone on Zen 4 (32 MB L3), 2 threads, batch 128: 4.8-5.3 ms with 2, 4, 6 or 8 MB chunks (equal within the VM's
 * noise), 6.3 ms unchunked (20 MB), 5.6-6.7 ms with 1 MB or less (more, smaller products); the GEMM path 7.5 ms. */
enum { WINO_CHUNK_BYTES = 6 * 1024 * 1024 };
static int64_t wino_chunk(fclf_conv2d_shape s) {
    const int64_t per_image = 16 * (s.oc + s.c) * wino_tiles(s) * (int64_t)sizeof(float);
    const int64_t most = fclf_max64(1, WINO_CHUNK_BYTES / per_image), chunks = (s.n + most - 1) / most;
    return fclf_max64(1, (s.n + chunks - 1) / chunks); /* chunks of equal size (the last one up to chunks - 1 less) */
}
/* Columns of D's and V's rows: a chunk's tiles. */
static int64_t wino_nt(fclf_conv2d_shape s) { return wino_chunk(s) * wino_tiles(s); }
/* Floats between two of D's (rows oc) or V's (rows c) 16 element planes: one more cache line than the plane, which
 * is a multiple of 4 KB for the seed CNN's conv2 at every batch size that is a multiple of 32 (the 16 stores of a
 * tile fell in one L1 set). */
static int64_t wino_bwd_plane(int64_t rows, fclf_conv2d_shape s) { return rows * wino_nt(s) + 16; }

int64_t fclf_conv2d_winograd_pool_backward_work_size(fclf_conv2d_shape s) {
    if (!fclf_conv2d_winograd_pool_supported(s) || s.n <= 0) return 0;
    return 16 * (wino_bwd_plane(s.oc, s) + wino_bwd_plane(s.c, s) + 2 * s.oc * s.c);
}

/* Tile t's 4x4 input window starts at in[t] of an input plane, its 2x2 pooling window at out[t] of an output plane. */
static void tile_windows(int32_t in[WINO_MAX_TILES], int32_t out[WINO_MAX_TILES], fclf_conv2d_shape s) {
    const int64_t pw = s.ow / 2;
    for (int64_t t = 0; t < wino_tiles(s); t++) {
        in[t] = (int32_t)(2 * (t / pw) * s.w + 2 * (t % pw));
        out[t] = (int32_t)(2 * (t / pw) * s.ow + 2 * (t % pw));
    }
}

/* D for output channels [o0, o1) and their bias gradients. The winner's offset from its window's corner is 0, 1,
 * ow or ow + 1: row wi and column wj, read with masks so that any index gives a row and column of 0 or 1. A's rows
 * for them: (1, 1, 1, 0) for 0, (0, 1, -1, -1) for 1. Each step runs over an image's tiles (vectors of them). */
FCLF_CLONES static void route(float *restrict D, float *restrict db, const float *restrict dy,
                              const int32_t *restrict argmax, const float *restrict y, fclf_conv2d_shape s, int64_t i0,
                              int64_t i1, int64_t o0, int64_t o1) {
    const int64_t T = wino_tiles(s), NT = wino_nt(s), plane = wino_bwd_plane(s.oc, s);
    const int32_t ow = (int32_t)s.ow;
    int32_t in[WINO_MAX_TILES], corner[WINO_MAX_TILES];
    tile_windows(in, corner, s);
    for (int64_t o = o0; o < o1; o++) {
        float sum = 0.0f;
        for (int64_t i = i0; i < i1; i++) {
            const int64_t at = (i * s.oc + o) * T;
            float gr[4][WINO_MAX_TILES], c[4][WINO_MAX_TILES], g[WINO_MAX_TILES];
            for (int64_t t = 0; t < T; t++) g[t] = !y || y[at + t] > 0.0f ? dy[at + t] : 0.0f;
            for (int64_t t = 0; t < T; t++) sum += g[t]; /* apart: an ordered sum keeps the loops above and below scalar */
            for (int64_t t = 0; t < T; t++) {
                const int32_t off = argmax[at + t] - corner[t], wi = off >= ow, wj = (off - wi * ow) & 1;
                const float fi = (float)wi, fj = (float)wj;
                gr[0][t] = g[t] * (1.0f - fi);
                gr[1][t] = g[t];
                gr[2][t] = g[t] * (1.0f - 2.0f * fi);
                gr[3][t] = -g[t] * fi;
                c[0][t] = 1.0f - fj;
                c[1][t] = 1.0f;
                c[2][t] = 1.0f - 2.0f * fj;
                c[3][t] = -fj;
            }
            float *d = D + o * NT + (i - i0) * T;
            for (int xi = 0; xi < 16; xi++)
                for (int64_t t = 0; t < T; t++) d[xi * plane + t] = gr[xi / 4][t] * c[xi % 4][t];
        }
        if (db) db[o] += sum;
    }
}

/* V [16][c][n T] for the planes [p0, p1) of x (image i, channel ci): each tile's window transformed as the
 * forward's transforms do, a step at a time over the image's tiles. */
FCLF_CLONES static void transform_planes(float *restrict V, const float *restrict x, fclf_conv2d_shape s, int64_t i0,
                                         int64_t p0, int64_t p1) {
    const int64_t T = wino_tiles(s), NT = wino_nt(s), plane = wino_bwd_plane(s.c, s);
    int32_t in[WINO_MAX_TILES], out[WINO_MAX_TILES];
    tile_windows(in, out, s);
    for (int64_t p = p0; p < p1; p++) {
        const int64_t i = p / s.c, ci = p % s.c;
        const float *xc = x + (i0 * s.c + p) * s.h * s.w;
        float d[16][WINO_MAX_TILES], r[16][WINO_MAX_TILES]; /* the windows' pixels (row-major), B^T d */
        for (int e = 0; e < 16; e++)
            for (int64_t t = 0; t < T; t++) d[e][t] = xc[in[t] + (e / 4) * s.w + e % 4];
        for (int k = 0; k < 4; k++)
            for (int64_t t = 0; t < T; t++) {
                const float d0 = d[k][t], d1 = d[4 + k][t], d2 = d[8 + k][t], d3 = d[12 + k][t];
                r[k][t] = d0 - d2;
                r[4 + k][t] = d1 + d2;
                r[8 + k][t] = d2 - d1;
                r[12 + k][t] = d1 - d3;
            }
        float *v = V + ci * NT + i * T;
        for (int k = 0; k < 4; k++)
            for (int64_t t = 0; t < T; t++) {
                v[(k * 4 + 0) * plane + t] = r[k * 4][t] - r[k * 4 + 2][t];
                v[(k * 4 + 1) * plane + t] = r[k * 4 + 1][t] + r[k * 4 + 2][t];
                v[(k * 4 + 2) * plane + t] = r[k * 4 + 2][t] - r[k * 4 + 1][t];
                v[(k * 4 + 3) * plane + t] = r[k * 4 + 1][t] - r[k * 4 + 3][t];
            }
    }
}

/* dx's planes [p0, p1): each tile's dd = B dV B^T (B^T as above), a step at a time over the image's tiles, summed
 * where the windows overlap; the rest of the plane (rows and columns no pooled tile reads) zero. */
FCLF_CLONES static void input_gradient(float *restrict dx, const float *restrict dV, fclf_conv2d_shape s, int64_t i0,
                                       int64_t p0, int64_t p1) {
    const int64_t T = wino_tiles(s), NT = wino_nt(s), ph = s.oh / 2, pw = s.ow / 2, plane = wino_bwd_plane(s.c, s);
    for (int64_t p = p0; p < p1; p++) {
        const int64_t i = p / s.c, ci = p % s.c;
        const float *v = dV + ci * NT + i * T;
        float r[16][WINO_MAX_TILES], dd[16][WINO_MAX_TILES]; /* B dV, then (B dV) B^T */
        for (int j = 0; j < 4; j++)
            for (int64_t t = 0; t < T; t++) {
                const float q0 = v[j * plane + t], q1 = v[(4 + j) * plane + t], q2 = v[(8 + j) * plane + t];
                const float q3 = v[(12 + j) * plane + t];
                r[j][t] = q0;
                r[4 + j][t] = q1 - q2 + q3;
                r[8 + j][t] = q1 + q2 - q0;
                r[12 + j][t] = -q3;
            }
        for (int k = 0; k < 4; k++)
            for (int64_t t = 0; t < T; t++) {
                const float r0 = r[k * 4][t], r1 = r[k * 4 + 1][t], r2 = r[k * 4 + 2][t], r3 = r[k * 4 + 3][t];
                dd[k * 4][t] = r0;
                dd[k * 4 + 1][t] = r1 - r2 + r3;
                dd[k * 4 + 2][t] = r1 + r2 - r0;
                dd[k * 4 + 3][t] = -r3;
            }
        /* Pixel (2 r + a, 2 m + b) sums element (a + 2 u, b + 2 v) of tiles (r - u, m - v), u, v in {0, 1}: each
         * written once. Adding each tile into the plane made every load wait on an overlapping store still in flight
         * (input_gradient's hottest instructions, 40% of it). */
        float *g = dx + (i0 * s.c + p) * s.h * s.w;
        memset(g, 0, (size_t)(s.h * s.w) * sizeof(float));
        for (int64_t r = 0; r <= ph; r++)
            for (int a = 0; a < 2; a++)
                for (int64_t m = 0; m <= pw; m++)
                    for (int b = 0; b < 2; b++) {
                        float acc = 0.0f;
                        for (int u = 0; u < 2; u++)
                            for (int v = 0; v < 2; v++)
                                if (r - u >= 0 && r - u < ph && m - v >= 0 && m - v < pw)
                                    acc += dd[(a + 2 * u) * 4 + b + 2 * v][(r - u) * pw + m - v];
                        g[(2 * r + a) * s.w + 2 * m + b] = acc;
                    }
    }
}

/* dw [o][c][3][3] += G^T dU G for output channels [o0, o1). */
static void weight_gradient(float *restrict dw, const float *restrict dU, fclf_conv2d_shape s, int64_t o0, int64_t o1) {
    const int64_t plane = s.oc * s.c;
    for (int64_t o = o0; o < o1; o++)
        for (int64_t ci = 0; ci < s.c; ci++) {
            float q[4][4], h[3][4];
            for (int xi = 0; xi < 16; xi++) q[xi / 4][xi % 4] = dU[xi * plane + o * s.c + ci];
            for (int j = 0; j < 4; j++) { /* G^T q */
                h[0][j] = q[0][j] + 0.5f * (q[1][j] + q[2][j]);
                h[1][j] = 0.5f * (q[1][j] - q[2][j]);
                h[2][j] = 0.5f * (q[1][j] + q[2][j]) + q[3][j];
            }
            float *g = dw + (o * s.c + ci) * 9;
            for (int k = 0; k < 3; k++) { /* (G^T q) G */
                g[k * 3 + 0] += h[k][0] + 0.5f * (h[k][1] + h[k][2]);
                g[k * 3 + 1] += 0.5f * (h[k][1] - h[k][2]);
                g[k * 3 + 2] += 0.5f * (h[k][1] + h[k][2]) + h[k][3];
            }
        }
}

static void winograd_pool_backward(int isa, float *dx, float *dw, float *db, float *work, const float *dy,
                                   const int32_t *argmax, const float *y, const float *x, const float *w,
                                   fclf_conv2d_shape s) {
    if (s.n <= 0 || s.oc <= 0 || !fclf_conv2d_winograd_pool_supported(s)) return;
    const fclf_gemm_kernel *gemm = fclf_gemm_kernel_for(isa);
    const int64_t NT = wino_nt(s), T = wino_tiles(s), chunk = wino_chunk(s), pairs = s.oc * s.c;
    const int64_t Dp = wino_bwd_plane(s.oc, s), Vp = wino_bwd_plane(s.c, s);
    float *D = work, *V = D + 16 * Dp, *U = V + 16 * Vp, *dU = U + 16 * pairs;
    const int big = fclf_conv_big(s);
    if (dx)
        FCLF_PARALLEL_IF(big, for (FCLF_STATIC_RANGE(pr, pairs)) {
            float u[4][4];
            filter_transform(u, w + pr * 9);
            for (int xi = 0; xi < 16; xi++) U[xi * pairs + pr] = u[xi / 4][xi % 4];
        });
    /* A chunk of images at a time, each step a parallel region (each product reads all of D and V); dU sums the
     * chunks in order. */
    for (int64_t i0 = 0; i0 < s.n; i0 += chunk) {
        const int64_t i1 = fclf_min64(s.n, i0 + chunk), nt = (i1 - i0) * T;
        FCLF_PARALLEL_IF(big, {
            route(D, db, dy, argmax, y, s, i0, i1, fclf_partition_bound(s.oc, 0), fclf_partition_bound(s.oc, 1));
            transform_planes(V, x, s, i0, fclf_partition_bound((i1 - i0) * s.c, 0), fclf_partition_bound((i1 - i0) * s.c, 1));
        });
        FCLF_PARALLEL_IF(big, for (FCLF_STATIC_RANGE(xi, 16)) {
            const float *Dx = D + xi * Dp;
            float *Vx = V + xi * Vp;
            fclf_sgemm_with(gemm, 0, 1, s.oc, s.c, nt, 1.0f, Dx, NT, Vx, NT, i0 > 0 ? 1.0f : 0.0f, dU + xi * pairs, s.c);
            if (dx) fclf_sgemm_with(gemm, 1, 0, s.c, nt, s.oc, 1.0f, U + xi * pairs, s.c, Dx, NT, 0.0f, Vx, NT);
        });
        if (dx)
            FCLF_PARALLEL_IF(big, input_gradient(dx, V, s, i0, fclf_partition_bound((i1 - i0) * s.c, 0),
                                                 fclf_partition_bound((i1 - i0) * s.c, 1)););
    }
    FCLF_PARALLEL_IF(big, weight_gradient(dw, dU, s, fclf_partition_bound(s.oc, 0), fclf_partition_bound(s.oc, 1)););
}

void fclf_conv2d_winograd_pool_backward(float *dx, float *dw, float *db, float *work, const float *dy,
                                        const int32_t *argmax, const float *y, const float *x, const float *w,
                                        fclf_conv2d_shape s) {
    winograd_pool_backward(fclf_isa_active(), dx, dw, db, work, dy, argmax, y, x, w, s);
}

void fclf_conv2d_winograd_pool_backward_isa(int isa, float *dx, float *dw, float *db, float *work, const float *dy,
                                            const int32_t *argmax, const float *y, const float *x, const float *w,
                                            fclf_conv2d_shape s) {
    winograd_pool_backward(fclf_isa_usable(isa), dx, dw, db, work, dy, argmax, y, x, w, s);
}
