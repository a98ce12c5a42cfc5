/* dispatch.c: probe the CPU once, choose the kernel variant, and own the OpenMP thread count.
 *
 * The library is built for baseline x86-64 (or arm64) so one binary runs everywhere; the fast paths are
 * compiled with per-function target attributes and chosen here. __builtin_cpu_supports also checks that
 * the OS saves the AVX register state, which a bare cpuid check does not. */
#include "fclf_internal.h"

#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
/* omp.h is not on the toolchain clang's include path; these are the only calls we need. */
extern int omp_get_max_threads(void);
#endif

static int g_isa = -1; /* -1: not probed yet */

int fclf_isa_supported(int isa) {
    switch (isa) {
    case FCLF_ISA_SCALAR:
        return 1;
#if defined(__x86_64__)
    case FCLF_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case FCLF_ISA_AVX512F:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f");
#endif
    default:
        return 0;
    }
}

static int probe(void) {
    const char *forced = getenv("FCLF_ISA");
    if (forced) {
        int want = -1;
        if (strcmp(forced, "scalar") == 0) want = FCLF_ISA_SCALAR;
        else if (strcmp(forced, "avx2") == 0) want = FCLF_ISA_AVX2;
        else if (strcmp(forced, "avx512f") == 0) want = FCLF_ISA_AVX512F;
        /* An unknown or unsupported request falls back to the probe rather than failing a kernel call. */
        if (want >= 0 && fclf_isa_supported(want)) return want;
    }
    if (fclf_isa_supported(FCLF_ISA_AVX512F)) return FCLF_ISA_AVX512F;
    if (fclf_isa_supported(FCLF_ISA_AVX2)) return FCLF_ISA_AVX2;
    return FCLF_ISA_SCALAR;
}

int fclf_isa_active(void) {
    int isa = __atomic_load_n(&g_isa, __ATOMIC_ACQUIRE);
    if (isa < 0) {
        /* Racing first calls compute the same answer, so a plain store is enough. */
        isa = probe();
        __atomic_store_n(&g_isa, isa, __ATOMIC_RELEASE);
    }
    return isa;
}

int fclf_isa_usable(int isa) { return fclf_isa_supported(isa) ? isa : FCLF_ISA_SCALAR; }

const char *fclf_isa_name(int isa) {
    switch (isa) {
    case FCLF_ISA_SCALAR: return "scalar";
    case FCLF_ISA_AVX2: return "avx2";
    case FCLF_ISA_AVX512F: return "avx512f";
    default: return "unknown";
    }
}

/* The team size: this thread's choice, else the process's, else OpenMP's default (OMP_NUM_THREADS, else every
 * core). Every parallel region names it in a num_threads clause, so the process-wide setting reaches threads
 * that never called anything (OpenMP's own omp_set_num_threads only sets the calling thread's). */
static int default_threads;
static _Thread_local int thread_threads;

void fclf_set_num_threads(int n) { thread_threads = n > 0 ? n : 0; }
void fclf_set_default_threads(int n) { __atomic_store_n(&default_threads, n > 0 ? n : 0, __ATOMIC_RELAXED); }

/* Per-thread, so one thread's single-image predictions never change another thread's kernels. */
static _Thread_local int serial_depth;
void fclf_serial_begin(void) { serial_depth++; }
void fclf_serial_end(void) { serial_depth--; }
int fclf_serial_active(void) { return serial_depth > 0; }

static int shared_callers;
int fclf_shared_enter(void) { return __atomic_fetch_add(&shared_callers, 1, __ATOMIC_ACQ_REL); }
void fclf_shared_exit(void) { __atomic_fetch_sub(&shared_callers, 1, __ATOMIC_ACQ_REL); }

/* Whole chunks per thread instead of every kernel split across the team: no barrier after each layer, and
 * each chunk's activations stay in its own core's L2 from one layer to the next. Dynamic: this VM's second
 * core has slow phases, and a static split would leave the other waiting. */
int64_t fclf_parallel_tasks(int64_t tasks, int (*fn)(void *ctx, int64_t task), void *ctx) {
    /* FCLF_MAX_THREADS: one when serial or already inside a parallel region; no more threads than tasks. */
    const int threads = (int)fclf_min64(FCLF_MAX_THREADS(), tasks);
    if (threads <= 1) {
        for (int64_t t = 0; t < tasks; t++)
            if (fn(ctx, t) != 0) return t;
        return -1;
    }
    /* Handed out by a shared counter: clang's schedule(dynamic) calls __kmpc_dispatch_deinit, which
     * Debian 12's libomp does not have. */
    int64_t next = 0, failed = INT64_MAX;
#pragma omp parallel num_threads(threads)
    {
        fclf_serial_begin();
        for (int64_t t; (t = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED)) < tasks;)
            if (fn(ctx, t) != 0) {
                int64_t seen = __atomic_load_n(&failed, __ATOMIC_RELAXED);
                while (t < seen && !__atomic_compare_exchange_n(&failed, &seen, t, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
                }
            }
        fclf_serial_end();
    }
    return failed == INT64_MAX ? -1 : failed;
}

int fclf_get_max_threads(void) {
#ifdef _OPENMP
    if (thread_threads > 0) return thread_threads;
    int n = __atomic_load_n(&default_threads, __ATOMIC_RELAXED);
    return n > 0 ? n : omp_get_max_threads();
#else
    return 1;
#endif
}
