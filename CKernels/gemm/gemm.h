/* gemm.h: the GEMM engine's internals: operands, outputs, and the per-ISA kernel table.
 *
 * Structure (BLIS/GotoBLAS): the K x NC panel of op(B) and the MC x K block of op(A) are packed into
 * contiguous, zero-padded micro-panels; one register micro-kernel computes an MR x NR tile of C from an
 * MR-wide A panel and an NR-wide B panel. driver.c owns the loops, split.c the thread split, blocking.c the
 * block sizes; each ISA's file (scalar.c, avx2.c, avx512.c) owns its micro-kernel and packers and fills
 * one fclf_gemm_kernel:
 *   avx512f  8 x 32 (16 zmm accumulators: 2 FMA pipes x 4-cycle latency need >= 8 in flight)
 *   avx2     6 x 16 (12 ymm accumulators, BLIS's Haswell shape, 15 of 16 registers)
 *   scalar   4 x 8  (SSE2 on x86-64, which every such CPU has; plain C the compiler vectorises elsewhere)
 * MR = 8 divides every M of our models (32, 64, 128, 288, 1600), so their AVX-512 tiles are full; AVX2's 6 leaves
 * a short last row tile (64 = 10 x 6 + 4), which its edge kernel computes without the rows past M, or, when it
 * is 1-3 rows (32 = 5 x 6 + 2), its pair kernel together with the whole tile before it. For a short M (up to 64
 * rows, 32 when B's rows are off the 64-byte lines: a dense layer's forward product at a training batch) a stored B
 * whose K block lies within half of L2 is read in place, its rows where they lie, by the same kernels with B's row stride (in_place), rather than packed
 * for the few row tiles that read it; only a partial last panel is packed. */
#ifndef FCLF_GEMM_H
#define FCLF_GEMM_H

#include "../fclf_internal.h"
#include "../conv/im2col.h"

/* The micro-tile bounds; MC, KC and NC come from the machine (blocking.c). */
enum { FCLF_GEMM_MR_MAX = 8, FCLF_GEMM_NR_MAX = 32 };

/* Where an operand comes from: a stored matrix, or the im2col matrix of an NCHW batch x (conv/im2col.h),
 * never materialised. As B it is the convolution's forward product, as A (not transposed) its weight
 * gradient. Packing straight from x skips writing and re-reading col (1.1M floats per 32 images for conv2);
 * the packed panels hold the same values, so results are bitwise those of the explicit path. */
typedef struct {
    const float *m; /* stored matrix, leading dimension ld, transposed when trans */
    int64_t ld;
    int trans;
    const float *x; /* implicit im2col when conv != NULL */
    const fclf_conv2d_shape *conv;
    int64_t origin; /* first column (as B) or first row (as A) of this part of the im2col or packed matrix */
    /* Panels packed once (fclf_gemm_pack_whole) for this kernel and K blocking: the driver reads them in
     * place of packing m. K block pc starts at packed + pc * packed_ld (packed_ld: rows (as A) or columns
     * (as B) rounded up to the tile); inside it, row (column) r's panel starts at r * kc. m stays valid. */
    const float *packed;
    int64_t packed_ld;
} fclf_gemm_operand;

/* Where C goes. Plain: element (i, j) at C[i*ldc + j]. Segmented (seg > 0): the columns come in groups of
 * seg, group g at C + g*seg_stride, so that a convolution's product [oc, n*P] lands straight in NCHW
 * (seg = P, seg_stride = oc*P, ldc = P) instead of a [oc, n, P] buffer that a second pass reorders. col0
 * is the first column's index in that layout (a thread's part starts inside it). bias (per row) and relu
 * are applied with the last K block. */
typedef struct {
    float *C;
    int64_t ldc, seg, seg_stride, col0;
    const float *bias;
    int relu;
} fclf_gemm_out;

/* acc = sum_p a[p*MR + i] * b[p*NR + j]; c = alpha*acc (+ beta*c when beta != 0), then + bias[i] per row
 * when bias, then max(., 0) when relu: the epilogue of a convolution, applied with its last K block. */
typedef void (*fclf_gemm_ukernel_fn)(int64_t kc, const float *restrict a, const float *restrict b, float *restrict c,
                                     int64_t ldc, float alpha, float beta, const float *restrict bias, int relu);
/* The micro-kernel's first mb (< MR) rows of a tile, from the same panels and with the same arithmetic per
 * row: the last row tile of an M that MR does not divide. */
typedef void (*fclf_gemm_edge_fn)(int mb, int64_t kc, const float *restrict a, const float *restrict b, float *restrict c,
                                  int64_t ldc, float alpha, float beta, const float *restrict bias, int relu);
/* A tile read from B in place instead of from a packed panel: op(B) is a stored B, not transposed, whose row p
 * starts ldb floats after row p - 1, and b points at the tile's first column in the K block's first row. The
 * micro-kernel (mb = MR, e = 0), the edge kernel (mb < MR, e = 0) or the pair kernel (e > 0, the tile and the e
 * rows after it), with the FMAs of the packed ones in the same order: the same bits. A variant without an edge
 * (pair) kernel is asked for whole tiles only (mb = MR, e = 0), as column_panel asks its packed kernels. */
typedef void (*fclf_gemm_in_place_fn)(int mb, int e, int64_t kc, const float *restrict a, const float *restrict b,
                                      int64_t ldb, float *restrict c, int64_t ldc, float alpha, float beta,
                                      const float *restrict bias, int relu);
/* op(A)[i0 : i0+mc, p0 : p0+kc] -> MR-row panels, each kc x MR, rows past mc zero. */
typedef void (*fclf_gemm_pack_a_fn)(float *restrict dst, const fclf_gemm_operand *a, int64_t i0, int64_t mc,
                                    int64_t p0, int64_t kc);
/* op(B)[p0 : p0+kc, j0 : j0+nc] -> NR-column panels, each kc x NR, columns past nc zero. */
typedef void (*fclf_gemm_pack_b_fn)(float *restrict dst, const fclf_gemm_operand *b, int64_t p0, int64_t kc,
                                    int64_t j0, int64_t nc);

/* Rows of C for a short op(A) (M < 4) from the plain matrices, op(B) not transposed: per element the
 * micro-kernel's arithmetic (K blocks of kstep, products accumulated in p order, then alpha * acc
 * (+ beta * c)). */
typedef void (*fclf_gemm_rows_fn)(int ta, int64_t M, int64_t N, int64_t K, int64_t kstep, float alpha,
                                  const float *restrict A, int64_t lda, const float *restrict B, int64_t ldb, float beta,
                                  float *restrict C, int64_t ldc);

/* One ISA's GEMM. Each packer handles every operand kind (stored either way, implicit im2col). fused: the
 * micro-kernel multiplies and adds with FMA (one rounding), which the short-M row path must copy. rows: the
 * variant's own short-M row kernel, or NULL for the portable one (driver.c). */
typedef struct {
    int isa, mr, nr, fused;
    fclf_gemm_ukernel_fn kernel;
    fclf_gemm_edge_fn edge; /* NULL: a short row tile is computed whole into a buffer and its rows copied */
    /* NULL, or the last whole row tile and a short one of mb <= MR / 2 rows after it, computed as two tiles of
     * (MR + mb) / 2 rows or so, with the same arithmetic per row: a short tile alone keeps too few
     * accumulators to cover the FMA latency (AVX2's 6-row tile leaves 2 rows of M = 32 and 128). */
    fclf_gemm_edge_fn pair;
    fclf_gemm_pack_a_fn pack_a;
    fclf_gemm_pack_b_fn pack_b;
    fclf_gemm_rows_fn rows;
    /* NULL, or the tiles reading a stored B in place (driver.c: a short M, where packing B costs more than
     * the few row tiles that read each panel save) */
    fclf_gemm_in_place_fn in_place;
} fclf_gemm_kernel;

extern const fclf_gemm_kernel fclf_gemm_scalar;
#if defined(__x86_64__)
extern const fclf_gemm_kernel fclf_gemm_avx2, fclf_gemm_avx512f;
#endif

/* The table entry of a variant (driver.c): a supported one, else the scalar one. */
const fclf_gemm_kernel *fclf_gemm_kernel_for(int isa);
/* The blocking a kernel runs with (blocking.c): the override, else the model's for its tile and this
 * machine's caches; MC and NC whole tiles of it. */
fclf_gemm_blocking fclf_gemm_blocking_of(const fclf_gemm_kernel *k);
/* Rows of C up to which the driver reads a stored B in place (blocking.c: 64, or FCLF_GEMM_IN_PLACE_ROWS; half of
 * it for rows off the 64-byte lines), and the bytes a K block of B's rows may span for it (half of L2). */
int64_t fclf_gemm_in_place_rows(void);
int64_t fclf_gemm_in_place_span(void);
/* 1 when each of MC, KC and NC lies in 1...its _MAX (FCLF_GEMM_BLOCKING and fclf_sgemm_blocked accept it). */
int fclf_gemm_blocking_valid(fclf_gemm_blocking b);
/* b with MC and NC rounded down to whole tiles of k (at least one). */
fclf_gemm_blocking fclf_gemm_blocking_fit(fclf_gemm_blocking b, const fclf_gemm_kernel *k);

/* Which of a variant's packers an operand takes, decided here once for every variant: the implicit im2col
 * matrix (read as runs of x), or, when padded, the portable packer with its bounds check per tap (the
 * convolution frames padded inputs in col, so this is a caller that gave no col); a stored matrix whose panel
 * entries are rows of it (A not transposed, B transposed: transposed in registers), or one whose panel rows
 * are contiguous in it (copied). */
typedef enum { FCLF_PACK_IM2COL, FCLF_PACK_PORTABLE, FCLF_PACK_ROWS, FCLF_PACK_CONTIGUOUS } fclf_gemm_pack_kind;
static inline fclf_gemm_pack_kind fclf_gemm_pack_kind_of(const fclf_gemm_operand *x, int as_b) {
    if (x->conv) return fclf_im2col_padded(x->conv) ? FCLF_PACK_PORTABLE : FCLF_PACK_IM2COL;
    return (as_b ? x->trans : !x->trans) ? FCLF_PACK_ROWS : FCLF_PACK_CONTIGUOUS;
}

/* The portable packers (scalar.c), for any panel width; avx2.c uses them as they are and avx512.c for the
 * operands its vector packers do not take. */
void fclf_gemm_pack_a_portable(float *restrict dst, const fclf_gemm_operand *a, int64_t i0, int64_t mc, int64_t p0,
                               int64_t kc, int mr);
void fclf_gemm_pack_b_portable(float *restrict dst, const fclf_gemm_operand *b, int64_t p0, int64_t kc, int64_t j0,
                               int64_t nc, int nr);

/* C = alpha op(A) op(B) + beta C for operands and output as described above (driver.c, shared among threads by
 * split.c): serial below FCLF_PAR_MIN_WORK or inside a parallel region, else one contiguous, tile-aligned range
 * of columns (or rows) per thread. M, N, K > 0. */
void fclf_gemm_drive(const fclf_gemm_kernel *k, int64_t M, int64_t N, int64_t K, float alpha,
                     const fclf_gemm_operand *a, const fclf_gemm_operand *b, float beta, const fclf_gemm_out *out);
/* Floats of op(X) packed whole as A (M x K, as_b = 0) or as B (K x N, as_b = 1) for kernel k; 0 when the
 * driver cannot read it packed (as B, N wider than one NC block). */
int64_t fclf_gemm_packed_size(const fclf_gemm_kernel *k, int as_b, int64_t rows, int64_t cols);
/* WRITES dst (fclf_gemm_packed_size floats) with every K block of x packed as the driver would pack it, and
 * sets x->packed and x->packed_ld to it. x is a stored matrix (not im2col); returns 0, -1 if not packable. */
int fclf_gemm_pack_whole(const fclf_gemm_kernel *k, float *dst, fclf_gemm_operand *x, int as_b, int64_t rows, int64_t cols);

/* C = alpha op(A) op(B) + beta C for stored operands, either of which may be packed whole, into a plain C:
 * fclf_sgemm's path (the short-M rows for M < 4), so the bits are fclf_sgemm's. */
void fclf_gemm_product(const fclf_gemm_kernel *k, int64_t M, int64_t N, int64_t K, float alpha,
                       const fclf_gemm_operand *as, const fclf_gemm_operand *bs, float beta, float *C, int64_t ldc);

/* The K block length the driver uses for a product of depth K with kernel k (equal blocks of at most KC):
 * what a kernel that must round as the GEMM does (conv/window_pool.c) sums per block. */
int64_t fclf_gemm_kstep(const fclf_gemm_kernel *k, int64_t K);

/* Between driver.c (the block loops on one thread) and split.c (the share among threads). */
/* Equal K blocks of at most kc_max (K = 400 with KC 320 runs as 2 x 200): depends on K and KC only. */
int64_t fclf_gemm_kstep_for(int64_t K, int64_t kc_max);
/* The K blocks [p0, p1) of the product on the calling thread; -1, nothing done, without packing buffers. */
int fclf_gemm_blocks(const fclf_gemm_kernel *v, fclf_gemm_blocking blk, int64_t M, int64_t N, int64_t K, int64_t kstep,
                     int64_t p0, int64_t p1, float alpha, const fclf_gemm_operand *as, const fclf_gemm_operand *bs,
                     float beta, const fclf_gemm_out *out);
/* The whole product on the calling thread (a slow exact fallback when out of memory). */
void fclf_gemm_serial(const fclf_gemm_kernel *v, fclf_gemm_blocking blk, int64_t M, int64_t N, int64_t K, float alpha,
                      const fclf_gemm_operand *as, const fclf_gemm_operand *bs, float beta, const fclf_gemm_out *out);
/* The whole product, shared among the threads allowed here (split.c); M, N, K > 0. */
void fclf_gemm_split(const fclf_gemm_kernel *v, fclf_gemm_blocking blk, int64_t M, int64_t N, int64_t K, float alpha,
                     const fclf_gemm_operand *as, const fclf_gemm_operand *bs, float beta, const fclf_gemm_out *out);

/* fclf_sgemm with a given table entry. */
void fclf_sgemm_with(const fclf_gemm_kernel *k, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                     const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

#endif
