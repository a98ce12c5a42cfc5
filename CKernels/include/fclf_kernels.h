/*
 * fclf_kernels.h: the float32 compute kernels of fashionclf (internal; no stable API).
 *
 * Conventions
 * - Tensors are contiguous, row-major; images are NCHW. Sizes and offsets are int64_t.
 * - Argument order follows llm.c: outputs, then inputs, then parameters, then sizes. A "d" prefix is a
 *   gradient of the loss with respect to that tensor.
 * - Every kernel says, for each output, whether it WRITES it or ACCUMULATES into it (+=).
 * - Each optimised kernel has a naive twin named *_ref, used by the tests as the reference.
 * - OpenMP parallelism always gives every output element exactly one owning thread and a fixed summation
 *   order, so results do not depend on the thread count.
 * - Variants. A kernel with per-ISA code resolves the variant once, at its entry point (fclf_isa_active(),
 *   or the isa argument of its *_isa twin), and passes it down explicitly to its helpers and OpenMP workers;
 *   nothing below the entry point asks which variant is active. So tests can run every variant the CPU has, from
 *   concurrent test threads, without a process-wide switch that would leak into other tests (and which a
 *   thread-local would not carry to OpenMP workers). An *_isa twin given a variant this CPU lacks runs the
 *   scalar one. Kernels without a twin have a single variant: their loops are plain C, or cloned per x86-64
 *   level and picked by the loader from the CPU (not by FCLF_ISA); those copies give the same bits, so a
 *   variant's results do not depend on which copy the CPU gets (scripts/emulated-cpu.sh).
 */
#ifndef FCLF_KERNELS_H
#define FCLF_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- dispatch.c: CPU probe, ISA choice and threads ---------------------------------------------- */

typedef enum {
    FCLF_ISA_SCALAR = 0,  /* portable C, any CPU (and arm64) */
    FCLF_ISA_AVX2 = 1,    /* x86-64 AVX2 + FMA */
    FCLF_ISA_AVX512F = 2, /* x86-64 AVX-512F */
    FCLF_ISA_COUNT = 3,
} fclf_isa;

/* The variant in use: the best the CPU offers, or FCLF_ISA=scalar|avx2|avx512f from the environment. */
int fclf_isa_active(void);
/* 1 when this CPU (and OS) can run the variant. */
int fclf_isa_supported(int isa);
const char *fclf_isa_name(int isa);
/* Threads for the following kernels called on this thread (n < 1: back to the process's default). */
void fclf_set_num_threads(int n);
/* The process's default for threads that set none (n < 1: OMP_NUM_THREADS, else every core). */
void fclf_set_default_threads(int n);
/* The team size a kernel called on this thread starts with. */
int fclf_get_max_threads(void);
/* Between these, kernels called on this thread run on it alone (nestable). */
void fclf_serial_begin(void);
void fclf_serial_end(void);
/* Counts the callers inside a shared section (inference): returns how many were inside before this one. A
 * caller that is not alone runs its kernels serially, so that concurrent callers each use one core instead
 * of each starting an OpenMP team on all of them. */
int fclf_shared_enter(void);
void fclf_shared_exit(void);
/* Runs fn(ctx, task) once for each task in [0, tasks) on this thread's team (fclf_get_max_threads()), each
 * call on one thread with its kernels serial (fclf_serial_begin), tasks handed out in order to whichever
 * thread is free: data parallelism for work made of independent pieces, such as a batch's chunks of images.
 * fn returns 0 on success; a failed task does not stop the others. Returns the lowest failed task, or -1.
 * One task, a team of one, a caller that asked for serial execution or one already inside a parallel
 * region: the tasks run in order on the calling thread (its kernels as it set them), and the first failure
 * stops them. */
int64_t fclf_parallel_tasks(int64_t tasks, int (*fn)(void *ctx, int64_t task), void *ctx);

/* ---- assist.c: one image on the calling thread and, when it is free, a second core ------------------ */

/* Runs fn(ctx, task) once for each task in [0, tasks) and returns when all have run: the calling thread takes
 * tasks from the front, and a helper thread takes them from the back when it is awake. The helper starts
 * on first use; after each job it spins 20 ms while the pauses between calls (fclf_assist_end to the next
 * fclf_assist_begin) are shorter than that, else 1 ms, then sleeps. The caller waits only for tasks the
 * helper has begun, never for the helper itself. Alone (every task on the calling thread, in order) with fewer than 2 tasks,
 * fclf_get_max_threads() < 2, inside an OpenMP parallel region, or while another caller's job runs. */
void fclf_assisted_tasks(int64_t tasks, void (*fn)(void *ctx, int64_t task), void *ctx);
/* Between these, the kernels that split one image's work call fclf_assisted_tasks on this thread: the
 * per-window convolution (fclf_conv2d_window_pool), the Winograd one (fclf_conv2d_winograd_pool, by groups of tile
 * rows) and the GEMM of a product whose A is packed whole (the
 * inference plan's weights), by column tiles; the others run as fclf_serial_begin has them. Nestable. */
void fclf_assist_begin(void);
void fclf_assist_end(void);
int fclf_assist_active(void);
/* How many tasks the helper thread has run since the process started. */
int64_t fclf_assist_helped(void);

/* ---- scratch.c: per-thread reusable memory -------------------------------------------------------- */

/* At least `floats` floats of 64-byte aligned memory owned by the calling thread, reused by its next
 * call (contents unspecified) and freed when the thread exits; NULL when out of memory. */
float *fclf_thread_scratch(int64_t floats);

/* ---- gemm/: matrix multiplication ---------------------------------------------------------------- */

/* C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C. WRITES C when beta == 0 (C is not read, so it may
 * hold NaNs), otherwise ACCUMULATES. op(X) = X, or X^T when trans != 0; lda/ldb/ldc are row strides of
 * the stored matrices. Runs in parallel when the product is large and the caller is not already inside
 * an OpenMP parallel region. A product with M < 4 rows (and op(B) = B) is computed row by row without
 * packing, with the same K blocks and multiply-add as the micro-kernel, so its rows are bitwise those
 * of a larger M. */
void fclf_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* fclf_sgemm with a given variant (tests and benchmarks; an unsupported one runs the scalar variant). */
void fclf_sgemm_isa(int isa, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
void fclf_sgemm_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                    int64_t ldc);

/* The caches the blocking is derived from (gemm/blocking.c): CPUID leaf 4 (Intel) or 0x8000001D (AMD),
 * else Linux's sysfs, else defaults; origin says which. l3_sharing: logical CPUs sharing the L3. */
typedef struct {
    int64_t l1d_bytes, l1d_ways, l2_bytes, l2_ways, l3_bytes, l3_sharing;
    const char *origin;
} fclf_cache_info;
/* MC x KC blocks of op(A) and KC x NC panels of op(B). KC decides the bits: each C element is summed in
 * K blocks of equal length <= KC (K = 400 with KC = 320: two of 200), so a product's bits depend on K and
 * KC, never on MC, NC or the thread count. */
typedef struct {
    int64_t mc, kc, nc;
} fclf_gemm_blocking;
enum { FCLF_GEMM_MC_MAX = 4096, FCLF_GEMM_KC_MAX = 1024, FCLF_GEMM_NC_MAX = 16384 };
/* This machine's caches (read on every call; cheap). */
fclf_cache_info fclf_cache_probe(void);
/* BLIS's analytic model for these caches and an mr x nr micro-tile: a pure function (tests, benchmarks). */
fclf_gemm_blocking fclf_gemm_blocking_for(const fclf_cache_info *caches, int mr, int nr);
/* The blocking the active variant uses, decided at the first GEMM: FCLF_GEMM_BLOCKING=mc,kc,nc when set and
 * valid (an invalid value is reported once on stderr and ignored), else the model's for this machine's
 * caches. seen (may be NULL) receives the caches; origin (may be NULL) "cpuid", "sysfs", "defaults",
 * or "FCLF_GEMM_BLOCKING". */
fclf_gemm_blocking fclf_gemm_blocking_active(fclf_cache_info *seen, const char **origin);
/* fclf_sgemm_isa with the given blocking instead of the decided one (tests and benchmarks: what another
 * machine's values do here); MC and NC are rounded down to whole tiles. -1 (and nothing done) when a value
 * is outside 1...its _MAX. */
int fclf_sgemm_blocked(int isa, fclf_gemm_blocking blocking, int trans_a, int trans_b, int64_t M, int64_t N,
                       int64_t K, float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                       float *C, int64_t ldc);

/* ---- dense.c: fully connected layer, y = x W + b ------------------------------------------------- */

/* x [n, in], w [in, out], b [out] (may be NULL), y [n, out]. WRITES y = act(x w + b), act = ReLU when
 * relu != 0, else identity. */
void fclf_dense_forward(float *y, const float *x, const float *w, const float *b, int64_t n, int64_t in,
                        int64_t out, int relu);
/* With dz = dy masked by ReLU (y > 0) when relu != 0, else dz = dy (written to the scratch dz [n, out]):
 * ACCUMULATES dw [in, out] += x^T dz and db [out] += sum_n dz; WRITES dx [n, in] = dz w^T unless dx is NULL. */
void fclf_dense_backward(float *dx, float *dw, float *db, float *dz, const float *dy, const float *x,
                         const float *y, const float *w, int64_t n, int64_t in, int64_t out, int relu);
/* Inference: W packed once, as for convolutions above (wp 64-byte aligned; 0 floats: out wider than one NC
 * block, not packable).
 * forward_prepacked is fclf_dense_forward, bit for bit, reading wp (NULL: packs W as usual). */
int64_t fclf_dense_packed_weights_size(int64_t in, int64_t out);
void fclf_dense_pack_weights(float *wp, const float *w, int64_t in, int64_t out);
void fclf_dense_forward_prepacked(float *y, const float *x, const float *w, const float *wp, const float *b, int64_t n,
                                  int64_t in, int64_t out, int relu);
/* The same with a given variant (its GEMMs'). */
void fclf_dense_forward_isa(int isa, float *y, const float *x, const float *w, const float *b, int64_t n, int64_t in,
                            int64_t out, int relu);
void fclf_dense_backward_isa(int isa, float *dx, float *dw, float *db, float *dz, const float *dy, const float *x,
                             const float *y, const float *w, int64_t n, int64_t in, int64_t out, int relu);
/* Naive loops, sums in double. forward WRITES y; backward (no dz scratch) ACCUMULATES dw, db (may be NULL),
 * WRITES dx unless NULL. */
void fclf_dense_forward_ref(float *y, const float *x, const float *w, const float *b, int64_t n, int64_t in,
                            int64_t out, int relu);
void fclf_dense_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x, const float *y,
                             const float *w, int64_t n, int64_t in, int64_t out, int relu);

/* ---- conv/: 2-D convolution, stride 1 ------------------------------------------------------------ */

typedef struct {
    int64_t n, c, h, w;   /* input [n, c, h, w] */
    int64_t oc, kh, kw;   /* weights [oc, c, kh, kw], bias [oc] */
    int64_t pad_t, pad_l; /* zero padding before the first row / column */
    int64_t oh, ow;       /* output [n, oc, oh, ow] */
} fclf_conv2d_shape;

/* 'valid' (same = 0): no padding, oh = h - kh + 1. 'same' (same = 1): oh = h, pad_t = (kh - 1) / 2. */
fclf_conv2d_shape fclf_conv2d_make_shape(int64_t n, int64_t c, int64_t h, int64_t w, int64_t oc, int64_t kh,
                                         int64_t kw, int same);
/* Floats in the buffer col (fclf_conv2d_uses_col): the im2col matrix [c*kh*kw, n*oh*ow], or, for a padded
 * shape that packs from x, x in zero-framed planes [n, c, oh+kh-1, ow+kw-1]; and in the backward pass's
 * scratch tmp [oc, n*oh*ow], or, for a shape the plane tiles may take (fclf_conv2d_plane_taken_isa), dz in
 * zero-framed planes [n, oc, oh+kh-1, ow+kw-1] when that is larger. */
int64_t fclf_conv2d_col_size(fclf_conv2d_shape s);
int64_t fclf_conv2d_tmp_size(fclf_conv2d_shape s);
/* Floats of tmp the backward pass actually uses (fclf_conv2d_backward when pooled = 0, fclf_conv2d_pool_backward
 * when 1; with_dx: whether dx is asked for): 0 where the small-K weight gradient reads dy directly, or routes
 * the pooled gradient plane by plane on the stack (pooled, without dx, fclf_conv2d_pool_supported). */
int64_t fclf_conv2d_backward_tmp_size(fclf_conv2d_shape s, int with_dx, int pooled);
/* Floats of the backward pass's dcol scratch: the im2col matrix's, or c*kh*kw*oc if larger. */
int64_t fclf_conv2d_dcol_size(fclf_conv2d_shape s);

/* WRITES y [n, oc, oh, ow] = act(w * x + b), act = ReLU when relu != 0, else identity (b may be NULL).
 * col (fclf_conv2d_col_size floats) receives the im2col matrix, or the zero-framed x, when
 * fclf_conv2d_uses_col(s), and is kept for the backward pass; otherwise the products pack straight from x and
 * col is untouched (may be NULL). A padded shape given no col packs from x with a bounds check per tap: the
 * same bits, at about half the speed, except where the plane tiles take the shape with col
 * (fclf_conv2d_plane_taken_isa): without col it is the GEMM's sums, to rounding. */
void fclf_conv2d_forward(float *y, float *col, const float *x, const float *w, const float *b, int relu,
                         fclf_conv2d_shape s);
/* 1 when the passes of this shape use col: an explicit im2col matrix (c*kh*kw < 16: the direct path), or
 * x copied into zero-framed planes (padding, c*kh*kw >= 16). */
int fclf_conv2d_uses_col(fclf_conv2d_shape s);
/* 1 when fclf_conv2d_forward_isa and _backward_isa with this variant, given col, take the plane-tile path of a
 * padded convolution with few channels (CKernels/conv/plane.c): its sums are the GEMM path's, rounded in another
 * order (the GEMM blocks K). Without col a padded shape takes the GEMM from x. */
int fclf_conv2d_plane_taken_isa(int isa, fclf_conv2d_shape s);
/* Inference plans pack a convolution's weights once (into the active GEMM kernel's panels, with this
 * process's blocking, or the plane tiles' blocks of 8 channels) instead of on every call. Floats needed: 0 when the shape takes the direct path, which
 * reads w as it is. pack WRITES wp, which must be 64-byte aligned (the micro-kernels load panels aligned);
 * forward_prepacked is fclf_conv2d_forward, bit for bit, reading wp (made in this process for the same w and
 * shape, batch size aside; NULL: packs w as usual). */
int64_t fclf_conv2d_packed_weights_size(fclf_conv2d_shape s);
void fclf_conv2d_pack_weights(float *wp, const float *w, fclf_conv2d_shape s);
void fclf_conv2d_forward_prepacked(float *y, float *col, const float *x, const float *w, const float *wp, const float *b,
                                   int relu, fclf_conv2d_shape s);
/* Given dy = dL/dy for the y that fclf_conv2d_forward wrote from x (same relu flag, same col): ACCUMULATES
 * dw [oc, c*kh*kw] and db [oc] (db may be NULL); WRITES dx [n, c, h, w] unless dx is NULL.
 * dcol (fclf_conv2d_dcol_size floats; c*kh*kw*oc when dx is NULL) and tmp are scratch. */
void fclf_conv2d_backward(float *dx, float *dw, float *db, float *dcol, float *tmp, const float *dy,
                          const float *y, const float *col, const float *x, const float *w, int relu,
                          fclf_conv2d_shape s);

/* Convolution + activation + 2x2 max pooling. forward, when fclf_conv2d_pool_supported(s) (c*kh*kw < 16,
 * oh*(ow + kw - 1) <= 2048, a padded image's c (oh + kh - 1)(ow + kw - 1) <= 4096; other shapes: the call writes
 * nothing), in one pass from x: WRITES y [n, oc, oh/2, ow/2] and argmax (may be NULL) as
 * fclf_conv2d_forward then fclf_maxpool2x2_forward would, bit for bit (neither the full output nor an im2col
 * matrix is stored). backward, any shape: given the pooled dy, the argmax and, for ReLU, the pooled y (else
 * NULL) of the pooling, does what fclf_maxpool2x2_backward (with that y) then fclf_conv2d_backward (relu = 0)
 * would, without the full-size gradient: ACCUMULATES dw, db (may be NULL), WRITES dx unless NULL; dcol, tmp and
 * col as for fclf_conv2d_backward, with the same bits (to rounding for the shapes the plane tiles take there:
 * this pass runs the GEMM's products), except for the shapes the one-pass forward takes
 * (c*kh*kw < 16 and supported(s)): those read x, not col (which may be NULL), and give dw and db to rounding
 * (the same products, summed in other lanes; dx bit for bit). A small-K shape it refuses reads col as
 * fclf_conv2d_forward wrote it, or with col NULL runs the naive loops (slow; to rounding). */
int fclf_conv2d_pool_supported(fclf_conv2d_shape s);
void fclf_conv2d_pool_forward(float *y, int32_t *argmax, const float *x, const float *w, const float *b, int relu,
                              fclf_conv2d_shape s);
void fclf_conv2d_pool_backward(float *dx, float *dw, float *db, float *dcol, float *tmp, const float *dy,
                               const int32_t *argmax, const float *y, const float *col, const float *x, const float *w,
                               fclf_conv2d_shape s);
/* The four passes above with a given variant. */
void fclf_conv2d_forward_isa(int isa, float *y, float *col, const float *x, const float *w, const float *b, int relu,
                             fclf_conv2d_shape s);
void fclf_conv2d_backward_isa(int isa, float *dx, float *dw, float *db, float *dcol, float *tmp, const float *dy,
                              const float *y, const float *col, const float *x, const float *w, int relu,
                              fclf_conv2d_shape s);
void fclf_conv2d_pool_forward_isa(int isa, float *y, int32_t *argmax, const float *x, const float *w, const float *b,
                                  int relu, fclf_conv2d_shape s);
void fclf_conv2d_pool_backward_isa(int isa, float *dx, float *dw, float *db, float *dcol, float *tmp, const float *dy,
                                   const int32_t *argmax, const float *y, const float *col, const float *x,
                                   const float *w, fclf_conv2d_shape s);
/* The same backward pass at the pooling's winners only (conv/conv_pool.c): one term per pooling window that passes a
 * gradient, the channels of each tap contiguous (x, dx and w moved channel-last in work), instead of products over
 * the full output. For shapes with winners_supported(s) (c*kh*kw >= 16, oh, ow >= 2; others: work_size 0 and the
 * call writes nothing). ACCUMULATES dw, db (may be NULL), WRITES dx unless NULL, as fclf_conv2d_pool_backward would
 * to rounding for finite x and w (positions that pass no gradient are skipped, not multiplied by 0: an Inf or NaN
 * there does not spread); the same bits for any thread count, and per variant on any CPU. work: work_size floats,
 * about 2 n (oh + kh - 1) (ow + kw - 1) c + 2 oc c kh kw (each part rounded up to a cache line, + 16 to align).
 * Its naive twin is fclf_conv2d_pool_backward_ref. */
int fclf_conv2d_pool_backward_winners_supported(fclf_conv2d_shape s);
int64_t fclf_conv2d_pool_backward_winners_work_size(fclf_conv2d_shape s);
void fclf_conv2d_pool_backward_winners(float *dx, float *dw, float *db, float *work, const float *dy,
                                       const int32_t *argmax, const float *y, const float *x, const float *w,
                                       fclf_conv2d_shape s);
/* The same with a chosen variant: the seed CNN's conv2 (32 channels, 3x3) multiply-adds with FMA in the AVX2 and
 * AVX-512 variants, unfused in the scalar one, on any CPU. */
void fclf_conv2d_pool_backward_winners_isa(int isa, float *dx, float *dw, float *db, float *work, const float *dy,
                                           const int32_t *argmax, const float *y, const float *x, const float *w,
                                           fclf_conv2d_shape s);

/* Inference's convolution + activation + 2x2 max pooling for shapes with fclf_conv2d_window_pool_supported(s)
 * (oh, ow >= 2 and c*kh*kw >= 16, the GEMM path, or = 9 where fclf_conv2d_pool_supported): pooling window by
 * pooling window with the output channels in vector lanes (conv/window_pool.c), only the pixels the pooling
 * reads. WRITES y [n, oc, oh/2, ow/2] as fclf_conv2d_forward (col NULL) then fclf_maxpool2x2_forward would (K = 9:
 * fclf_conv2d_pool_forward), bit for bit; work (fclf_conv2d_window_pool_work_size floats) is scratch.
 * pack_weights WRITES wp [c*kh*kw, oc rounded up to 16] (packed_size floats), the weights as this kernel
 * reads them; the size is 0 where this CPU's variant has no window kernel (AVX-512 has it; AVX2 for
 * c*kh*kw >= 16) or the plane tiles take the convolution (fclf_conv2d_plane_taken_isa: their rounding is not the
 * GEMM's), and wp is NULL then: the passes it stands for run instead. */
int fclf_conv2d_window_pool_supported(fclf_conv2d_shape s);
int64_t fclf_conv2d_window_pool_packed_size(fclf_conv2d_shape s);
void fclf_conv2d_window_pool_pack_weights(float *wp, const float *w, fclf_conv2d_shape s);
int64_t fclf_conv2d_window_pool_work_size(fclf_conv2d_shape s);
void fclf_conv2d_window_pool(float *y, float *work, const float *x, const float *w, const float *wp, const float *b,
                             int relu, fclf_conv2d_shape s);
/* The same with a given variant (AVX-512, and AVX2 for c*kh*kw >= 16, have the window kernel; wp as packed for
 * the active one, or NULL). */
void fclf_conv2d_window_pool_isa(int isa, float *y, float *work, const float *x, const float *w, const float *wp,
                                 const float *b, int relu, fclf_conv2d_shape s);
/* A 3x3 'valid' convolution + activation + 2x2 max pooling by Winograd's F(2x2, 3x3) (conv/winograd.c): each
 * pooling window is one output tile, 16 multiply-adds per tile and channel pair instead of 36. WRITES y
 * [n, oc, oh/2, ow/2] and, unless NULL (inference), argmax (the winners, as fclf_maxpool2x2_forward gives them)
 * as fclf_conv2d_forward then fclf_maxpool2x2_forward would, to rounding (not bit for bit: about 1e-6 of the
 * largest term); the same bits for any batch or thread count. For shapes with supported(s): those it takes
 * (pad 0, c >= 2, ow/2 <= 8, at most 3 vectors of pooled pixels and enough of them to save 1.5x the
 * multiply-adds); packed_size is 0 where this CPU's variant has no such kernel (AVX-512 and AVX2 have it, with
 * their own blocks of output channels), and wp is NULL then: the two passes run instead. pack_weights WRITES wp
 * (packed_size floats, G g G^T per channel pair, for the active variant); work
 * (work_size floats) is scratch. Its naive twin is fclf_conv2d_pool_forward_ref; the *_isa twins run a given
 * variant, its weights packed by pack_weights_isa for the same one. */
int fclf_conv2d_winograd_pool_supported(fclf_conv2d_shape s);
int64_t fclf_conv2d_winograd_pool_packed_size(fclf_conv2d_shape s);
void fclf_conv2d_winograd_pool_pack_weights(float *wp, const float *w, fclf_conv2d_shape s);
int64_t fclf_conv2d_winograd_pool_work_size(fclf_conv2d_shape s);
void fclf_conv2d_winograd_pool(float *y, int32_t *argmax, float *work, const float *x, const float *w, const float *wp,
                               const float *b, int relu, fclf_conv2d_shape s);
int64_t fclf_conv2d_winograd_pool_packed_size_isa(int isa, fclf_conv2d_shape s);
void fclf_conv2d_winograd_pool_pack_weights_isa(int isa, float *wp, const float *w, fclf_conv2d_shape s);
void fclf_conv2d_winograd_pool_isa(int isa, float *y, int32_t *argmax, float *work, const float *x, const float *w,
                                   const float *wp, const float *b, int relu, fclf_conv2d_shape s);
/* The same F(2x2, 3x3) without the pooling (conv/winograd.c), for a convolution whose full output is needed (a
 * BatchNorm follows it in training): WRITES y [n, oc, oh, ow] as fclf_conv2d_forward would, to rounding (about
 * 1e-6 of the largest term); the same bits for any batch or thread count. For shapes with supported(s): the
 * pooled kernel's with even oh and ow (every output is a tile's). packed_size is 0 where this CPU's variant
 * has no such kernel (AVX-512 has it), and wp is NULL then: fclf_conv2d_forward runs instead. pack_weights
 * WRITES wp (packed_size floats); work (work_size floats) is scratch. Its naive twin is fclf_conv2d_forward_ref. */
int fclf_conv2d_winograd_supported(fclf_conv2d_shape s);
int64_t fclf_conv2d_winograd_packed_size(fclf_conv2d_shape s);
void fclf_conv2d_winograd_pack_weights(float *wp, const float *w, fclf_conv2d_shape s);
int64_t fclf_conv2d_winograd_work_size(fclf_conv2d_shape s);
void fclf_conv2d_winograd_forward(float *y, float *work, const float *x, const float *w, const float *wp, const float *b,
                                  int relu, fclf_conv2d_shape s);
int64_t fclf_conv2d_winograd_packed_size_isa(int isa, fclf_conv2d_shape s);
void fclf_conv2d_winograd_pack_weights_isa(int isa, float *wp, const float *w, fclf_conv2d_shape s);
void fclf_conv2d_winograd_forward_isa(int isa, float *y, float *work, const float *x, const float *w, const float *wp,
                                      const float *b, int relu, fclf_conv2d_shape s);
/* Naive direct convolution. forward WRITES y; backward WRITES dx (unless NULL) and ACCUMULATES dw, db. */
void fclf_conv2d_forward_ref(float *y, const float *x, const float *w, const float *b, fclf_conv2d_shape s);
void fclf_conv2d_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                              fclf_conv2d_shape s);
/* Naive convolution + activation + pooling: forward WRITES y and argmax (may be NULL) from the full output;
 * backward, given the pooling's argmax and, for ReLU, its y (else NULL), WRITES dx (unless NULL) and
 * ACCUMULATES dw, db (may be NULL) as fclf_conv2d_pool_backward. */
void fclf_conv2d_pool_forward_ref(float *y, int32_t *argmax, const float *x, const float *w, const float *b, int relu,
                                  fclf_conv2d_shape s);
void fclf_conv2d_pool_backward_ref(float *dx, float *dw, float *db, const float *dy, const int32_t *argmax,
                                   const float *y, const float *x, const float *w, fclf_conv2d_shape s);

/* ---- pool.c: 2x2 max pooling, stride 2 ----------------------------------------------------------- */

/* x [planes, h, w] -> y [planes, h/2, w/2] (floor: a last odd row/column is dropped, as Keras does).
 * WRITES y and argmax (the index inside the plane of each chosen input; the first maximum wins), unless
 * argmax is NULL (inference). */
void fclf_maxpool2x2_forward(float *y, int32_t *argmax, const float *x, int64_t planes, int64_t h, int64_t w);
/* WRITES dx [planes, h, w]: dy routed to the argmax positions, zero elsewhere. With y (the forward output;
 * may be NULL) only windows whose maximum is > 0 pass their gradient: the backward mask of a ReLU applied
 * before the pool, which the layer before may then skip. */
void fclf_maxpool2x2_backward(float *dx, const float *dy, const int32_t *argmax, const float *y, int64_t planes,
                              int64_t h, int64_t w);
/* The same with a given variant. */
void fclf_maxpool2x2_forward_isa(int isa, float *y, int32_t *argmax, const float *x, int64_t planes, int64_t h,
                                 int64_t w);
void fclf_maxpool2x2_backward_isa(int isa, float *dx, const float *dy, const int32_t *argmax, const float *y,
                                  int64_t planes, int64_t h, int64_t w);
void fclf_maxpool2x2_forward_ref(float *y, const float *x, int64_t planes, int64_t h, int64_t w);
/* From the forward input x (the first maximum of each window wins), not an argmax; y as for the kernel. */
void fclf_maxpool2x2_backward_ref(float *dx, const float *dy, const float *x, const float *y, int64_t planes,
                                  int64_t h, int64_t w);

/* ---- activation.c: ReLU ------------------------------------------------------------------------- */
/* (No *_ref: these loops are the naive form.) */

/* WRITES y = max(x, 0); y may equal x. */
void fclf_relu_forward(float *y, const float *x, int64_t count);
/* WRITES dx = dy where y > 0, else 0; dx may equal dy. */
void fclf_relu_backward(float *dx, const float *dy, const float *y, int64_t count);

/* ---- activation.c: a residual block's shortcut ------------------------------------------------------ */
/* The forward pass y = a + b; its backward pass hands dL/dy to both operands, which the block's input
 * gradient then sums with this same kernel. (No *_ref: the loop is the naive form.) */

/* WRITES y = a + b, elementwise; y may equal a or b. */
void fclf_add(float *y, const float *a, const float *b, int64_t count);

/* ---- batchnorm.c: batch normalisation over channels ----------------------------------------------- */
/* x, y [n, c, hw] (NCHW with hw = h*w; a dense layer's [n, features] is hw = 1). */

/* Training: WRITES y = act(gamma (x - mean) invstd + beta) with the batch's per-channel mean and biased
 * variance, act = ReLU when relu != 0 (the planner's BatchNorm+ReLU step), and mean [c], invstd [c] =
 * 1/sqrt(var + eps) for the backward pass; UPDATES running_mean and running_var (PyTorch's rule, unbiased
 * variance) unless running_mean is NULL. */
void fclf_batchnorm_forward_train(float *y, float *mean, float *invstd, float *running_mean, float *running_var,
                                  const float *x, const float *gamma, const float *beta, int64_t n, int64_t c,
                                  int64_t hw, float momentum, float eps, int relu);
/* ACCUMULATES dgamma, dbeta [c]; WRITES dx unless NULL. mean and invstd as the forward pass wrote them; y, the
 * forward's output, when it applied ReLU (dy then counts only where y > 0), else NULL. */
void fclf_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *y, const float *x,
                             const float *mean, const float *invstd, const float *gamma, int64_t n, int64_t c, int64_t hw);
/* BatchNorm, ReLU and 2x2 max pooling in one training step (the planner's "batchnorm+relu+maxpool"), for
 * x [n, c, h, w] with fclf_batchnorm_pool_supported(h, w): the full-size output is never stored. Forward
 * WRITES y [n, c, h/2, w/2] and argmax (as fclf_maxpool2x2_forward), mean and invstd [c], UPDATES the running
 * statistics: the bits of fclf_batchnorm_forward_train (relu 1) then fclf_maxpool2x2_forward. Backward, from
 * the pooled gradient dy, the winners argmax and the pooled output y: ACCUMULATES dgamma, dbeta, WRITES dx
 * [n, c, h, w] unless NULL, and work (n * c * h * w floats of scratch: the unpooled, masked gradient,
 * channel by channel): the bits of fclf_maxpool2x2_backward then fclf_batchnorm_backward (relu). */
int fclf_batchnorm_pool_supported(int64_t h, int64_t w);
void fclf_batchnorm_relu_pool_forward_train(float *y, int32_t *argmax, float *mean, float *invstd, float *running_mean,
                                            float *running_var, const float *x, const float *gamma, const float *beta,
                                            int64_t n, int64_t c, int64_t h, int64_t w, float momentum, float eps);
void fclf_batchnorm_relu_pool_backward(float *dx, float *dgamma, float *dbeta, float *work, const float *dy,
                                       const int32_t *argmax, const float *y, const float *x, const float *mean,
                                       const float *invstd, const float *gamma, int64_t n, int64_t c, int64_t h, int64_t w);
/* conv/conv_batchnorm.c: a network's first convolution (nothing reads its input gradient) and the BatchNorm
 * (+ReLU) (+2x2 max pooling) after it as one training step (the planner's "conv2d+batchnorm+..." step), which
 * never stores the convolution's output z: BatchNorm's statistics come from the moments of the input's patches
 * (mean(z) = w . m + b, var(z) = w^T C w) and the gradients from sums of g x_p (the file's comment has the
 * algebra). Supported (nonzero) for up to 32 taps (c * kh * kw), a padded input of under 16 KB and, with pool,
 * the pooled step's planes (fclf_batchnorm_pool_supported). moments: fclf_conv2d_batchnorm_moments_size(s)
 * doubles, written by the forward pass and read (then overwritten) by the backward pass of the same batch.
 *
 * Forward: x [n, c, h, w], weight [oc, c, kh, kw], bias [oc]. WRITES y = act(BatchNorm(conv(x))) [n, oc, oh, ow]
 * (act: ReLU when relu; with pool, which needs relu, max-pooled to [n, oc, oh/2, ow/2] with the winners in
 * argmax as fclf_batchnorm_relu_pool_forward_train's), mean, invstd [oc] (the batch's; biased variance), moments;
 * UPDATES running_mean, running_var as fclf_batchnorm_forward_train does.
 * Backward: dy, argmax, y as the forward pass wrote them (y: the ReLU's output, NULL without ReLU; argmax unused
 * without pool). ACCUMULATES dweight [oc, c, kh, kw], dgamma, dbeta [oc]. The bias gets no gradient: BatchNorm
 * removes any shift, so its gradient is 0 exactly (the separate kernels give rounding noise). */
int fclf_conv2d_batchnorm_supported(fclf_conv2d_shape s, int pool);
int64_t fclf_conv2d_batchnorm_moments_size(fclf_conv2d_shape s);
void fclf_conv2d_batchnorm_forward_train(float *y, int32_t *argmax, float *mean, float *invstd, float *running_mean,
                                         float *running_var, double *moments, const float *x, const float *weight,
                                         const float *bias, const float *gamma, const float *beta, int relu, int pool,
                                         fclf_conv2d_shape s, float momentum, float eps);
void fclf_conv2d_batchnorm_backward(float *dweight, float *dgamma, float *dbeta, const float *dy, const int32_t *argmax,
                                    const float *y, const float *x, const float *weight, const float *invstd,
                                    const float *gamma, double *moments, int pool, fclf_conv2d_shape s);
/* Inference: WRITES scale = gamma / sqrt(running_var + eps) and shift = beta - running_mean * scale [c] (in
 * double, rounded once), the per-channel affine map that evaluation applies and that folds into the layer
 * before. */
void fclf_batchnorm_inference_coefficients(float *scale, float *shift, const float *gamma, const float *beta,
                                           const float *running_mean, const float *running_var, int64_t c, float eps);
/* WRITES y = x * scale[ch] + shift[ch]; y may equal x. */
void fclf_channel_affine(float *y, const float *x, const float *scale, const float *shift, int64_t n, int64_t c,
                         int64_t hw);
void fclf_batchnorm_forward_train_ref(float *y, const float *x, const float *gamma, const float *beta, int64_t n,
                                      int64_t c, int64_t hw, float eps);
void fclf_batchnorm_backward_ref(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                                 const float *gamma, int64_t n, int64_t c, int64_t hw, float eps);

/* ---- dropout.c: inverted dropout ----------------------------------------------------------------- */
/* (No *_ref: these loops are the naive form; the mask is a pure function of (seed, index).) */

/* WRITES y = x / (1 - rate) where kept, else 0, and mask [count] (1 kept, 0 dropped); 0 <= rate < 1. */
void fclf_dropout_forward(float *y, uint8_t *mask, const float *x, int64_t count, float rate, uint64_t seed);
/* WRITES dx = dy / (1 - rate) where mask, else 0; dx may equal dy. */
void fclf_dropout_backward(float *dx, const float *dy, const uint8_t *mask, int64_t count, float rate);

/* ---- global_pool.c: global average pooling ------------------------------------------------------- */
/* (No *_ref: these loops are the naive form.) */

/* WRITES y [planes] = mean of each plane of x [planes, hw]. */
void fclf_global_avgpool_forward(float *y, const float *x, int64_t planes, int64_t hw);
/* WRITES dx [planes, hw] = dy[plane] / hw. */
void fclf_global_avgpool_backward(float *dx, const float *dy, int64_t planes, int64_t hw);

/* ---- loss.c: softmax + cross-entropy, fused ------------------------------------------------------ */

/* logits [n, k], labels [n] in 0..k-1. WRITES probs [n, k] (unless NULL) and dlogits [n, k] =
 * (softmax - onehot) / n (unless NULL). Returns the SUM over the batch of -log softmax[label], in double,
 * computed with log-sum-exp so large logits do not overflow. */
double fclf_softmax_xent(float *dlogits, float *probs, const float *logits, const int32_t *labels, int64_t n,
                         int64_t k);

/* Label smoothing (PyTorch's CrossEntropyLoss(label_smoothing=eps)): the cross-entropy against the target
 * q = (1 - eps) onehot + eps / k. WRITES probs [n, k] (unless NULL) and dlogits [n, k] = (softmax - q) / n
 * (unless NULL). Returns the SUM over the batch of -sum_j q_j log softmax_j, in double, with log-sum-exp:
 * per row (1 - eps) (lse - z[label]) + (eps / k) sum_j (lse - z_j). smoothing == 0 calls fclf_softmax_xent
 * (the same bits). */
double fclf_softmax_xent_smooth(float *dlogits, float *probs, const float *logits, const int32_t *labels, int64_t n,
                                int64_t k, float smoothing);

/* WRITES probs [n, k] = softmax(logits) (log-sum-exp, as above). */
void fclf_softmax_forward(float *probs, const float *logits, int64_t n, int64_t k);
/* Naive: p = exp(z - max) / sum in double; the loss as log(sum) - (z[label] - max). */
double fclf_softmax_xent_ref(float *dlogits, float *probs, const float *logits, const int32_t *labels, int64_t n,
                             int64_t k);
void fclf_softmax_forward_ref(float *probs, const float *logits, int64_t n, int64_t k);
/* Naive: q and p = exp(z - max) / sum in double; the loss as -sum_j q_j (z_j - max - log(sum)). */
double fclf_softmax_xent_smooth_ref(float *dlogits, float *probs, const float *logits, const int32_t *labels, int64_t n,
                                    int64_t k, float smoothing);

/* ---- optim.c: parameter updates ------------------------------------------------------------------ */

/* Adam (Kingma & Ba), step t >= 1 counted from 1: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps). UPDATES p, m, v in place. */
void fclf_adam_update(float *p, float *m, float *v, const float *g, int64_t count, float lr, float beta1,
                      float beta2, float eps, int64_t t);
/* SGD with momentum (PyTorch's form): buf = mu buf + g; p -= lr buf. UPDATES p and buf. */
void fclf_sgd_momentum_update(float *p, float *buf, const float *g, int64_t count, float lr, float momentum);
/* AdamW (Loshchilov & Hutter, decoupled weight decay) as PyTorch's torch.optim.AdamW: first
 * p *= 1 - lr * wd (the factor computed in double, rounded to float once), then the Adam step above from the
 * decayed p: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).
 * The decay multiplies by lr, so it follows a learning-rate schedule. weight_decay == 0 gives fclf_adam_update's
 * bits. UPDATES p, m, v in place; in parallel for large arrays (each element alone: no thread-count effect). */
void fclf_adamw_update(float *p, float *m, float *v, const float *g, int64_t count, float lr, float beta1,
                       float beta2, float eps, float weight_decay, int64_t t);
/* SGD with Nesterov momentum (PyTorch's form, dampening 0): g' = g + wd p; buf = mu buf + g';
 * p -= lr (g' + mu buf). UPDATES p and buf; in parallel for large arrays. */
void fclf_sgd_nesterov_update(float *p, float *buf, const float *g, int64_t count, float lr, float momentum,
                              float weight_decay);
/* SGD with momentum and L2 weight decay folded into the gradient (PyTorch's SGD weight_decay): g' = g + wd p;
 * buf = mu buf + g'; p -= lr buf. UPDATES p and buf; in parallel for large arrays. (With wd == 0 use
 * fclf_sgd_momentum_update: g + 0 p can turn a -0 gradient into +0.) */
void fclf_sgd_momentum_decay_update(float *p, float *buf, const float *g, int64_t count, float lr, float momentum,
                                    float weight_decay);
/* Stochastic weight averaging's running mean (Izmailov et al. 2018) of the k-th sample x, k >= 1 counted from
 * 1: mean += (x - mean) * (1/k) in double, so after samples x_1..x_k mean is their average to double rounding; k == 1
 * copies x. UPDATES mean; in parallel for large arrays (each element alone: no thread-count effect). */
void fclf_average_update(double *mean, const float *x, int64_t count, int64_t k);
/* The same updates in double, the state rounded to float after the step. */
void fclf_adam_update_ref(float *p, float *m, float *v, const float *g, int64_t count, float lr, float beta1,
                          float beta2, float eps, int64_t t);
void fclf_sgd_momentum_update_ref(float *p, float *buf, const float *g, int64_t count, float lr, float momentum);
void fclf_adamw_update_ref(float *p, float *m, float *v, const float *g, int64_t count, float lr, float beta1,
                           float beta2, float eps, float weight_decay, int64_t t);
void fclf_sgd_nesterov_update_ref(float *p, float *buf, const float *g, int64_t count, float lr, float momentum,
                                  float weight_decay);
void fclf_sgd_momentum_decay_update_ref(float *p, float *buf, const float *g, int64_t count, float lr, float momentum,
                                        float weight_decay);

/* ---- augment.c: training-time augmentation, uint8 images to the network's float input -------------- */

/* Only for training batches: evaluation and inference convert with pixel/255 alone (an all-off config gives
 * exactly that, so one code path can serve both, but nothing random may ever reach a test-set metric).
 *
 * Each image goes through, in this order (why in augment.c):
 *   1. one bilinear warp, sampled at the inverse map of: horizontal flip, isotropic scale s about the image
 *      centre ((w-1)/2, (h-1)/2), then an integer shift (dx, dy); outside the source is background (0);
 *   2. Gaussian blur, separable, sigma ~ U[0, blur_sigma_max], radius ceil(3 sigma), zero outside the image;
 *   3. gamma x -> x^g, g log-uniform in [gamma_min, gamma_max];
 *   4. contrast x -> c x, c ~ U[contrast_min, contrast_max];
 *   5. with probability peak_p, x -> x / max(x) (when max > 0): the photo preprocessing's peak to 255;
 *   6. with probability erase_p, one rectangle set to background (0): area fraction ~ U[erase_area_min,
 *      erase_area_max] of h*w, aspect (height/width) log-uniform in [erase_aspect_min, 1/erase_aspect_min],
 *      placed uniformly inside the image;
 *   7. additive Gaussian noise N(0, noise_std^2) on every pixel (the erased rectangle included, so it
 *      looks like background), clamped to [0, 1].
 * With probability 1 - photometric_p an image skips the photometric steps (2-5 and 7) and keeps the clean
 * tone of the data set, which is what the test set looks like; the geometric steps and erasing still apply.
 * Each step with its parameter at the identity (p = 0, shift 0, s = 1, sigma = 0, g = 1, c = 1, std 0) is
 * skipped, so fclf_augment_identity() gives dst = (float)p * (1.0f / 255.0f) bit for bit.
 *
 * Randomness: every draw of image i is a pure function of (seed, first + i), its position in the epoch,
 * through a counter-based generator (SplitMix64's finaliser over a per-image key), and each parameter has
 * its own fixed draw slot. So the output depends neither on the thread count nor on how an epoch is cut
 * into batches, and switching one transform on or off does not change the draws of the others.
 *
 * Preconditions: 0 < scale_min <= scale_max, 0 < gamma_min <= gamma_max, 0 <= contrast_min <= contrast_max,
 * 0 <= erase_area_min <= erase_area_max <= 1, 0 < erase_aspect_min <= 1, blur_sigma_max >= 0,
 * noise_std >= 0; probabilities in [0, 1] (p >= 1 always, p <= 0 never); max_shift < 0 counts as 0. */
typedef struct {
    float flip_p;                     /* probability of a horizontal flip */
    int32_t max_shift;                /* dx, dy each uniform over the integers in [-max_shift, max_shift] */
    float scale_min, scale_max;       /* s ~ U[min, max]; s < 1 shrinks the object (1 = none) */
    float erase_p;                    /* random erasing (Zhong et al. 2017): probability, */
    float erase_area_min, erase_area_max; /* area fraction range, */
    float erase_aspect_min;           /* aspect range [min, 1/min] */
    float gamma_min, gamma_max;       /* x^g on [0, 1] (1 = none) */
    float contrast_min, contrast_max; /* c x, scales the ink (1 = none) */
    float blur_sigma_max;             /* pixels (0 = none) */
    float noise_std;                  /* on the [0, 1] scale (0 = none) */
    float peak_p;                     /* probability of the peak normalisation */
    float photometric_p;              /* probability that steps 2-5 and 7 apply to an image at all */
} fclf_augment_config;

/* The config with every transform off (scale, gamma and contrast 1; everything else 0). */
fclf_augment_config fclf_augment_identity(void);

/* src: uint8 images [*, h*w] (0 = background); src_index [n]: which source image each output row is.
 * WRITES dst [n, h*w], floats in [0, 1], row i the augmentation of src image src_index[i] with the draws of
 * epoch position first + i. Parallel over images when the batch is large and the caller is not inside an
 * OpenMP region or a serial section; allocates nothing: per-image temporaries live on the stack, O(h + w)
 * floats plus an h*w plane when blurring (28x28: under 4 KB; a large image needs OMP_STACKSIZE to match).
 * src_index values must lie in [0, number of source images). */
void fclf_augment_batch(float *dst, const uint8_t *src, const int32_t *src_index, int64_t n, int64_t h, int64_t w,
                        const fclf_augment_config *cfg, uint64_t seed, uint64_t first);
/* Naive twin: one image at a time, each pixel's warp and blur evaluated directly, arithmetic in double; the
 * same draws (parameters computed with the same float expressions, so discrete choices agree exactly). */
void fclf_augment_batch_ref(float *dst, const uint8_t *src, const int32_t *src_index, int64_t n, int64_t h,
                            int64_t w, const fclf_augment_config *cfg, uint64_t seed, uint64_t first);

#ifdef __cplusplus
}
#endif
#endif
