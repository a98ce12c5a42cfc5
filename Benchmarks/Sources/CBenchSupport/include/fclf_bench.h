/* Measured FP32 FMA peak of this machine, for the benchmarks' "% of peak" column. */
#ifndef FCLF_BENCH_H
#define FCLF_BENCH_H
/* GFLOP/s of `threads` threads each running independent FMA chains (AVX-512 if the CPU has it, else
 * AVX2+FMA, else 0) for about `seconds`. */
double fclf_bench_fma_peak(int threads, double seconds);
#endif
