/* assist.c: one image's kernels on the calling thread, with a second core joining in when it is free.
 *
 * A single image is ~4.5 MFLOP for the seed CNN (46 us on one AMD Zen 4 core, at that core's FMA peak), too
 * little for an OpenMP team: a parallel region costs 0.4 us while its workers spin, but once they sleep (libomp's
 * blocktime) every region waits for them to wake, 74 us p50 and 234 us p99 measured here, and a static split
 * waits for a busy or slow second core whatever it costs (110 us per image on this VM whenever its other core
 * was busy). Here the caller never waits for work nobody has taken: it publishes the tasks, takes them from the
 * front, and a helper thread, if it is awake, takes them from the back. The caller waits only for a task the
 * helper has already begun. A helper that sleeps, is descheduled or was never started costs the caller nothing
 * but the tasks it then runs itself, so a call is never much slower than one thread (the claim is an atomic
 * per task) and up to twice as fast when the other core is free.
 *
 * Which thread runs a task never changes what it computes, so results are those of one thread, bit for bit.
 * Taking from the two ends gives the helper the same tasks call after call: their weights stay in its core's
 * caches. One job at a time: a caller that finds the slot taken runs its tasks alone. */
#include "fclf_internal.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* How long the helper spins for the next job before it sleeps: a caller classifying images back to back, or
 * a camera's frames at 100 Hz and faster, finds it awake; a till idle for longer gets its own core back.
 * (libomp's workers spin 200 ms after each region.) The whole SPIN_NS only while the last pause between two
 * calls (fclf_assist_end to the next fclf_assist_begin; the pauses between one call's jobs do not count) was
 * within it: for calls further apart (a camera's frames at 30 Hz) the helper fell asleep before the next one
 * anyway, so the spin bought no help and cost a till 20 ms of a core per frame. Otherwise SHORT_NS, which
 * spans the pauses between one image's jobs. */
enum { SPIN_NS = 20 * 1000 * 1000, SHORT_NS = 1000 * 1000 };

static struct {
    int busy;                     /* a caller owns the job below (0 -> 1 by compare-and-swap) */
    int published;                /* the job is open to the helper */
    int inside;                   /* the helper is reading the job: the caller may not replace it */
    int sleeping;                 /* the helper waits on wake */
    uint32_t wake;                /* futex word: bumped to wake a sleeping helper */
    int started;                  /* 0 not yet, 1 running, -1 could not be started (run alone) */
    void (*fn)(void *ctx, int64_t task);
    void *ctx;
    uint64_t ends;                /* the tasks not yet taken, [lo, hi): lo in the low 32 bits, hi in the high */
    int64_t done;                 /* tasks finished */
    int64_t helped;               /* tasks the helper has run since the process started (tests, benchmarks) */
    int64_t call_end;             /* when the last call ended (fclf_assist_end); 0 before the first */
    int64_t call_pause;           /* ns between the last call's end and the next one's start; INT64_MAX before */
} g = {.call_pause = INT64_MAX};
static pthread_once_t start_once = PTHREAD_ONCE_INIT;

static int in_parallel(void) {
#ifdef _OPENMP
    return omp_in_parallel();
#else
    return 0;
#endif
}

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Takes the next task from the front (caller) or the back (helper); -1 when none is left. */
static int64_t take(int back) {
    uint64_t e = __atomic_load_n(&g.ends, __ATOMIC_RELAXED);
    for (;;) {
        const uint32_t lo = (uint32_t)e, hi = (uint32_t)(e >> 32);
        if (lo >= hi) return -1;
        const uint64_t want = back ? ((uint64_t)(hi - 1) << 32 | lo) : ((uint64_t)hi << 32 | (lo + 1));
        if (__atomic_compare_exchange_n(&g.ends, &e, want, 1, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            return back ? (int64_t)hi - 1 : (int64_t)lo;
    }
}

static void *helper_main(void *unused) {
    (void)unused;
    fclf_serial_begin(); /* a task's kernels start no OpenMP team from here */
    for (;;) {
        const int64_t idle_since = now_ns();
        const int64_t window = __atomic_load_n(&g.call_pause, __ATOMIC_RELAXED) <= SPIN_NS ? SPIN_NS : SHORT_NS;
        int64_t polls = 0;
        for (;;) {
            if (__atomic_load_n(&g.published, __ATOMIC_ACQUIRE)) {
                /* inside before the second look: the caller, having closed the job, waits for inside to drop */
                __atomic_store_n(&g.inside, 1, __ATOMIC_SEQ_CST);
                if (__atomic_load_n(&g.published, __ATOMIC_SEQ_CST)) {
                    for (int64_t t; (t = take(1)) >= 0;) {
                        g.fn(g.ctx, t);
                        __atomic_fetch_add(&g.helped, 1, __ATOMIC_RELAXED);
                        __atomic_fetch_add(&g.done, 1, __ATOMIC_RELEASE);
                    }
                }
                __atomic_store_n(&g.inside, 0, __ATOMIC_RELEASE);
                break; /* the spin window starts again after each job */
            }
            CPU_RELAX();
            if ((++polls & 1023) == 0 && now_ns() - idle_since > window) {
                const uint32_t seen = __atomic_load_n(&g.wake, __ATOMIC_ACQUIRE);
                __atomic_store_n(&g.sleeping, 1, __ATOMIC_SEQ_CST);
                if (!__atomic_load_n(&g.published, __ATOMIC_SEQ_CST))
                    syscall(SYS_futex, &g.wake, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
                __atomic_store_n(&g.sleeping, 0, __ATOMIC_RELAXED);
                break;
            }
        }
    }
    return NULL;
}

/* A child of fork() has no helper thread, and the job slot may be caught mid-call: its callers run alone. */
static void after_fork_in_child(void) {
    g.busy = g.published = g.inside = g.sleeping = 0;
    g.started = -1;
}

/* One turn of a caller's wait for the helper: after a while it yields the core, in case the helper shares it
 * (more threads allowed than CPUs) or was descheduled mid-task. */
static void wait_turn(int *spins) {
    CPU_RELAX();
    if (++*spins > 4000) sched_yield();
}

static void start_helper(void) {
    pthread_atfork(NULL, NULL, after_fork_in_child);
    pthread_attr_t attr;
    pthread_t thread;
    int ok = pthread_attr_init(&attr) == 0;
    ok = ok && pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0;
    ok = ok && pthread_create(&thread, &attr, helper_main, NULL) == 0;
    pthread_attr_destroy(&attr);
    __atomic_store_n(&g.started, ok ? 1 : -1, __ATOMIC_RELEASE);
}

void fclf_assisted_tasks(int64_t tasks, void (*fn)(void *ctx, int64_t task), void *ctx) {
    int expected = 0;
    /* not inside an OpenMP region (a team's worker, a caller's own region): its cores are taken */
    const int alone = tasks < 2 || tasks > INT32_MAX || in_parallel() || fclf_get_max_threads() < 2 ||
                      !__atomic_compare_exchange_n(&g.busy, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
    if (alone) {
        for (int64_t t = 0; t < tasks; t++) fn(ctx, t);
        return;
    }
    pthread_once(&start_once, start_helper);
    if (__atomic_load_n(&g.started, __ATOMIC_ACQUIRE) != 1) { /* no helper: could not start, or a fork's child */
        for (int64_t t = 0; t < tasks; t++) fn(ctx, t);
        __atomic_store_n(&g.busy, 0, __ATOMIC_RELEASE);
        return;
    }
    g.fn = fn;
    g.ctx = ctx;
    __atomic_store_n(&g.done, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&g.ends, (uint64_t)tasks << 32, __ATOMIC_RELAXED);
    __atomic_store_n(&g.published, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&g.sleeping, __ATOMIC_SEQ_CST)) {
        /* it joins the next call's tasks, not this one's: waking takes longer than one image */
        __atomic_fetch_add(&g.wake, 1, __ATOMIC_RELEASE);
        syscall(SYS_futex, &g.wake, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
    int64_t mine = 0;
    for (int64_t t; (t = take(0)) >= 0; mine++) fn(ctx, t);
    /* every task is taken: wait for the helper's last one, then close the job */
    int spins = 0;
    while (__atomic_load_n(&g.done, __ATOMIC_ACQUIRE) + mine < tasks) wait_turn(&spins);
    __atomic_store_n(&g.published, 0, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&g.inside, __ATOMIC_SEQ_CST)) wait_turn(&spins);
    __atomic_store_n(&g.busy, 0, __ATOMIC_RELEASE);
}

/* Per thread, as fclf_serial_begin: one caller's choice never reaches another thread's kernels. */
static _Thread_local int assist_depth;
/* The outermost begin and end mark a call's bounds for the helper's spin (SPIN_NS). Several threads' calls
 * mix their times here, which at worst costs one spin too many or too few. */
void fclf_assist_begin(void) {
    if (assist_depth++ == 0) {
        const int64_t end = __atomic_load_n(&g.call_end, __ATOMIC_RELAXED);
        __atomic_store_n(&g.call_pause, end ? now_ns() - end : INT64_MAX, __ATOMIC_RELAXED);
    }
}
void fclf_assist_end(void) {
    if (--assist_depth == 0) __atomic_store_n(&g.call_end, now_ns(), __ATOMIC_RELAXED);
}
int fclf_assist_active(void) { return assist_depth > 0; }

int64_t fclf_assist_helped(void) { return __atomic_load_n(&g.helped, __ATOMIC_RELAXED); }
