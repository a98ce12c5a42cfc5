/* scratch.c: the kernels' one per-thread memory mechanism: a few numbered, grow-only, 64-byte aligned
 * buffers per thread, hung on one pthread key so that they are freed when the thread exits (OpenMP workers
 * and the caller's own threads alike).
 *
 * Why reuse: a fresh allocation per prediction costs page faults on every call (fclf_predict spent most
 * of its 146 us p50 there), and the GEMM's packing buffers, grown on demand and then reused, let
 * steady-state training allocate nothing. Per thread: concurrent callers stay independent without locks.
 * Numbered: the GEMM's packing must not clobber a caller's fclf_thread_scratch buffer (or each other). */
#include "fclf_internal.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct {
    float *data[FCLF_SCRATCH_SLOTS];
    size_t capacity[FCLF_SCRATCH_SLOTS];
} scratch_slots;

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int key_ok;

static void release(void *p) {
    scratch_slots *s = p;
    for (int i = 0; i < FCLF_SCRATCH_SLOTS; i++) free(s->data[i]);
    free(s);
}

static void make_key(void) { key_ok = pthread_key_create(&key, release) == 0; }

float *fclf_scratch_slot(int slot, int64_t floats) {
    if (floats < 0 || slot < 0 || slot >= FCLF_SCRATCH_SLOTS) return NULL;
    pthread_once(&once, make_key);
    if (!key_ok) return NULL;
    scratch_slots *s = pthread_getspecific(key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if ((size_t)floats > s->capacity[slot]) {
        size_t bytes = ((size_t)floats * sizeof(float) + 63) & ~(size_t)63;
        float *p = aligned_alloc(64, bytes);
        if (!p) return NULL;
        free(s->data[slot]);
        s->data[slot] = p;
        s->capacity[slot] = bytes / sizeof(float);
    }
    return s->data[slot];
}

float *fclf_thread_scratch(int64_t floats) { return fclf_scratch_slot(FCLF_SCRATCH_USER, floats); }
