/* retail.c: classify clothing images with libfashionclf from C.
 *
 *   retail [--model FILE] --idx IMAGES.gz [--count N]   images from a Fashion-MNIST IDX file
 *   retail [--model FILE] PHOTO...                      PNG or JPEG photos
 *
 * Build: cc retail.c $(pkg-config --cflags --libs fashionclf) -lz -o retail
 * Prints, per image: index or file, label, class name and probability. */
#include <fashionclf.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static int classify_idx(const fclf_model *model, const char *path, long count) {
    gzFile f = gzopen(path, "rb");
    if (!f) {
        fprintf(stderr, "retail: %s: cannot open\n", path);
        return 1;
    }
    unsigned char header[16];
    if (gzread(f, header, 16) != 16 || header[2] != 8 || header[3] != 3) {
        fprintf(stderr, "retail: %s: not an IDX image file\n", path);
        gzclose(f);
        return 1;
    }
    long available = (long)header[4] << 24 | header[5] << 16 | header[6] << 8 | header[7];
    if (count > available) count = available;
    uint8_t *pixels = malloc((size_t)count * 784);
    int *labels = malloc((size_t)count * sizeof(int));
    float *probs = malloc((size_t)count * FCLF_NUM_CLASSES * sizeof(float));
    int rc = 1;
    if (!pixels || !labels || !probs || gzread(f, pixels, (unsigned)(count * 784)) != count * 784) {
        fprintf(stderr, "retail: %s: cannot read %ld images\n", path, count);
    } else if (fclf_predict_batch(model, pixels, (size_t)count, probs, labels) != FCLF_OK) {
        fprintf(stderr, "retail: %s\n", fclf_last_error());
    } else {
        for (long i = 0; i < count; i++)
            printf("%ld\t%d\t%s\t%.4f\n", i, labels[i], fclf_class_name(labels[i]), probs[i * FCLF_NUM_CLASSES + labels[i]]);
        rc = 0;
    }
    free(pixels);
    free(labels);
    free(probs);
    gzclose(f);
    return rc;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *idx = NULL;
    long count = 10;
    int first_photo = argc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) model_path = argv[++i];
        else if (strcmp(argv[i], "--idx") == 0 && i + 1 < argc) idx = argv[++i];
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) count = atol(argv[++i]);
        else { first_photo = i; break; }
    }
    if (count < 1) count = 1;
    if (fclf_version_number() / 10000 != FCLF_VERSION_MAJOR || fclf_version_number() < FCLF_VERSION_NUMBER) {
        fprintf(stderr, "retail: built against fashionclf %d.%d.%d, but the library is %s; install a matching 1.x\n",
                FCLF_VERSION_MAJOR, FCLF_VERSION_MINOR, FCLF_VERSION_PATCH, fclf_version());
        return 1;
    }
    fclf_model *model = NULL;
    fclf_status s = model_path ? fclf_model_load(model_path, &model) : fclf_model_load_default(&model);
    if (s != FCLF_OK) {
        fprintf(stderr, "retail: %s (%s)\n", fclf_last_error(), fclf_status_string(s));
        return 1;
    }
    int rc = 0;
    if (idx) rc = classify_idx(model, idx, count);
    for (int i = first_photo; i < argc; i++) {
        float p[FCLF_NUM_CLASSES];
        int label;
        s = fclf_predict_image_file(model, argv[i], p, &label);
        if (s == FCLF_OK) {
            printf("%s\t%d\t%s\t%.4f\n", argv[i], label, fclf_class_name(label), p[label]);
        } else {
            fprintf(stderr, "retail: %s (%s)\n", fclf_last_error(), fclf_status_string(s));
            rc = 1;
        }
    }
    fclf_model_free(model);
    return rc;
}
