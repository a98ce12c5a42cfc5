/* blocking.c: the GEMM's cache blocking (MC, KC, NC), derived once from this machine's caches with an
 * analytic model in the manner of BLIS's (Low, Igual, Smith, Quintana-Orti, "Analytical modeling is enough
 * for high-performance BLIS", ACM TOMS 43(2), 2016), instead of constants that fit one CPU.
 *
 * The loop nest in driver.c: for jc (NC columns: B~ = op(B)[pc.., jc..] packed, kc x nc, lives in L3)
 *   for pc (KC) / for ic (MC rows: A~ packed, mc x kc, lives in L2) / for jr (one NR-wide B micro-panel,
 *   kc x NR, stays in L1 while) / for ir: MR-wide A micro-panels stream from L2 through the micro-kernel.
 *   With one block of rows (M <= MC) B is packed a chunk at a time as it is used (4 panels to 256 columns:
 *   what A's MC x KC share of L2 leaves beside A's rows), and when A is then small enough to keep packed for
 *   every K block, the nest is: for each chunk / for pc / for jr / for ir, so that C's tiles stay in L2
 *   between K blocks. The models' products are all of that kind. Up to 64 rows, a stored B whose K block
 *   lies within half of L2 is read in place by the micro-kernel, only its partial last panel packed (below).
 *
 * - KC from L1: the B micro-panel (KC x NR), reused by every A micro-panel of the block, fills the L1 data
 *   cache: KC = L1 / (NR * 4 bytes), a multiple of 16 (32 KB and NR = 32: KC = 256). The A micro-panels
 *   stream from L2 beside it: a k step reads (MR + NR) * 4 = 160 bytes for MR * NR = 256 multiply-adds, 20
 *   bytes per cycle at two 16-lane FMAs per cycle, well inside what L2 delivers. BLIS's stricter rule
 *   (Low et al. 2016: the B panel gets floor((W - 1) / (1 + MR / NR)) of L1's W ways, 5 of 8 here: KC = 160)
 *   measured slower here (fclf-bench blocking, Xeon, 2 threads, every KC in one run: squares 1024 and 2048
 *   92 and 97 GFLOP/s at KC 160 against 101 and 111 at 256; conv2's weight gradient 58 against 66), since
 *   C is then loaded and stored once more per K block; 256 and 320 measured alike.
 * - MC from L2: A~ may take the ways of L2 left after one for the B micro-panel and one for C's lines and
 *   conflicts (W - 2), rounded down to a multiple of MR.
 * - NC from L3: B~ may take half of this core's share of L3 (the share: L3 over the logical CPUs that share
 *   it), rounded down to a multiple of NR, at most FCLF_GEMM_NC_MAX.
 *
 * The FMA throughput enters only as the bound above (L2 must feed the stream at the FMA rate), not as a
 * measured input: KC decides the bits (each C element is summed in K blocks), and bits must not depend on
 * a timing; the micro-tile is one per ISA (gemm.h).
 *
 * FCLF_GEMM_BLOCKING=mc,kc,nc overrides the derived values (experiments: one machine shows another's
 * values), and FCLF_GEMM_IN_PLACE_ROWS=n the in-place bound below; an invalid value is reported once on stderr
 * and ignored. */
#include "gemm.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

/* When nothing can be read: a common x86 server core (32 KB 8-way L1d, 1 MB 16-way L2, 1.375 MB of L3). */
static const fclf_cache_info fallback = {32768, 8, 1048576, 16, 1441792, 1, "defaults"};

#if defined(__x86_64__)
/* Deterministic cache parameters: Intel's leaf 4 and AMD's 0x8000001D have the same layout. */
static int cpuid_caches(fclf_cache_info *out) {
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
    const int intel = b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e; /* GenuineIntel */
    const int amd = b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163;   /* AuthenticAMD */
    unsigned leaf = 0;
    if (intel && a >= 4) leaf = 4;
    if (amd) {
        /* 0x8000001D exists when the topology extensions bit (0x80000001 ecx bit 22) is set. */
        if (__get_cpuid(0x80000001, &a, &b, &c, &d) && (c >> 22 & 1)) leaf = 0x8000001D;
    }
    if (!leaf) return 0;
    fclf_cache_info r = {0};
    for (unsigned i = 0; i < 16; i++) {
        __cpuid_count(leaf, i, a, b, c, d);
        const unsigned type = a & 31, level = a >> 5 & 7;
        if (type == 0) break;
        if (type == 2) continue; /* instruction cache */
        const int64_t ways = (b >> 22) + 1, parts = (b >> 12 & 1023) + 1, line = (b & 4095) + 1, sets = (int64_t)c + 1;
        const int64_t size = ways * parts * line * sets, sharing = (a >> 14 & 4095) + 1;
        if (level == 1) { r.l1d_bytes = size; r.l1d_ways = ways; }
        else if (level == 2) { r.l2_bytes = size; r.l2_ways = ways; }
        else if (level == 3) { r.l3_bytes = size; r.l3_sharing = sharing; }
    }
    if (r.l1d_bytes <= 0 || r.l2_bytes <= 0) return 0;
    r.origin = "cpuid";
    *out = r;
    return 1;
}
#endif

/* The first line of dir/name into text (empty when unreadable). */
static void read_line(const char *dir, const char *name, char *text, int size) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    text[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (!fgets(text, size, f)) text[0] = 0;
    fclose(f);
}

/* A number with an optional K or M suffix (sysfs's sizes); -1 when unreadable. */
static int64_t read_number(const char *dir, const char *name) {
    char text[64], *end;
    read_line(dir, name, text, sizeof text);
    if (!text[0]) return -1;
    int64_t v = strtoll(text, &end, 10);
    if (*end == 'K') v *= 1024;
    else if (*end == 'M') v *= 1024 * 1024;
    return v;
}

/* Linux's view, for CPUs without the leaves above (arm64, older AMD). */
static int sysfs_caches(fclf_cache_info *out) {
    fclf_cache_info r = {0};
    for (int i = 0; i < 8; i++) {
        char dir[96], type[32];
        snprintf(dir, sizeof dir, "/sys/devices/system/cpu/cpu0/cache/index%d", i);
        const int64_t level = read_number(dir, "level");
        if (level < 0) break;
        read_line(dir, "type", type, sizeof type);
        if (strncmp(type, "Instruction", 11) == 0) continue;
        const int64_t size = read_number(dir, "size"), ways = read_number(dir, "ways_of_associativity");
        if (level == 1) { r.l1d_bytes = size; r.l1d_ways = ways; }
        else if (level == 2) { r.l2_bytes = size; r.l2_ways = ways; }
        else if (level == 3) { r.l3_bytes = size; r.l3_sharing = 1; }
    }
    if (r.l1d_bytes <= 0 || r.l2_bytes <= 0) return 0;
    r.origin = "sysfs";
    *out = r;
    return 1;
}

fclf_cache_info fclf_cache_probe(void) {
    fclf_cache_info r = fallback;
#if defined(__x86_64__)
    if (cpuid_caches(&r)) return r;
#endif
    if (sysfs_caches(&r)) return r;
    return fallback;
}

static int64_t round_down(int64_t x, int64_t m) { return x / m * m; }
static int64_t clamp64(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : x > hi ? hi : x; }

fclf_gemm_blocking fclf_gemm_blocking_for(const fclf_cache_info *c, int mr, int nr) {
    fclf_gemm_blocking b;
    const int64_t l1 = c->l1d_bytes > 0 ? c->l1d_bytes : fallback.l1d_bytes;
    const int64_t l2 = c->l2_bytes > 0 ? c->l2_bytes : fallback.l2_bytes;
    const int64_t w2 = c->l2_ways > 1 ? c->l2_ways : fallback.l2_ways;
    const int64_t kc = l1 / (nr * (int64_t)sizeof(float));
    b.kc = clamp64(round_down(kc, 16), 16, FCLF_GEMM_KC_MAX);
    /* A~ (mc x kc) is L2's resident; of its W ways one holds the B micro-panel (kc x nr: 256 x 32 floats
     * is 32 KB, half of a 1 MB 16-way L2's 64 KB way) and one the C tiles and the stream's conflicts. */
    const int64_t a_ways = w2 - 2 >= 1 ? w2 - 2 : 1;
    const int64_t mc = a_ways * (l2 / w2) / (b.kc * (int64_t)sizeof(float));
    b.mc = clamp64(round_down(mc, mr), mr, round_down(FCLF_GEMM_MC_MAX, mr));
    const int64_t share = c->l3_bytes > 0 ? c->l3_bytes / (c->l3_sharing > 0 ? c->l3_sharing : 1) : l2;
    const int64_t nc = share / 2 / (b.kc * (int64_t)sizeof(float));
    b.nc = clamp64(round_down(nc, nr), nr, round_down(FCLF_GEMM_NC_MAX, nr));
    return b;
}

/* The machine's caches, the overrides, and per-ISA blocking, decided once (decide, below). */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static fclf_cache_info caches;
static fclf_gemm_blocking forced; /* all zero: none */
static const char *forced_origin;
static fclf_gemm_blocking by_isa[FCLF_ISA_COUNT];

int fclf_gemm_blocking_valid(fclf_gemm_blocking b) {
    return b.mc >= 1 && b.mc <= FCLF_GEMM_MC_MAX && b.kc >= 1 && b.kc <= FCLF_GEMM_KC_MAX && b.nc >= 1 &&
           b.nc <= FCLF_GEMM_NC_MAX;
}

static int parse_override(const char *s, fclf_gemm_blocking *b) {
    long long mc, kc, nc;
    int used = 0;
    if (sscanf(s, "%lld,%lld,%lld%n", &mc, &kc, &nc, &used) != 3 || s[used] != 0) return 0;
    *b = (fclf_gemm_blocking){mc, kc, nc};
    return fclf_gemm_blocking_valid(*b);
}

/* Rows of C up to which a stored B (not transposed) is read in place (driver.c): each K block's panel of B is
 * then read by so few row tiles (8 under AVX-512, 11 under AVX2) that packing it, a read and a write of the whole
 * panel, costs more than the tiles save by reading it packed. On one Zen 4 core at N = 128, K = 3,072 (dense1's
 * in the fast network; `fclf-bench gemm --m-sweep`, docs/benchmarks.md), in place against packed: AVX-512
 * 108-111 against 68-103 GFLOP/s for M = 8-64, level from 96 on; AVX2 95-104 against 75-96 for M = 16-64, level
 * from 96 on. B's rows off the 64-byte lines (a B not 64-byte aligned, or a row stride not a multiple of 16
 * floats) get half the rows (driver.c): with the table's unaligned arrays AVX2 gained up to M = 32 and lost 3% at
 * conv2's 64 x 121 x 288. FCLF_GEMM_IN_PLACE_ROWS=n overrides it (0: always packed; n / 2 then for rows off the
 * lines), to show the effect on one machine;
 * above MC it reads in place up to MC rows, since more rows take several row blocks that reuse a packed B.
 *
 * And only while a K block of B's rows spans at most half of L2 (fclf_gemm_in_place_span): a contiguous region
 * that size gives no L2 set more than half its ways, so the panel the tiles read again stays in L2. B's rows far
 * apart (conv2's 288 x 18,432 forward product at b128: 72 KB a row, a multiple of 4 KB) all fall in a few sets,
 * and the re-reads then came from L3: 54-65 against 80-84 GFLOP/s packed, on one core under either variant. */
enum { IN_PLACE_ROWS_DEFAULT = 64, IN_PLACE_ROWS_MAX = 1 << 20 };
static int64_t in_place_rows = IN_PLACE_ROWS_DEFAULT;

static void decide(void) {
    caches = fclf_cache_probe();
    const char *rows = getenv("FCLF_GEMM_IN_PLACE_ROWS");
    if (rows && *rows) {
        long long n;
        int used = 0;
        if (sscanf(rows, "%lld%n", &n, &used) == 1 && rows[used] == 0 && n >= 0 && n <= IN_PLACE_ROWS_MAX) in_place_rows = n;
        else
            fprintf(stderr, "fashionclf: FCLF_GEMM_IN_PLACE_ROWS=\"%s\" ignored: expected a row count from 0 (B always packed) to %d\n",
                    rows, IN_PLACE_ROWS_MAX);
    }
    const char *env = getenv("FCLF_GEMM_BLOCKING");
    if (env && *env) {
        if (parse_override(env, &forced)) forced_origin = "FCLF_GEMM_BLOCKING";
        else
            fprintf(stderr,
                    "fashionclf: FCLF_GEMM_BLOCKING=\"%s\" ignored: expected mc,kc,nc with 1 <= mc <= %d, "
                    "1 <= kc <= %d, 1 <= nc <= %d (e.g. 96,320,2048)\n",
                    env, FCLF_GEMM_MC_MAX, FCLF_GEMM_KC_MAX, FCLF_GEMM_NC_MAX);
    }
    for (int isa = 0; isa < FCLF_ISA_COUNT; isa++) {
        const fclf_gemm_kernel *k = fclf_gemm_kernel_for(isa);
        by_isa[isa] = fclf_gemm_blocking_for(&caches, k->mr, k->nr);
    }
}

/* MC and NC to whole tiles of this kernel (the driver's panels are NR wide, its row blocks MR tall). */
fclf_gemm_blocking fclf_gemm_blocking_fit(fclf_gemm_blocking b, const fclf_gemm_kernel *k) {
    b.mc = b.mc < k->mr ? k->mr : round_down(b.mc, k->mr);
    b.nc = b.nc < k->nr ? k->nr : round_down(b.nc, k->nr);
    return b;
}

fclf_gemm_blocking fclf_gemm_blocking_of(const fclf_gemm_kernel *k) {
    pthread_once(&once, decide);
    if (forced_origin) return fclf_gemm_blocking_fit(forced, k);
    return by_isa[k->isa >= 0 && k->isa < FCLF_ISA_COUNT ? k->isa : FCLF_ISA_SCALAR];
}

fclf_gemm_blocking fclf_gemm_blocking_active(fclf_cache_info *seen, const char **origin) {
    pthread_once(&once, decide);
    if (seen) *seen = caches;
    if (origin) *origin = forced_origin ? forced_origin : caches.origin;
    return fclf_gemm_blocking_of(fclf_gemm_kernel_for(fclf_isa_active()));
}

int64_t fclf_gemm_in_place_rows(void) {
    pthread_once(&once, decide);
    return in_place_rows;
}

int64_t fclf_gemm_in_place_span(void) {
    pthread_once(&once, decide);
    return (caches.l2_bytes > 0 ? caches.l2_bytes : fallback.l2_bytes) / 2;
}
