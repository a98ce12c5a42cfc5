/* plane_avx2.c: the plane tiles' two kernels with AVX2 + FMA (plane.c has the driver, the layout and the AVX-512
 * kernels).
 *
 * Sixteen 8-lane registers hold neither of the AVX-512 tiles, so both shrink:
 * - forward (and dx): 4 channels x 2 vectors of 8 flat positions, 8 accumulators; per tap 4 broadcasts, 2 loads
 *   and 8 FMAs. The 4 channels are half of a packed block of TILE_BLOCK = 8, read at its stride, so the weights
 *   are packed as for AVX-512 (and inference's prepacked weights fit either variant). Each lane's sum is the
 *   AVX-512 tile's (the bias, then one FMA per tap in order): the two variants give the same outputs and dx.
 *   Tried on res-bn's 16 -> 16 shape (Zen 4 under FCLF_ISA=avx2, one thread): 4 x 3 vectors (12 accumulators, 3
 *   loads and 4 broadcasts in 16 registers) spilled and took 11.8 ms at batch 128 against the GEMM's 7.3; 2
 *   channels x 6 vectors 6.9 ms and one image 47.5 us; this tile 6.7-7.0 ms and 45.7 us (GEMM 48.5).
 * - weight gradient: 2 channels x 6 taps of 8-lane sums, 12 accumulators; per vector of positions 8 loads and
 *   12 FMAs. It walks the output row by row, not flat as AVX-512 does: a mask per vector for the positions that
 *   are not pixels (where 0 x Inf would be NaN) cost VMASKMOVPS on every load and a register the tile lacks.
 *   Its lane sums (8 lanes, not 16) round otherwise than AVX-512's.
 * Full forward tiles load without masks; the last one of a plane uses VMASKMOVPS, as does each row's last
 * ow % 8 pixels in the gradient. */
#include "plane.h"

#if defined(__x86_64__)
#include <immintrin.h>

enum { AVX2_CHANNELS = FCLF_PLANE_AVX2_CHANNELS, AVX2_VECTORS = FCLF_PLANE_AVX2_POSITIONS / 8 };

__attribute__((target("avx2,fma"), always_inline)) static inline void
tile_body(float *restrict y, int64_t P, const float *restrict xi, const int32_t *restrict off, int64_t K,
          const float *restrict wt, const float *restrict bias, int relu, int64_t p0, int64_t L, int64_t fw, int64_t ow,
          int64_t valid, int masked) {
    __m256 acc[AVX2_CHANNELS][AVX2_VECTORS];
    for (int j = 0; j < AVX2_CHANNELS; j++)
        for (int v = 0; v < AVX2_VECTORS; v++) acc[j][v] = _mm256_set1_ps(bias && j < valid ? bias[j] : 0.0f);
    __m256i m[AVX2_VECTORS];
    for (int v = 0; v < AVX2_VECTORS; v++) m[v] = fclf_lanes8(L - p0 - 8 * v);
    const float *x = xi + p0;
    for (int64_t k = 0; k < K; k++) {
        const float *p = x + off[k], *wk = wt + k * FCLF_PLANE_TILE_BLOCK;
        __m256 wv[AVX2_CHANNELS];
        for (int j = 0; j < AVX2_CHANNELS; j++) wv[j] = _mm256_broadcast_ss(wk + j);
        for (int v = 0; v < AVX2_VECTORS; v++) {
            const __m256 xv = masked ? _mm256_maskload_ps(p + 8 * v, m[v]) : _mm256_loadu_ps(p + 8 * v);
            for (int j = 0; j < AVX2_CHANNELS; j++) acc[j][v] = _mm256_fmadd_ps(wv[j], xv, acc[j][v]);
        }
    }
    if (relu)
        for (int j = 0; j < AVX2_CHANNELS; j++)
            for (int v = 0; v < AVX2_VECTORS; v++) acc[j][v] = _mm256_max_ps(acc[j][v], _mm256_setzero_ps());
    /* each output row the tile covers: its lanes go to y's row, at y + r ow + (p - r fw) for position p; a vector
     * wholly inside the row's pixels stores plainly, one that straddles its end or start through a mask */
    const int64_t end = fclf_min64(p0 + FCLF_PLANE_AVX2_POSITIONS, L);
    for (int64_t r = p0 / fw; r * fw < end; r++) {
        const int64_t lo = fclf_max64(p0, r * fw), hi = fclf_min64(end, r * fw + ow);
        if (hi <= lo) continue;
        const intptr_t lane0 = (intptr_t)(r * ow - r * fw + p0);
        for (int v = 0; v < AVX2_VECTORS; v++) {
            const int64_t a = fclf_max64(lo - p0 - 8 * v, 0), b = fclf_min64(hi - p0 - 8 * v, 8);
            if (b <= a) continue;
            const __m256i mask = _mm256_andnot_si256(fclf_lanes8(a), fclf_lanes8(b));
            for (int j = 0; j < AVX2_CHANNELS; j++) {
                if (j >= valid) break;
                /* the address of the vector's lane 0: before the row when it starts left of it (masked lanes only) */
                float *dst = (float *)((uintptr_t)(y + j * P) + (uintptr_t)((lane0 + 8 * v) * (intptr_t)sizeof(float)));
                if (a == 0 && b == 8) _mm256_storeu_ps(dst, acc[j][v]);
                else _mm256_maskstore_ps(dst, mask, acc[j][v]);
            }
        }
    }
}

__attribute__((target("avx2,fma"))) void fclf_plane_tile__avx2(float *restrict y, int64_t P, const float *restrict xi,
                                                              const int32_t *restrict off, int64_t K,
                                                              const float *restrict wt, const float *restrict bias,
                                                              int relu, int64_t p0, int64_t L, int64_t fw, int64_t ow,
                                                              int64_t valid) {
    if (p0 + FCLF_PLANE_AVX2_POSITIONS <= L) tile_body(y, P, xi, off, K, wt, bias, relu, p0, L, fw, ow, valid, 0);
    else tile_body(y, P, xi, off, K, wt, bias, relu, p0, L, fw, ow, valid, 1);
}

enum { GRAD_OB = FCLF_PLANE_AVX2_GRAD_OB, GRAD_KB = FCLF_PLANE_AVX2_GRAD_KB };

/* One vector of 8 positions at p into the 2 x 6 sums: d loaded once per channel, x once per tap. */
__attribute__((target("avx2,fma"), always_inline)) static inline void grad_step(__m256 acc[GRAD_OB][GRAD_KB],
                                                                              const float *const *dz,
                                                                              const float *const *x, int64_t p,
                                                                              __m256i m, int masked) {
    __m256 d[GRAD_OB];
    for (int o = 0; o < GRAD_OB; o++) d[o] = masked ? _mm256_maskload_ps(dz[o] + p, m) : _mm256_loadu_ps(dz[o] + p);
    for (int k = 0; k < GRAD_KB; k++) {
        const __m256 xv = masked ? _mm256_maskload_ps(x[k] + p, m) : _mm256_loadu_ps(x[k] + p);
        for (int o = 0; o < GRAD_OB; o++) acc[o][k] = _mm256_fmadd_ps(d[o], xv, acc[o][k]);
    }
}

__attribute__((target("avx2,fma"))) void fclf_plane_grad_tile__avx2(float *restrict part, const float *const *dz,
                                                                   const float *restrict xi, const int32_t *off,
                                                                   int64_t oh, int64_t fw, int64_t ow) {
    __m256 acc[GRAD_OB][GRAD_KB];
    for (int o = 0; o < GRAD_OB; o++)
        for (int k = 0; k < GRAD_KB; k++) acc[o][k] = _mm256_loadu_ps(part + (o * GRAD_KB + k) * 8);
    const float *x[GRAD_KB];
    for (int k = 0; k < GRAD_KB; k++) x[k] = xi + off[k];
    /* row by row over the pixels only: full vectors unmasked, the row's last ow % 8 through a mask, so no lane
     * reads a position that is not a pixel */
    const int64_t full = ow / 8 * 8;
    const __m256i tail = fclf_lanes8(ow - full);
    for (int64_t r = 0; r < oh; r++) {
        const int64_t row = r * fw;
        for (int64_t c = 0; c < full; c += 8) grad_step(acc, dz, x, row + c, tail, 0);
        if (full < ow) grad_step(acc, dz, x, row + full, tail, 1);
    }
    for (int o = 0; o < GRAD_OB; o++)
        for (int k = 0; k < GRAD_KB; k++) _mm256_storeu_ps(part + (o * GRAD_KB + k) * 8, acc[o][k]);
}
#endif
