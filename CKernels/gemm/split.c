/* split.c: how the GEMM's product is shared among threads, each part computed by driver.c's loops on one
 * thread (fclf_gemm_serial): contiguous, tile-aligned column (or row) ranges, one per thread; K blocks per
 * thread for long-K products with a small C; and one image's column tiles between the calling thread and the
 * helper (assist.c). Each C element is computed by one thread with the same K blocking as the serial path (or
 * its blocks summed in the serial order), so the result is bitwise independent of the thread count. */
#include "gemm.h"

/* Long-K products with a small C, such as a convolution's weight gradient (288 x 64 from K = 121 x batch for
 * conv2): splitting C's rows or columns among threads makes every thread pack all of the other operand
 * ((T - 1) x K x min(M, N) floats packed again; at batch 128 on 16 threads, conv2's 15488 x 64 dz sixteen
 * times over), while giving each thread whole K blocks costs a buffer per block (K / kstep x M x N floats
 * written and read back). Split K when that is the cheaper: 2 max(M, N) < (T - 1) kstep, with at least one
 * block per thread, and the buffers under SPLIT_K_MAX_FLOATS. Plain outputs only (no bias, ReLU or
 * segments, which the models' long-K products never have). */
enum { SPLIT_K_MAX_FLOATS = 4 << 20 };
static int split_k_pays(int nt, int64_t M, int64_t N, int64_t K, int64_t kstep, const fclf_gemm_out *out) {
    const int64_t blocks = (K + kstep - 1) / kstep;
    return !out->seg && !out->bias && !out->relu && blocks >= nt && (double)blocks * M * N <= SPLIT_K_MAX_FLOATS &&
           2 * fclf_max64(M, N) < (int64_t)(nt - 1) * kstep;
}

/* Each thread computes its K blocks' products P_b = alpha op(A)_b op(B)_b (beta 0) into its own scratch;
 * then, after a barrier, each thread sums its rows of C over the blocks in K order with the micro-kernel's
 * store arithmetic: r = P_0 (+ beta C), then r = P_b + r (the kernel's r + 1 * c). That is the serial
 * path's sequence of roundings, so the bits are the same for any thread count. Returns -1, having written
 * nothing, when a thread's scratch cannot be had. */
enum { SPLIT_K_MAX_THREADS = 256 };
static int split_k(const fclf_gemm_kernel *v, fclf_gemm_blocking blk, int nt, int64_t M, int64_t N, int64_t K,
                   int64_t kstep, float alpha, const fclf_gemm_operand *as, const fclf_gemm_operand *bs, float beta,
                   const fclf_gemm_out *out) {
    const int64_t blocks = (K + kstep - 1) / kstep, MN = M * N;
    float *parts[SPLIT_K_MAX_THREADS];
    int failed = 0;
    nt = nt < SPLIT_K_MAX_THREADS ? nt : SPLIT_K_MAX_THREADS;
#pragma omp parallel num_threads(nt)
    {
        const int t = FCLF_THREAD_NUM(), T = FCLF_NUM_THREADS();
        const int64_t b0 = blocks * t / T, b1 = blocks * (t + 1) / T;
        float *mine = fclf_scratch_slot(FCLF_SCRATCH_SPLIT_K, fclf_max64(1, (b1 - b0) * MN));
        parts[t] = mine;
        for (int64_t b = b0; b < b1 && mine; b++) {
            const fclf_gemm_out part = {mine + (b - b0) * MN, N, 0, 0, 0, NULL, 0};
            if (fclf_gemm_blocks(v, blk, M, N, K, kstep, b * kstep, fclf_min64(K, (b + 1) * kstep), alpha, as, bs, 0.0f,
                            &part) != 0)
                mine = NULL;
        }
        if (fclf_team_all_ok(&failed, mine != NULL)) {
            const int64_t i0 = M * t / T, i1 = M * (t + 1) / T;
            for (int64_t i = i0; i < i1; i++) {
                float *c = out->C + i * out->ldc;
                for (int o = 0; o < T; o++) /* thread o holds blocks [blocks o / T, blocks (o + 1) / T) */
                    for (int64_t b = blocks * o / T, first = b; b < blocks * (o + 1) / T; b++) {
                        const float *p = parts[o] + (b - first) * MN + i * N;
                        if (b == 0)
                            for (int64_t j = 0; j < N; j++) c[j] = beta != 0.0f ? p[j] + beta * c[j] : p[j];
                        else
                            for (int64_t j = 0; j < N; j++) c[j] = p[j] + c[j];
                    }
            }
        }
    }
    return failed ? -1 : 0;
}

/* x's rows (of op(A)) or columns (of op(B), as_b) from lo on: an offset into a stored matrix, or a new origin
 * in the implicit or packed one. */
static fclf_gemm_operand operand_from(const fclf_gemm_operand *x, int as_b, int64_t lo) {
    fclf_gemm_operand part = *x;
    if (part.conv) part.origin += lo;
    else {
        if (part.packed) part.origin += lo;
        part.m = (as_b ? part.trans : !part.trans) ? part.m + lo * part.ld : part.m + lo;
    }
    return part;
}

/* Rows [i0, i1) and columns [j0, j1) of C, on the calling thread, by the serial path with the whole K. */
static void gemm_part(const fclf_gemm_kernel *v, fclf_gemm_blocking blk, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                      int64_t K, float alpha, const fclf_gemm_operand *as, const fclf_gemm_operand *bs, float beta,
                      const fclf_gemm_out *out) {
    const fclf_gemm_operand a = operand_from(as, 0, i0), b = operand_from(bs, 1, j0);
    fclf_gemm_out mine = *out;
    if (mine.seg) mine.col0 += j0;
    else mine.C += j0;
    mine.C += i0 * mine.ldc;
    if (mine.bias) mine.bias += i0;
    fclf_gemm_serial(v, blk, i1 - i0, j1 - j0, K, alpha, &a, &b, beta, &mine);
}

/* One image's products on the calling thread and, when it is free, the helper (assist.c): column tiles in up
 * to ASSIST_TASKS ranges. Only with A packed whole (the inference plan's weights), so no task packs what
 * another already did; each C element is computed by one task with the serial K blocking, so the bits are the
 * serial path's. The per-window convolutions split their own work (conv/window_pool.c); this covers the
 * convolutions without pooling, and every convolution of the scalar variant. */
enum { ASSIST_TASKS = 8 };
#define ASSIST_MIN_WORK 1.0e6
typedef struct {
    const fclf_gemm_kernel *v;
    fclf_gemm_blocking blk;
    int64_t tiles, tasks, M, N, K;
    float alpha, beta;
    const fclf_gemm_operand *as, *bs;
    const fclf_gemm_out *out;
} assist_job;

static void assist_task(void *ctx, int64_t t) {
    const assist_job *j = ctx;
    const int64_t lo = j->tiles * t / j->tasks * j->v->nr, hi = fclf_min64(j->tiles * (t + 1) / j->tasks * j->v->nr, j->N);
    if (hi > lo) gemm_part(j->v, j->blk, 0, j->M, lo, hi, j->K, j->alpha, j->as, j->bs, j->beta, j->out);
}

/* The largest A packed once for a team (16 MB: conv2's weight gradient as 64 x 288 up to batch 541). */
enum { SHARED_A_MAX_FLOATS = 4 << 20 };

void fclf_gemm_split(const fclf_gemm_kernel *v, fclf_gemm_blocking blk, int64_t M, int64_t N, int64_t K, float alpha,
                  const fclf_gemm_operand *as, const fclf_gemm_operand *bs, float beta, const fclf_gemm_out *out) {
    int nt = FCLF_MAX_THREADS();
    const double work = 2.0 * (double)M * (double)N * (double)K;
    if (nt <= 1 || work < FCLF_PAR_MIN_WORK) {
        const int64_t tiles_n = (N + v->nr - 1) / v->nr;
        if (fclf_assist_active() && as->packed && tiles_n >= 2 && work >= ASSIST_MIN_WORK) {
            const assist_job job = {v, blk, tiles_n, fclf_min64(tiles_n, ASSIST_TASKS), M, N, K, alpha, beta, as, bs, out};
            fclf_assisted_tasks(job.tasks, assist_task, (void *)&job);
            return;
        }
        fclf_gemm_serial(v, blk, M, N, K, alpha, as, bs, beta, out);
        return;
    }
    const int64_t kstep = fclf_gemm_kstep_for(K, blk.kc);
    if (split_k_pays(nt, M, N, K, kstep, out) && split_k(v, blk, nt, M, N, K, kstep, alpha, as, bs, beta, out) == 0)
        return;
    /* Split the operand whose packing would otherwise be repeated by every thread: splitting columns
     * repeats A's M x K packing, splitting rows repeats B's K x N. One image through conv2 (M = 64,
     * N = 121) split by rows packed all of B on both threads. */
    const int64_t tiles_n = (N + v->nr - 1) / v->nr, tiles_m = (M + v->mr - 1) / v->mr;
    const int split_n = tiles_n >= nt && (M <= N || tiles_m < nt);
    /* Where the column panels do not share evenly, the busiest thread sets the time: conv2's weight gradient
     * as 64 x 288 has 9 panels, 5 on one of 2 threads against 4.5 on average. Then A is packed once for the
     * team (each thread packing its share of the K blocks, where before every thread packed all of A), and
     * the threads take panels from a counter, whole, then the last tiles_n % T panels in T row parts each:
     * 4 panels and a half each when the cores run alike, more on the faster core when one is slowed (this
     * VM's cores have slow phases). 64 x 288 x 3872 on 2 threads, the two builds alternated for 4 minutes
     * (AMD Zen 4): 1.038x the static split's GFLOP/s (median ratio; quartiles 0.99 and 1.08). Any split gives
     * the same bits: each element is one part's, with the whole K in the serial K blocks. */
    const int64_t lda = (M + v->mr - 1) / v->mr * v->mr, blocks = (K + kstep - 1) / kstep;
    float *shared_a = NULL;
    if (split_n && tiles_m > 1 && (tiles_n + nt - 1) / nt * nt * 16 > tiles_n * 17 && !as->conv && !as->packed &&
        lda * K <= SHARED_A_MAX_FLOATS)
        shared_a = fclf_scratch_slot(FCLF_SCRATCH_SHARED_A, lda * K);
    const fclf_gemm_operand a_shared = {as->m, as->ld, as->trans, NULL, NULL, 0, shared_a, lda};
    int64_t next = 0;
#pragma omp parallel num_threads(nt)
    {
        const int64_t t = FCLF_THREAD_NUM(), T = FCLF_NUM_THREADS();
        if (shared_a) {
            for (int64_t b = blocks * t / T; b < blocks * (t + 1) / T; b++) /* fclf_gemm_pack_whole's layout, blk's K blocks */
                v->pack_a(shared_a + b * kstep * lda, as, 0, M, b * kstep, fclf_min64(kstep, K - b * kstep));
#pragma omp barrier
            /* Parts handed out by a counter: schedule(dynamic) calls __kmpc_dispatch_deinit, which Debian's
             * libomp (LLVM 14) lacks. */
            const int64_t tail = tiles_n % T, parts = fclf_min64(T, tiles_m), whole = tiles_n - tail;
            for (int64_t u; (u = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED)) < whole + tail * parts;) {
                const int64_t panel = u < whole ? u : whole + (u - whole) / parts, r = (u - whole) % parts;
                const int64_t i0 = u < whole ? 0 : tiles_m * r / parts * v->mr;
                const int64_t i1 = u < whole ? M : fclf_min64(tiles_m * (r + 1) / parts * v->mr, M);
                gemm_part(v, blk, i0, i1, panel * v->nr, fclf_min64((panel + 1) * v->nr, N), K, alpha, &a_shared, bs,
                          beta, out);
            }
        } else {
            const int64_t tiles = split_n ? tiles_n : tiles_m, step = split_n ? v->nr : v->mr, extent = split_n ? N : M;
            const int64_t lo = tiles * t / T * step, hi = fclf_min64(tiles * (t + 1) / T * step, extent);
            if (hi > lo && split_n) gemm_part(v, blk, 0, M, lo, hi, K, alpha, as, bs, beta, out);
            else if (hi > lo) gemm_part(v, blk, lo, hi, 0, N, K, alpha, as, bs, beta, out);
        }
    }
}
