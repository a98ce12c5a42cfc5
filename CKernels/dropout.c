/* dropout.c: inverted dropout (Srivastava et al. 2014): in training each value is kept with probability
 * 1 - rate and scaled by 1 / (1 - rate), so evaluation is the identity. Whether element i of a call is kept
 * is a pure function of (seed, i): a counter-based draw (SplitMix64's finaliser), so the mask depends on
 * neither the thread count nor the order of work, and the backward pass reads the kept mask. */
#include "fclf_internal.h"

static inline uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* 1 when element i survives: its 24-bit uniform draw is at or above rate. */
static inline int kept(uint64_t seed, int64_t i, uint32_t threshold) {
    return (uint32_t)(mix64(seed ^ mix64((uint64_t)i)) >> 40) >= threshold;
}

static uint32_t threshold_of(float rate) { return (uint32_t)((double)rate * (double)(1u << 24)); }

void fclf_dropout_forward(float *y, uint8_t *mask, const float *x, int64_t count, float rate, uint64_t seed) {
    const uint32_t t = threshold_of(rate);
    const float scale = 1.0f / (1.0f - rate);
    for (int64_t i = 0; i < count; i++) {
        const int k = kept(seed, i, t);
        mask[i] = (uint8_t)k;
        y[i] = k ? x[i] * scale : 0.0f;
    }
}

void fclf_dropout_backward(float *dx, const float *dy, const uint8_t *mask, int64_t count, float rate) {
    const float scale = 1.0f / (1.0f - rate);
    for (int64_t i = 0; i < count; i++) dx[i] = mask[i] ? dy[i] * scale : 0.0f;
}
