/* batchnorm_planes.h: what BatchNorm's kernels (batchnorm.c) and the first convolution's step with its BatchNorm
 * (conv/conv_batchnorm.c) share: 16-float vectors, the batch statistics' last step (running statistics, the
 * normalising affine map), when a pass is worth threads, and the stack budget of a staged plane. */
#ifndef FCLF_BATCHNORM_PLANES_H
#define FCLF_BATCHNORM_PLANES_H

#include "fclf_internal.h"

#include <math.h>
#include <string.h>

/* Memory-bound passes over the batch: on threads from 64k values, as pooling (conv2's output at batch 32,
 * 248k values, took 0.87 ms forward on one thread). */
static inline int worth_threads(int64_t n, int64_t c, int64_t hw) { return n * c * hw >= (1 << 16) && c > 1; }

/* The largest plane the fused BatchNorm steps stage on the stack: 16 KB (64 x 64). */
enum { BN_POOL_STAGE = 4096 };

/* Planes are taken in vectors of 16 floats (one AVX-512 register, two AVX2 ones). */
enum { LANES = 16 };

typedef float lanes_f __attribute__((vector_size(4 * LANES)));
typedef int32_t lanes_i __attribute__((vector_size(4 * LANES)));
/* Lanes [0, n) set: the live part of a zero-padded or over-read last vector. */
#define lanes_below(n) ((lanes_i){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15} < (int32_t)(n))
/* An unaligned load of LANES floats (a macro: a function returning the vector trips the baseline clone's ABI). */
#define load_lanes(p) __extension__({ lanes_f v_; memcpy(&v_, (p), sizeof v_); v_; })

/* From channel ch's mean and (biased) variance over count values: WRITES mean_out[ch], invstd_out[ch], UPDATES
 * the running ones, and gives the affine map y = x * scale + shift that normalises it. */
static inline void finish_stats(float *scale, float *shift, float *mean_out, float *invstd_out, float *running_mean,
                                float *running_var, const float *gamma, const float *beta, int64_t count, int64_t ch,
                                double mean, double var, float momentum, float eps) {
    const float invstd = (float)(1.0 / sqrt(var + eps));
    *scale = gamma[ch] * invstd;
    *shift = beta[ch] - (float)mean * *scale;
    mean_out[ch] = (float)mean;
    invstd_out[ch] = invstd;
    if (running_mean) {
        const double unbiased = count > 1 ? var * (double)count / (double)(count - 1) : var;
        running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
        running_var[ch] = (float)((1.0 - momentum) * running_var[ch] + momentum * unbiased);
    }
}

#endif
