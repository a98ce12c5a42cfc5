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

/* Columns [lo, hi) of op(B) and C (split_n) or rows [lo, hi) of op(A) and C, on the calling thread: an
 * offset into a stored matrix, or a new origin in the implicit or packed one. */
static void gemm_part(const fclf_gemm_kernel *v, fclf_gemm_blocking blk, int split_n, int64_t lo, int64_t hi, int64_t M,
                      int64_t N, int64_t K, float alpha, const fclf_gemm_operand *as, const fclf_gemm_operand *bs,
                      float beta, const fclf_gemm_out *out) {
    fclf_gemm_operand part = split_n ? *bs : *as;
    if (part.conv) part.origin += lo;
    else {
        if (part.packed) part.origin += lo;
        part.m = (split_n ? part.trans : !part.trans) ? part.m + lo * part.ld : part.m + lo;
    }
    fclf_gemm_out mine = *out;
    if (split_n) {
        if (mine.seg) mine.col0 += lo;
        else mine.C += lo;
        fclf_gemm_serial(v, blk, M, hi - lo, K, alpha, as, &part, beta, &mine);
    } else {
        mine.C += lo * mine.ldc;
        if (mine.bias) mine.bias += lo;
        fclf_gemm_serial(v, blk, hi - lo, N, K, alpha, &part, bs, beta, &mine);
    }
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
    if (hi > lo) gemm_part(j->v, j->blk, 1, lo, hi, j->M, j->N, j->K, j->alpha, j->as, j->bs, j->beta, j->out);
}

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
     * N = 121) split by rows packed all of B on both threads. Either split gives the same bits. */
    int64_t tiles_n = (N + v->nr - 1) / v->nr, tiles_m = (M + v->mr - 1) / v->mr;
    int split_n = tiles_n >= nt && (M <= N || tiles_m < nt);
#pragma omp parallel num_threads(nt)
    {
        int t = FCLF_THREAD_NUM(), T = FCLF_NUM_THREADS();
        int64_t tiles = split_n ? tiles_n : tiles_m, step = split_n ? v->nr : v->mr, extent = split_n ? N : M;
        int64_t lo = tiles * t / T * step, hi = fclf_min64(tiles * (t + 1) / T * step, extent);
        if (hi > lo) gemm_part(v, blk, split_n, lo, hi, M, N, K, alpha, as, bs, beta, out);
    }
}
