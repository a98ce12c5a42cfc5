#include "fclf_bench.h"

#include <pthread.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>

/* 16 independent accumulators: enough to cover FMA latency x pipes on current x86 cores. */
__attribute__((target("avx512f"))) static float chains512(long iters) {
    __m512 a[16], b = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(1e-5f);
    for (int i = 0; i < 16; i++) a[i] = _mm512_set1_ps((float)i * 1e-3f);
    for (long k = 0; k < iters; k++)
#pragma clang loop unroll(full)
        for (int i = 0; i < 16; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    __m512 s = a[0];
    for (int i = 1; i < 16; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float chains256(long iters) {
    __m256 a[12], b = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-5f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i * 1e-3f);
    for (long k = 0; k < iters; k++)
#pragma clang loop unroll(full)
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    float out[8];
    __m256 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
    _mm256_storeu_ps(out, s);
    return out[0];
}
#endif

typedef struct { long iters; double flops; volatile float sink; } job;

static void *run(void *p) {
    job *j = p;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) { j->sink = chains512(j->iters); j->flops = (double)j->iters * 16 * 32; return NULL; }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) { j->sink = chains256(j->iters); j->flops = (double)j->iters * 12 * 16; return NULL; }
#endif
    j->flops = 0;
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

double fclf_bench_fma_peak(int threads, double seconds) {
    if (threads < 1 || threads > 64) return 0;
    long iters = (long)(seconds * 2e8); /* ~1 s per 2e8 iterations at 1 zmm FMA per cycle, 3.5 GHz */
    pthread_t t[64];
    job jobs[64];
    double start = now();
    for (int i = 0; i < threads; i++) {
        jobs[i] = (job){iters, 0, 0};
        pthread_create(&t[i], NULL, run, &jobs[i]);
    }
    double flops = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        flops += jobs[i].flops;
    }
    return flops / (now() - start) / 1e9;
}
