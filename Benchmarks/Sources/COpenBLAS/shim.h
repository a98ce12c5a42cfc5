// OpenBLAS (Debian libopenblas-dev) as the GEMM reference of the benchmarks; never linked by the library.
#include <cblas.h>
