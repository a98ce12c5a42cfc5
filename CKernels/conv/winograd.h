/* winograd.h: what the F(2x2, 3x3) kernels (winograd.c: the driver, the weights' transform and the AVX-512
 * tiles) share with their AVX2 tiles (winograd_avx2.c): the tiles' geometry and the transformed input's layout. */
#ifndef FCLF_CONV_WINOGRAD_H
#define FCLF_CONV_WINOGRAD_H

#include "conv.h"

enum { WINO_MAX_VECTORS = 3, WINO_ROWS_AVX512 = 8, WINO_ROWS_AVX2 = 6 };

/* Pooled tiles per image; tile rows per 16-lane group; groups. */
static inline int64_t wino_tiles(fclf_conv2d_shape s) { return (s.oh / 2) * (s.ow / 2); }
static inline int64_t wino_group_rows(fclf_conv2d_shape s) { return 16 / (s.ow / 2); }
static inline int64_t wino_groups(fclf_conv2d_shape s) { return (s.oh / 2 + wino_group_rows(s) - 1) / wino_group_rows(s); }

static inline int64_t wino_blocks(fclf_conv2d_shape s, int rows) { return (s.oc + rows - 1) / rows; }

/* V [16][c][16 x groups]: a group's tiles in one 16-lane vector. The 16 element planes lie c x stride + 16
 * floats apart: at c x stride (4 KB for the seed CNN's conv2) a tile's 16 values all fell in one L1 set, and
 * the input transform ran 3x slower. */
static inline int64_t wino_stride(int64_t groups) { return 16 * groups; }
static inline int64_t wino_plane(fclf_conv2d_shape s, int64_t groups) { return s.c * wino_stride(groups) + 16; }
static inline int64_t wino_v_floats(fclf_conv2d_shape s, int64_t groups) { return 16 * wino_plane(s, groups); }

/* Where group g's 16 lanes pool from: lane l's tile (ty, tx) has its window's first pixel at 2 ty ow + 2 tx of
 * the oh x ow plane (lanes past the group's tiles get indices never stored). */
static inline void tile_corners(int32_t corner[16], fclf_conv2d_shape s, int64_t g) {
    const int64_t pw = s.ow / 2;
    for (int64_t l = 0; l < 16; l++) corner[l] = (int32_t)(2 * (g * wino_group_rows(s) + l / pw) * s.ow + 2 * (l % pw));
}

#if defined(__x86_64__)
/* winograd_avx2.c. input_transform_portable: V for every channel and the tiles of groups [g0, g0 + groups) of
 * one image, in plain C (the AVX2 path's). groups__avx2: those groups' products, output transform and pooling
 * (winners unless argmax is NULL) for every block of 6 output channels. */
void fclf_wino_input_transform_portable(float *restrict V, const float *restrict x, fclf_conv2d_shape s, int64_t g0,
                                        int64_t groups);
void fclf_wino_groups__avx2(float *restrict y, int32_t *restrict argmax, const float *restrict V,
                            const float *restrict wp, const float *restrict b, int relu, fclf_conv2d_shape s,
                            int64_t g0, int64_t nv);
#endif

#endif
