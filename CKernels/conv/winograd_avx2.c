/* winograd_avx2.c: the F(2x2, 3x3) convolution + pooling's AVX2 tiles (winograd.c has the driver and the AVX-512
 * tiles): the input transform in plain C, and blocks of 6 output channels over one 16-lane group of tiles. */
#include "winograd.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

/* The same transform in plain C, tile by tile (AVX2's: without AVX-512's masked permutes, moving a row's
 * every other lane into place would take several shuffles per vector). Each tile's 16 values go to their lanes;
 * a group's lanes past its tiles are zero. The same arithmetic as the vector transform, value by value. */
FCLF_CLONES void fclf_wino_input_transform_portable(float *restrict V, const float *restrict x, fclf_conv2d_shape s,
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
__attribute__((target("avx2,fma"))) void fclf_wino_groups__avx2(float *restrict y, int32_t *restrict argmax,
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
#endif
