/* plane.h: the plane-tile path of a padded convolution with few output channels (plane.c), as conv2d.c's drivers
 * call it. */
#ifndef FCLF_CONV_PLANE_H
#define FCLF_CONV_PLANE_H

#include "conv.h"

/* The packed weights' blocks of output channels (both variants); the AVX2 kernels' tile geometry. */
enum {
    FCLF_PLANE_TILE_BLOCK = 8,
    FCLF_PLANE_AVX2_CHANNELS = 4,
    FCLF_PLANE_AVX2_POSITIONS = 16,
    FCLF_PLANE_AVX2_GRAD_OB = 2,
    FCLF_PLANE_AVX2_GRAD_KB = 6
};

/* Whether this shape, on this variant, takes the plane-tile path (plane.c says which shapes and why). The
 * buffers' sizes use fclf_conv_plane_shape, which ignores the variant, so that any variant fits them. */
int fclf_conv_plane_shape(fclf_conv2d_shape s);
int fclf_conv_plane_taken(int isa, fclf_conv2d_shape s);

/* Floats of the weights packed for the path's tiles, and the packing (WRITES wt). */
int64_t fclf_conv_plane_packed_size(fclf_conv2d_shape s);
void fclf_conv_plane_pack(float *restrict wt, const float *restrict w, fclf_conv2d_shape s);
/* Floats of the framed output gradient the backward pass keeps in tmp: [n, oc, oh + kh - 1, ow + kw - 1]. */
int64_t fclf_conv_plane_dz_size(fclf_conv2d_shape s);

/* WRITES y [n, oc, oh, ow] = act(w * x + b) from xf, x in zero-framed planes (fclf_conv_frame_planes); wt is w
 * packed by fclf_conv_plane_pack, or NULL to pack it here. Returns -1, having written nothing, when the
 * packing's scratch cannot be had. */
int fclf_conv_plane_forward(int isa, float *y, const float *xf, const float *w, const float *wt, const float *b, int relu,
                            fclf_conv2d_shape s);
/* The backward pass from xf (the forward's frame): WRITES dzf (fclf_conv_plane_dz_size floats) and dx (unless
 * NULL), ACCUMULATES dw and db (may be NULL). Returns -1, having changed nothing but dzf, when scratch cannot be
 * had. */
int fclf_conv_plane_backward(int isa, float *dx, float *dw, float *db, float *dzf, const float *dy, const float *y,
                             const float *xf, const float *w, int relu, fclf_conv2d_shape s);

#if defined(__x86_64__)
/* plane_avx2.c. tile__avx2: one forward tile, flat positions [p0, p0 + 16) of an image's output plane (L positions
 * in all, rows fw apart in the frame xi, ow of them pixels) for 4 channels (valid of them stored) whose weights
 * are read at wt + k * FCLF_PLANE_TILE_BLOCK; WRITES their pixels into y's planes, P apart. grad_tile__avx2:
 * ACCUMULATES into part (2 x 6 x 8 floats) the 8-lane sums of dz[o][p] * xi[off[k] + p] over the pixels p of one
 * image (oh rows of ow, fw apart). */
void fclf_plane_tile__avx2(float *restrict y, int64_t P, const float *restrict xi, const int32_t *restrict off, int64_t K,
                           const float *restrict wt, const float *restrict bias, int relu, int64_t p0, int64_t L,
                           int64_t fw, int64_t ow, int64_t valid);
void fclf_plane_grad_tile__avx2(float *restrict part, const float *const *dz, const float *restrict xi,
                                const int32_t *off, int64_t oh, int64_t fw, int64_t ow);
#endif

#endif
