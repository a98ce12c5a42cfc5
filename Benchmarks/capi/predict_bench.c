/* predict_bench.c: latency of single-image fclf_predict and throughput of fclf_predict_batch through
 * libfashionclf.so, on the Fashion-MNIST test images.
 *
 *   cc -O2 predict_bench.c $(pkg-config --cflags --libs fashionclf) -lz -o predict_bench
 *   ./predict_bench [TEST_IMAGES.gz] [ROUNDS] [MODEL.fclf]
 *
 * Prints p50/p99 of 10,000 single predictions (after 1,000 warm-up calls), the median of ROUNDS batch
 * passes over the 10,000 images, and the accuracy when the labels file is beside the images. */
#include <fashionclf.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static unsigned char *read_gz(const char *path, long *size) {
    gzFile f = gzopen(path, "rb");
    if (!f) return NULL;
    long cap = 1 << 20, n = 0;
    unsigned char *b = malloc(cap);
    int r;
    while ((r = gzread(f, b + n, (unsigned)(cap - n))) > 0) {
        n += r;
        if (n == cap) b = realloc(b, cap *= 2);
    }
    gzclose(f);
    *size = n;
    return b;
}

int main(int argc, char **argv) {
    const char *images = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    int rounds = argc > 2 ? atoi(argv[2]) : 10;
    long size;
    unsigned char *raw = read_gz(images, &size);
    if (!raw || size < 16) { fprintf(stderr, "predict_bench: cannot read %s\n", images); return 1; }
    long count = (size - 16) / 784;
    const uint8_t *pixels = raw + 16;
    fclf_model *m = NULL;
    fclf_status loaded = argc > 3 ? fclf_model_load(argv[3], &m) : fclf_model_load_default(&m);
    if (loaded != FCLF_OK) { fprintf(stderr, "%s\n", fclf_last_error()); return 1; }

    int label;
    float p[10];
    for (int i = 0; i < 1000; i++) (void)fclf_predict(m, pixels + (i % count) * 784, p, &label);
    enum { N = 10000 };
    static double lat[N];
    for (int i = 0; i < N; i++) {
        double t = now();
        (void)fclf_predict(m, pixels + (i % count) * 784, p, &label);
        lat[i] = now() - t;
    }
    qsort(lat, N, sizeof lat[0], cmp);
    printf("fclf_predict, 1 image: p50 %.1f us, p99 %.1f us (%d calls)\n", lat[N / 2] * 1e6, lat[N * 99 / 100] * 1e6, N);

    int *labels = malloc(count * sizeof(int));
    double *t = malloc(rounds * sizeof(double));
    (void)fclf_predict_batch(m, pixels, (size_t)count, NULL, labels);
    for (int r = 0; r < rounds; r++) {
        double s = now();
        (void)fclf_predict_batch(m, pixels, (size_t)count, NULL, labels);
        t[r] = now() - s;
    }
    qsort(t, rounds, sizeof t[0], cmp);
    printf("fclf_predict_batch, %ld images: median %.1f ms = %.0f images/s (%d rounds)\n", count, t[rounds / 2] * 1e3,
           count / t[rounds / 2], rounds);

    char truth[4096];
    snprintf(truth, sizeof truth, "%s", images);
    char *at = strstr(truth, "images-idx3");
    long lsize;
    unsigned char *y = NULL;
    if (at) {
        memcpy(at, "labels-idx1", 11);
        y = read_gz(truth, &lsize);
    }
    if (y && lsize - 8 == count) {
        long right = 0;
        for (long i = 0; i < count; i++) right += labels[i] == y[8 + i];
        printf("accuracy %.2f%% on %ld test images\n", 100.0 * right / count, count);
    }
    fclf_model_free(m);
    free(raw);
    free(labels);
    free(t);
    free(y);
    return 0;
}
