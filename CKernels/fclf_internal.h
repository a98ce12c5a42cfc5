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
#define FCLF_THREAD_NUM() omp_get_thread_num()
#define FCLF_NUM_THREADS() omp_get_num_threads()
#define FCLF_MAX_THREADS() (omp_in_parallel() || fclf_serial_active() ? 1 : omp_get_max_threads())
#else
#define FCLF_THREAD_NUM() 0
#define FCLF_NUM_THREADS() 1
#define FCLF_MAX_THREADS() 1
#endif

/* True while the calling thread is inside fclf_serial_begin/end: kernels then open no parallel region. */
int fclf_serial_active(void);
/* A parallel region is worth opening: enough work, and the thread has not asked for serial execution. */
#define FCLF_PAR(cond) ((cond) && !fclf_serial_active())

/* Below this many floating-point operations a kernel stays on the calling thread: an OpenMP fork/join
 * costs ~35 us on this 2-core machine (TOOLCHAIN.md: 2,000 tiny regions ~70 ms), i.e. a few MFLOP. */
#define FCLF_PAR_MIN_WORK 2000000.0

/* Element-wise and reduction loops that are not GEMM: one clone per x86-64 level, chosen at load time by
 * glibc's ifunc (the binary stays baseline x86-64). OpenMP loops stay outside cloned functions: a
 * parallel loop inside one gets SSE-only outlined bodies (TOOLCHAIN.md). */
#if defined(__x86_64__)
#define FCLF_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FCLF_CLONES
#endif

static inline int64_t fclf_min64(int64_t a, int64_t b) { return a < b ? a : b; }

#endif
