/* fclf_internal.h: helpers shared by the kernel files; not part of any public header. */
#ifndef FCLF_INTERNAL_H
#define FCLF_INTERNAL_H

#include "fclf_kernels.h"

#ifdef _OPENMP
/* omp.h is not on the toolchain clang's include path; declare the few calls we use. */
extern int omp_get_thread_num(void);
extern int omp_get_num_threads(void);
extern int omp_get_max_threads(void);
extern int omp_in_parallel(void);
/* A thread running its kernels serially owns the whole range, also when it is one of the workers of
 * fclf_parallel_tasks, where OpenMP would report its place in that outer team. */
#define FCLF_THREAD_NUM() (fclf_serial_active() ? 0 : omp_get_thread_num())
#define FCLF_NUM_THREADS() (fclf_serial_active() ? 1 : omp_get_num_threads())
#define FCLF_MAX_THREADS() (omp_in_parallel() || fclf_serial_active() ? 1 : fclf_get_max_threads())
#else
#define FCLF_THREAD_NUM() 0
#define FCLF_NUM_THREADS() 1
#define FCLF_MAX_THREADS() 1
#endif

/* True while the calling thread is inside fclf_serial_begin/end: kernels then open no parallel region. */
int fclf_serial_active(void);

/* Below this many floating-point operations a kernel stays on the calling thread: an OpenMP fork/join
 * costs ~35 us on this 2-core machine (TOOLCHAIN.md: 2,000 tiny regions ~70 ms), i.e. a few MFLOP. */
#define FCLF_PAR_MIN_WORK 2000000.0

/* Element-wise and reduction loops that are not GEMM: one clone per x86-64 level, chosen at load time by
 * glibc's ifunc (the binary stays baseline x86-64). OpenMP loops stay outside cloned functions: a
 * parallel loop inside one gets SSE-only outlined bodies (TOOLCHAIN.md). FCLF_NO_CLONES (ThreadSanitizer
 * builds, scripts/sanitize.sh) compiles the baseline only: ifunc resolvers run before TSan is initialised
 * and crash every TSan binary at load. */
#if defined(__x86_64__) && !defined(FCLF_NO_CLONES)
#define FCLF_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FCLF_CLONES
#endif

/* Static partition of [0, n) among the threads of the enclosing parallel region: thread t of T gets
 * [n*t/T, n*(t+1)/T), as schedule(static) would. Written out because libomp's worksharing-loop entry
 * (__kmpc_for_static_init_8) calls malloc on every loop: 42 mallocs per CNN training step in the
 * TrainStep benchmark, which must count 0. Usage:
 *     FCLF_PARALLEL_IF(cond, for (FCLF_STATIC_RANGE(i, n)) ...;); */
static inline int64_t fclf_partition_bound(int64_t n, int next) {
    return n * (FCLF_THREAD_NUM() + next) / FCLF_NUM_THREADS();
}
/* Runs the statement in a parallel region when cond holds (enough work) and the thread has not asked
 * for serial execution, else plainly on the calling thread: a
 * `#pragma omp parallel if (false)` region still calls malloc in libomp (2 per CNN step at batch 32,
 * where pool2's input sits under its threshold). */
#define FCLF_PARALLEL_IF(cond, ...)                                                                          \
    do {                                                                                                     \
        if ((cond) && !fclf_serial_active()) {                                                               \
            _Pragma("omp parallel num_threads(fclf_get_max_threads())") __VA_ARGS__                          \
        } else {                                                                                             \
            __VA_ARGS__                                                                                      \
        }                                                                                                    \
    } while (0)
#define FCLF_STATIC_RANGE(var, n) int64_t var = fclf_partition_bound((n), 0), var##_end = fclf_partition_bound((n), 1); var < var##_end; var++
/* Inside a parallel region, every thread's ok (it got its scratch, say) joined at a barrier: 1 when all were ok, else 0
 * on every thread (failed, shared, starts 0 and becomes 1). All threads of the team must call it. */
static inline int fclf_team_all_ok(int *failed, int ok) {
    if (!ok) {
#pragma omp atomic write
        *failed = 1;
    }
#pragma omp barrier
    int stop;
#pragma omp atomic read
    stop = *failed;
    return !stop;
}

/* scratch.c: the per-thread buffers. Slot USER backs fclf_thread_scratch; the GEMM packs into PACK_A and
 * PACK_B (PACK_B also holds the short-M rows' accumulators) and a split-K product keeps its blocks' partial
 * products in SPLIT_K. */
enum { FCLF_SCRATCH_USER, FCLF_SCRATCH_PACK_A, FCLF_SCRATCH_PACK_B, FCLF_SCRATCH_SPLIT_K, FCLF_SCRATCH_SLOTS };
float *fclf_scratch_slot(int slot, int64_t floats);

/* The variant an *_isa entry point runs: the one asked for when this CPU has it, else scalar. */
int fclf_isa_usable(int isa);

/* pool.c: one plane [h, w] pooled 2x2 into y and argmax [h/2, w/2]; and the adjoint, dy routed to the winners
 * (only where y > 0 when y is given), zero elsewhere. The full plane's rows lie ld >= w apart (ld - w more
 * floats each: pool skips them, unpool WRITES them 0: h ld floats in all); the winners index the h x w plane.
 * isa: the variant the calling kernel resolved. */
void fclf_pool_plane(int isa, float *y, int32_t *argmax, const float *x, int64_t h, int64_t w, int64_t ld);
void fclf_unpool_plane(int isa, float *dxp, const float *dyp, const int32_t *ap, const float *yp, int64_t h, int64_t w,
                       int64_t ld);
/* The pooled values, winners and outputs (when y) of the plane at offset at, to be routed soon, asked for ahead. The fused
 * backward passes route one output channel's planes image after image, oc planes apart (conv2: 6.4 KB, conv1:
 * 21.6 KB), a stride the hardware prefetchers do not follow across pages: perf put the routing's time on the
 * loads of yp and dyp. */
static inline void fclf_unpool_prefetch(const float *dy, const int32_t *argmax, const float *y, int64_t at,
                                        int64_t cells) {
    for (int64_t off = 0; off < cells * 4 + 63; off += 64) {
        __builtin_prefetch((const char *)(dy + at) + off);
        __builtin_prefetch((const char *)(argmax + at) + off);
        if (y) __builtin_prefetch((const char *)(y + at) + off);
    }
}
/* Channel ch's n planes of a pooled [n, c, h/2, w/2] gradient routed back, plane i to dst + i * stride (h x w
 * floats each), each plane's inputs asked for two images ahead: the walk of the fused backward passes that
 * route a channel's whole batch before using it (conv_pool.c, batchnorm.c). */
void fclf_unpool_channel(int isa, float *dst, int64_t stride, const float *dy, const int32_t *argmax, const float *y,
                         int64_t n, int64_t c, int64_t ch, int64_t h, int64_t w);
/* fclf_maxpool2x2_backward with a resolved variant (the fused convolution's large-plane path). */
void fclf_maxpool2x2_backward_with(int isa, float *dx, const float *dy, const int32_t *argmax, const float *y,
                                   int64_t planes, int64_t h, int64_t w);

static inline int64_t fclf_min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t fclf_max64(int64_t a, int64_t b) { return a > b ? a : b; }
/* The sum of n float lanes (n a power of 2) in a fixed order, whatever the compiler's vector width: halves folded
 * onto each other, ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)) for 8. */
static inline float fclf_fold_lanes(const float *a, int n) {
    float t[64];
    for (int l = 0; l < n; l++) t[l] = a[l];
    for (int w = n / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++) t[l] = t[l] + t[l + w];
    return t[0];
}
/* The AVX-512 mask (__mmask16) of the first n of 16 lanes: none for n <= 0, all for n >= 16. */
static inline uint16_t fclf_lanes16(int64_t n) { return n >= 16 ? 0xFFFF : n <= 0 ? 0 : (uint16_t)((1u << n) - 1u); }
#if defined(__x86_64__)
#include <immintrin.h>
/* The AVX2 mask (all bits set per lane, as VMASKMOVPS reads it) of the first n of 8 lanes. */
__attribute__((target("avx2"), always_inline)) static inline __m256i fclf_lanes8(int64_t n) {
    const int32_t k = (int32_t)(n < 0 ? 0 : n > 8 ? 8 : n);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif

#endif
