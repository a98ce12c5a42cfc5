/* window_pool.h: what inference's per-window convolution + pooling (window_pool.c: the driver and the AVX-512
 * tiles) shares with its AVX2 tiles (window_pool_avx2.c). */
#ifndef FCLF_CONV_WINDOW_POOL_H
#define FCLF_CONV_WINDOW_POOL_H

#include "conv.h"

/* Taps run in chunks whose weights stay in L1 (8 KB) across a group of windows whose partial sums stay there
 * too (8 KB): window by window over all taps, conv2's 73 KB of weights came from L2 for every window. A sum
 * carried from chunk to chunk through memory is the same FMA chain, so the bits do not change. */
enum { FCLF_WINDOW_CHUNK_FLOATS = 2048, FCLF_WINDOW_GROUP_FLOATS = 2048 };

/* Output channels in the packed weights [c*kh*kw][channels]: oc rounded up to 16. */
static inline int64_t fclf_window_channels_padded(fclf_conv2d_shape s) { return (s.oc + 15) / 16 * 16; }

#if defined(__x86_64__)
/* window_pool_avx2.c: pooled rows [py0, py1) of one image for the 16-channel groups [v0, v1) of the packed
 * weights wp; xp is the (framed) input, rows wrow apart, off[k] tap k's offset from a window's first pixel. */
void fclf_window_span__avx2(float *restrict y, const float *restrict xp, int64_t wrow, const int32_t *restrict off,
                            const float *restrict wp, const float *restrict b, int relu, int64_t kstep,
                            fclf_conv2d_shape s, int64_t v0, int64_t v1, int64_t py0, int64_t py1);
/* window_pool_avx2.c: one image of a one-channel 3x3 convolution (conv1) with output pixels in the lanes:
 * y [oc, Q] from the (framed) plane xp, rows wrow apart, and the weights w [oc, 9] as they are. */
void fclf_k9_image__avx2(float *restrict y, const float *restrict xp, int64_t wrow, const float *restrict w,
                         const float *restrict b, int relu, fclf_conv2d_shape s);
#endif

#endif
