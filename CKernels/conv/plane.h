/* plane.h: the plane-tile path of a padded convolution with few output channels (plane.c), as conv2d.c's drivers
 * call it. */
#ifndef FCLF_CONV_PLANE_H
#define FCLF_CONV_PLANE_H

#include "conv.h"

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
int fclf_conv_plane_forward(float *y, const float *xf, const float *w, const float *wt, const float *b, int relu,
                           fclf_conv2d_shape s);
/* The backward pass from xf (the forward's frame): WRITES dzf (fclf_conv_plane_dz_size floats) and dx (unless
 * NULL), ACCUMULATES dw and db (may be NULL). Returns -1, having changed nothing but dzf, when scratch cannot be
 * had. */
int fclf_conv_plane_backward(float *dx, float *dw, float *db, float *dzf, const float *dy, const float *y,
                            const float *xf, const float *w, int relu, fclf_conv2d_shape s);

#endif
