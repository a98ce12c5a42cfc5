/* driver.c: the GEMM's loops over MC/KC/NC blocks on one thread (their sizes from blocking.c) and its entry
 * points; split.c shares a product among threads, and the ISA's table entry (gemm.h) supplies the micro-kernel
 * and the packers. */
#include "gemm.h"
#include "../conv/im2col.h"

enum { MR_MAX = FCLF_GEMM_MR_MAX, NR_MAX = FCLF_GEMM_NR_MAX };
/* Columns of B packed at a time when B is packed as it is used (fclf_gemm_blocks, M <= MC): what the L2 share
 * of A's block (MC x KC, blocking.c) leaves beside A's rows, between 4 panels and 256 columns. 4 panels (64
 * columns under AVX2) read a stored B in runs of 256 bytes per row, too short for the prefetchers: 256 columns
 * took the AVX2 variant from 76-78 to 81-84 GFLOP/s at 64 x 18432 x 288 on one Zen 4 core (with its packer's
 * row order). A 256 KB L2 (MC 96 under AVX2) keeps the 4 panels. */
enum { B_STREAM_COLUMNS_MAX = 256 };
static int64_t b_stream_columns(int64_t MC, int64_t mcap, int nr) {
    const int64_t fits = (MC - mcap) / nr * nr, most = B_STREAM_COLUMNS_MAX / nr * nr; /* whole panels */
    return fits < 4 * nr ? 4 * nr : fits > most ? most : fits;
}

/* One table, indexed by fclf_isa; the variants this build lacks (arm64) run the scalar one. */
static const fclf_gemm_kernel *const kernels[] = {
    [FCLF_ISA_SCALAR] = &fclf_gemm_scalar,
#if defined(__x86_64__)
    [FCLF_ISA_AVX2] = &fclf_gemm_avx2,
    [FCLF_ISA_AVX512F] = &fclf_gemm_avx512f,
#endif
};

const fclf_gemm_kernel *fclf_gemm_kernel_for(int isa) {
    if (isa < 0 || isa >= (int)(sizeof kernels / sizeof kernels[0]) || !kernels[isa]) return &fclf_gemm_scalar;
    return kernels[isa];
}

/* An operand's element (row r, column c of op(X)), for the out-of-memory fallback only. */
static float op_at(const fclf_gemm_operand *src, int is_a, int64_t r, int64_t c) {
    if (src->conv) {
        const int64_t k = is_a ? src->origin + r : r, j = is_a ? c : src->origin + c;
        return fclf_im2col_tap(src->conv, src->x, fclf_im2col_column_at(src->conv, j), fclf_im2col_row_at(src->conv, k));
    }
    return src->trans ? src->m[c * src->ld + r] : src->m[r * src->ld + c];
}

/* Equal K blocks (K = 400 with KC 320 runs as 2 x 200, not 320 + 80): a short last block pays a full load
 * and store of every C tile for little work. Depends on K and KC only, never on the thread count, M or N. */
int64_t fclf_gemm_kstep_for(int64_t K, int64_t kc_max) {
    int64_t kblocks = (K + kc_max - 1) / kc_max;
    return (K + kblocks - 1) / kblocks;
}

int64_t fclf_gemm_kstep(const fclf_gemm_kernel *k, int64_t K) { return fclf_gemm_kstep_for(K, fclf_gemm_blocking_of(k).kc); }

static inline float *out_at(const fclf_gemm_out *o, int64_t i, int64_t j) {
    if (!o->seg) return o->C + i * o->ldc + j;
    const int64_t J = o->col0 + j, g = J / o->seg;
    return o->C + g * o->seg_stride + i * o->ldc + (J - g * o->seg);
}

/* mb rows x run columns of a tile computed whole (row stride nr) into c, with the micro-kernel's epilogue
 * arithmetic (r = tile (+ beta c), + bias, ReLU; unfused, as -ffp-contract=off keeps it). A quarter of conv2's
 * forward tiles straddle two images and come here; compiled per ISA (FCLF_CLONES), so the columns go a vector
 * at a time rather than four floats at a time as the baseline build's loop did (perf: 3-4% of a b128 step). */
FCLF_CLONES static void store_part(float *restrict c, int64_t ldc, const float *restrict tile, int64_t nr, int64_t mb,
                                   int64_t run, float beta, const float *restrict bias, int relu) {
    for (int64_t i = 0; i < mb; i++, c += ldc, tile += nr) {
        const float add = bias ? bias[i] : 0.0f;
        for (int64_t j = 0; j < run; j++) {
            float r = tile[j];
            if (beta != 0.0f) {
                const float bc = beta * c[j];
                r = r + bc;
            }
            if (bias) r = r + add;
            if (relu) r = r > 0.0f ? r : 0.0f;
            c[j] = r;
        }
    }
}

/* One column panel of C (columns [j, j + nb) of the output, nb <= nr) for rows [ic, ic + mc) and one K block:
 * the micro-kernel per row tile, into C directly when the tile's columns are whole and, segmented, inside one
 * group of columns (a short last row tile by the variant's edge kernel, or its pair kernel with the tile before
 * it; without an edge kernel it goes the next way), else
 * computed whole and its valid part stored one run of columns per group (a quarter of conv2's tiles straddle
 * two images). c is the panel's address in row 0, so a row tile's is c + i * ldc, with no
 * division per tile. bp is a packed panel (ldb 0), or B's own rows read in place (ldb their stride, nb = nr). */
static void column_panel(const fclf_gemm_kernel *v, const float *ablock, const float *bp, int64_t ldb, int64_t kc,
                         int64_t ic, int64_t mc, int64_t j, int64_t nb, float alpha, float beta_k, int last,
                         const fclf_gemm_out *out, float *tile) {
    const int mr = v->mr, nr = v->nr;
    const int64_t in_group = out->seg ? out->seg - (out->col0 + j) % out->seg : nb;
    float *c = out_at(out, ic, j);
    for (int64_t ir = 0; ir < mc; ir += mr) {
        const int64_t mb = fclf_min64(mr, mc - ir);
        const float *bias = last && out->bias ? out->bias + ic + ir : NULL;
        const int relu = last && out->relu;
        const float *ap = ablock + ir * kc;
        if (nb == nr && nb <= in_group && (mb == mr || v->edge)) {
            const int64_t rest = mc - ir - mb; /* rows after this tile: a short last tile's, when under MR */
            if (v->pair && rest > 0 && 2 * rest <= mr) {
                if (ldb) v->in_place(mr, (int)rest, kc, ap, bp, ldb, c + ir * out->ldc, out->ldc, alpha, beta_k, bias, relu);
                else v->pair((int)rest, kc, ap, bp, c + ir * out->ldc, out->ldc, alpha, beta_k, bias, relu);
                break;
            }
            if (ldb) v->in_place((int)mb, 0, kc, ap, bp, ldb, c + ir * out->ldc, out->ldc, alpha, beta_k, bias, relu);
            else if (mb == mr) v->kernel(kc, ap, bp, c + ir * out->ldc, out->ldc, alpha, beta_k, bias, relu);
            else v->edge((int)mb, kc, ap, bp, c + ir * out->ldc, out->ldc, alpha, beta_k, bias, relu);
            continue;
        }
        if (ldb) v->in_place(mr, 0, kc, ap, bp, ldb, tile, nr, alpha, 0.0f, NULL, 0);
        else v->kernel(kc, ap, bp, tile, nr, alpha, 0.0f, NULL, 0);
        for (int64_t j0 = 0, run; j0 < nb; j0 += run) {
            run = j0 == 0 ? fclf_min64(nb, in_group) : fclf_min64(nb - j0, out->seg ? out->seg : nb);
            store_part(out_at(out, ic + ir, j + j0), out->ldc, tile + j0, nr, mb, run, beta_k, bias, relu);
        }
    }
}

/* B's row stride when this product reads it in place (a stored B not transposed, not packed whole, a short M and
 * K blocks of kstep rows within the span: blocking.c says why; a variant with the kernels), else 0. Rows off the
 * 64-byte lines get half the rows: each K step's loads then span one more line of B. */
static int64_t in_place_ldb(const fclf_gemm_kernel *v, int64_t M, int64_t kstep, const fclf_gemm_operand *bs) {
    const int stored_rows = !bs->conv && !bs->packed && fclf_gemm_pack_kind_of(bs, 1) == FCLF_PACK_CONTIGUOUS;
    if (!v->in_place || !stored_rows) return 0;
    const int on_lines = (uintptr_t)bs->m % 64 == 0 && bs->ld % 16 == 0;
    if (M > (on_lines ? fclf_gemm_in_place_rows() : fclf_gemm_in_place_rows() / 2)) return 0;
    return kstep * bs->ld * (int64_t)sizeof(float) <= fclf_gemm_in_place_span() ? bs->ld : 0;
}

/* Floats of A kept packed for all K blocks when M <= MC (below): 256 KB, within any L2 we know of. conv2's
 * forward product (64 x 288) is 18 K. */
enum { A_WHOLE_MAX_FLOATS = 64 << 10 };

/* The K blocks of [p0, p1) (p0 on a block boundary, blocks of kstep) of C = alpha op(A) op(B) + beta C, on
 * the calling thread: beta applies to the first of them, the bias and ReLU after block K's last. Returns -1,
 * having done nothing, when the packing buffers cannot be had. */
int fclf_gemm_blocks(const fclf_gemm_kernel *v, fclf_gemm_blocking blk, int64_t M, int64_t N, int64_t K, int64_t kstep,
                       int64_t p0, int64_t p1, float alpha, const fclf_gemm_operand *as, const fclf_gemm_operand *bs,
                       float beta, const fclf_gemm_out *out) {
    const int mr = v->mr, nr = v->nr;
    const int64_t MC = blk.mc, NC = blk.nc;
    const int64_t ncap = fclf_min64(NC, (N + nr - 1) / nr * nr), mcap = fclf_min64(MC, (M + mr - 1) / mr * mr);
    /* With one block of rows (M <= MC: every product the models run), B is packed a chunk at a time
     * (b_stream_columns) just before it is used, as OpenBLAS does, so that it is still in L2 for the
     * micro-kernel instead of coming back from L3 (conv2's b128 block, 288 x 6400 floats, is 7 MB); with
     * several row blocks the whole NC x KC block is packed first and reused by each. The packed layout is the
     * same either way, and so are the bits. A short M reads a stored B in place instead (in_place_ldb). */
    const int stream_b = !bs->packed && M <= MC;
    const int64_t stream_cols = b_stream_columns(MC, mcap, nr);
    /* Streamed B and several K blocks with A packed whole (conv2's forward, K = 288 in blocks of 144 under a
     * KC of 256): all K blocks of a chunk run before the next chunk, so each C tile is read back from L2
     * (64 x 256 floats: 64 KB) for its next block instead of from L3 after the whole row of C was written (64 x
     * 15488 floats at b128). Each C element still sees its K blocks in order: the same bits. */
    const int64_t kspan = p1 - p0;
    int a_whole = stream_b && kspan > kstep && (as->packed || mcap * kspan <= A_WHOLE_MAX_FLOATS);
    float *apack = as->packed ? NULL : fclf_scratch_slot(FCLF_SCRATCH_PACK_A, mcap * (a_whole ? kspan : kstep));
    if (!apack && !as->packed && a_whole) { /* A whole cannot be had: block by block, the same bits */
        a_whole = 0;
        apack = fclf_scratch_slot(FCLF_SCRATCH_PACK_A, mcap * kstep);
    }
    /* Read in place, B needs a buffer for its partial last panel only (N % NR columns, whose loads past N would
     * leave B's rows). M <= MC makes B streamed, so the whole-block packing below, which needs ncap x kstep,
     * never runs then. */
    const int64_t ldb = M <= MC ? in_place_ldb(v, M, kstep, bs) : 0, whole = ldb ? N / nr * nr : 0;
    float *bpack = bs->packed ? NULL : fclf_scratch_slot(FCLF_SCRATCH_PACK_B, (ldb ? nr : ncap) * kstep);
    if ((!apack && !as->packed) || (!bpack && !bs->packed)) return -1;
    float tile[MR_MAX * NR_MAX] __attribute__((aligned(64)));
    if (a_whole) {
        if (!as->packed)
            for (int64_t pc = p0; pc < p1; pc += kstep) v->pack_a(apack + (pc - p0) * mcap, as, 0, M, pc, fclf_min64(kstep, p1 - pc));
        const int64_t chunk = fclf_min64(stream_cols, ncap); /* what bpack holds */
        for (int64_t j0 = 0; j0 < N; j0 += chunk) {
            const int64_t nch = fclf_min64(chunk, N - j0);
            for (int64_t pc = p0; pc < p1; pc += kstep) {
                const int64_t kc = fclf_min64(kstep, p1 - pc);
                const float *ablock = as->packed ? as->packed + pc * as->packed_ld + as->origin * kc : apack + (pc - p0) * mcap;
                if (!ldb) v->pack_b(bpack, bs, pc, kc, j0, nch);
                else if (j0 + nch > whole) v->pack_b(bpack, bs, pc, kc, whole, N - whole);
                for (int64_t jr = 0; jr < nch; jr += nr) {
                    const int in_place = j0 + jr < whole;
                    const float *bp = !ldb ? bpack + jr * kc : in_place ? bs->m + pc * ldb + j0 + jr : bpack;
                    column_panel(v, ablock, bp, in_place ? ldb : 0, kc, 0, M, j0 + jr, fclf_min64(nr, nch - jr), alpha,
                                 pc == p0 ? beta : 1.0f, pc + kc >= K, out, tile);
                }
            }
        }
        return 0;
    }
    for (int64_t jc = 0; jc < N; jc += NC) {
        int64_t nc = fclf_min64(NC, N - jc);
        for (int64_t pc = p0; pc < p1; pc += kstep) {
            int64_t kc = fclf_min64(kstep, p1 - pc);
            float beta_k = pc == p0 ? beta : 1.0f;
            const int last = pc + kc >= K;
            const float *bblock = bpack;
            if (bs->packed) bblock = bs->packed + pc * bs->packed_ld + (bs->origin + jc) * kc;
            else if (!stream_b) v->pack_b(bpack, bs, pc, kc, jc, nc);
            for (int64_t ic = 0; ic < M; ic += MC) {
                int64_t mc = fclf_min64(MC, M - ic);
                const float *ablock = apack;
                if (as->packed) ablock = as->packed + pc * as->packed_ld + (as->origin + ic) * kc;
                else v->pack_a(apack, as, ic, mc, pc, kc);
                for (int64_t jr = 0; jr < nc; jr += nr) {
                    const int in_place = jc + jr < whole;
                    if (in_place) {
                        column_panel(v, ablock, bs->m + pc * ldb + jc + jr, ldb, kc, ic, mc, jc + jr, nr, alpha, beta_k,
                                     last, out, tile);
                        continue;
                    }
                    if (ldb) v->pack_b(bpack, bs, pc, kc, jc + jr, nc - jr); /* only the last panel is partial */
                    else if (stream_b && jr % stream_cols == 0)
                        v->pack_b(bpack + jr * kc, bs, pc, kc, jc + jr, fclf_min64(stream_cols, nc - jr));
                    column_panel(v, ablock, ldb ? bpack : bblock + jr * kc, 0, kc, ic, mc, jc + jr,
                                 fclf_min64(nr, nc - jr), alpha, beta_k, last, out, tile);
                }
            }
        }
    }
    return 0;
}

void fclf_gemm_serial(const fclf_gemm_kernel *v, fclf_gemm_blocking blk, int64_t M, int64_t N, int64_t K, float alpha,
                        const fclf_gemm_operand *as, const fclf_gemm_operand *bs, float beta, const fclf_gemm_out *out) {
    if (fclf_gemm_blocks(v, blk, M, N, K, fclf_gemm_kstep_for(K, blk.kc), 0, K, alpha, as, bs, beta, out) == 0) return;
    /* out of memory: still give the right answer, slowly */
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double acc = 0.0;
            for (int64_t p = 0; p < K; p++) acc += (double)op_at(as, 1, i, p) * op_at(bs, 0, p, j);
            float *c = out_at(out, i, j);
            float r = (float)(alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * *c));
            if (out->bias) r = r + out->bias[i];
            if (out->relu) r = r > 0.0f ? r : 0.0f;
            *c = r;
        }
}

/* Rows of C for a short op(A) (M < 4, e.g. one image through a dense layer), where an 8-row tile would
 * be mostly padding and packing W would cost more than the product (dense1's 1600 x 128 weights:
 * 820 KB per call). Per element the arithmetic is the micro-kernel's: the same K blocks, products
 * accumulated in p order with FMA (AVX2/AVX-512 variants) or unfused (portable variant), then
 * alpha * acc (+ beta * c). */
FCLF_CLONES static void gemm_rows(int fused, int ta, int64_t M, int64_t N, int64_t K, int64_t kstep, float alpha,
                                  const float *restrict A, int64_t lda, const float *restrict B, int64_t ldb,
                                  float beta, float *restrict C, int64_t ldc, float *restrict acc) {
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        for (int64_t pc = 0; pc < K; pc += kstep) {
            int64_t kc = fclf_min64(kstep, K - pc);
            float beta_k = pc == 0 ? beta : 1.0f;
            for (int64_t j = 0; j < N; j++) acc[j] = 0.0f;
            for (int64_t p = pc; p < pc + kc; p++) {
                const float a = ta ? A[p * lda + i] : A[i * lda + p], *b = B + p * ldb;
                if (fused)
                    for (int64_t j = 0; j < N; j++) acc[j] = __builtin_fmaf(a, b[j], acc[j]);
                else
                    for (int64_t j = 0; j < N; j++) acc[j] = acc[j] + a * b[j];
            }
            for (int64_t j = 0; j < N; j++) {
                float r = alpha * acc[j];
                c[j] = beta_k == 0.0f ? r : r + beta_k * c[j];
            }
        }
    }
}

static void scale_c(int64_t M, int64_t N, float beta, float *C, int64_t ldc) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

int64_t fclf_gemm_packed_size(const fclf_gemm_kernel *v, int as_b, int64_t rows, int64_t cols) {
    const fclf_gemm_blocking blk = fclf_gemm_blocking_of(v);
    if (rows <= 0 || cols <= 0) return 0;
    if (as_b) return cols > blk.nc ? 0 : rows * ((cols + v->nr - 1) / v->nr * v->nr);
    return cols * ((rows + v->mr - 1) / v->mr * v->mr);
}

/* Every K block packed with the driver's own packers, at the offsets fclf_gemm_serial reads: block pc at
 * pc * ld (the blocks before it are kstep long), A's row blocks of MC (whole tiles) one after another. */
int fclf_gemm_pack_whole(const fclf_gemm_kernel *v, float *dst, fclf_gemm_operand *x, int as_b, int64_t rows, int64_t cols) {
    if (x->conv || fclf_gemm_packed_size(v, as_b, rows, cols) == 0) return -1;
    const fclf_gemm_blocking blk = fclf_gemm_blocking_of(v);
    const int64_t K = as_b ? rows : cols, kstep = fclf_gemm_kstep_for(K, blk.kc);
    x->packed = NULL;
    x->origin = 0;
    if (as_b) {
        const int64_t ld = (cols + v->nr - 1) / v->nr * v->nr;
        for (int64_t pc = 0; pc < K; pc += kstep) v->pack_b(dst + pc * ld, x, pc, fclf_min64(kstep, K - pc), 0, cols);
        x->packed_ld = ld;
    } else {
        const int64_t ld = (rows + v->mr - 1) / v->mr * v->mr;
        for (int64_t pc = 0; pc < K; pc += kstep) {
            const int64_t kc = fclf_min64(kstep, K - pc);
            for (int64_t ic = 0; ic < rows; ic += blk.mc) v->pack_a(dst + pc * ld + ic * kc, x, ic, fclf_min64(blk.mc, rows - ic), pc, kc);
        }
        x->packed_ld = ld;
    }
    x->packed = dst;
    return 0;
}

void fclf_gemm_drive(const fclf_gemm_kernel *v, int64_t M, int64_t N, int64_t K, float alpha,
                     const fclf_gemm_operand *as, const fclf_gemm_operand *bs, float beta, const fclf_gemm_out *out) {
    fclf_gemm_split(v, fclf_gemm_blocking_of(v), M, N, K, alpha, as, bs, beta, out);
}

/* C = alpha op(A) op(B) + beta C into a plain C, for stored operands that may be packed whole: the empty
 * cases, the short-M row path (which reads the plain matrices, as every caller keeps them), else the driver. */
static void product(const fclf_gemm_kernel *v, fclf_gemm_blocking blk, int64_t M, int64_t N, int64_t K, float alpha,
                    const fclf_gemm_operand *as, const fclf_gemm_operand *bs, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    if (M < 4 && !bs->trans && !as->conv && !bs->conv && v->rows) {
        v->rows(as->trans, M, N, K, fclf_gemm_kstep_for(K, blk.kc), alpha, as->m, as->ld, bs->m, bs->ld, beta, C, ldc);
        return;
    }
    if (M < 4 && !bs->trans && !as->conv && !bs->conv) {
        float *acc = fclf_scratch_slot(FCLF_SCRATCH_PACK_B, N);
        if (acc) {
            gemm_rows(v->fused, as->trans, M, N, K, fclf_gemm_kstep_for(K, blk.kc), alpha, as->m, as->ld, bs->m, bs->ld, beta, C,
                      ldc, acc);
            return;
        }
    }
    const fclf_gemm_out out = {C, ldc, 0, 0, 0, NULL, 0};
    fclf_gemm_split(v, blk, M, N, K, alpha, as, bs, beta, &out);
}

static void sgemm_blocked(const fclf_gemm_kernel *v, fclf_gemm_blocking blk, int ta, int tb, int64_t M, int64_t N,
                          int64_t K, float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                          float *C, int64_t ldc) {
    const fclf_gemm_operand as = {A, lda, ta, NULL, NULL, 0, NULL, 0}, bs = {B, ldb, tb, NULL, NULL, 0, NULL, 0};
    product(v, blk, M, N, K, alpha, &as, &bs, beta, C, ldc);
}

void fclf_sgemm_with(const fclf_gemm_kernel *v, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                     const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    sgemm_blocked(v, fclf_gemm_blocking_of(v), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void fclf_sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    /* The active variant is supported by construction: no probe per call. */
    fclf_sgemm_with(fclf_gemm_kernel_for(fclf_isa_active()), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void fclf_sgemm_isa(int isa, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                    int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    fclf_sgemm_with(fclf_gemm_kernel_for(fclf_isa_usable(isa)), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

int fclf_sgemm_blocked(int isa, fclf_gemm_blocking b, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (!fclf_gemm_blocking_valid(b)) return -1;
    const fclf_gemm_kernel *v = fclf_gemm_kernel_for(fclf_isa_usable(isa));
    sgemm_blocked(v, fclf_gemm_blocking_fit(b, v), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return 0;
}

void fclf_gemm_product(const fclf_gemm_kernel *v, int64_t M, int64_t N, int64_t K, float alpha,
                       const fclf_gemm_operand *as, const fclf_gemm_operand *bs, float beta, float *C, int64_t ldc) {
    product(v, fclf_gemm_blocking_of(v), M, N, K, alpha, as, bs, beta, C, ldc);
}
