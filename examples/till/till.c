/* till.c: a till's use of libfashionclf 1.x without files at prediction time: the model and a photo arrive
 * as bytes (from a database, a network), frames arrive from a camera as raw pixels.
 *
 *   till MODEL.fclf PHOTO.jpg      (MODEL may be "-" for the built-in model)
 *
 * Prints the library's version, the model's metadata, the photo's class from its bytes, and the class of
 * a synthetic BGRA camera frame (a dark garment on a white counter) with a padded row stride. */
#include <fashionclf.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    *size = b ? fread(b, 1, (size_t)n, f) : 0;
    fclose(f);
    return b;
}

static int report(const char *what, fclf_status s, const float p[10], int label) {
    if (s != FCLF_OK) return fprintf(stderr, "till: %s: %s\n", what, fclf_last_error()), 1;
    printf("%s: %s %.1f%%%s\n", what, fclf_class_name(label), 100 * p[label], p[label] < FCLF_UNSURE_BELOW ? " (unsure)" : "");
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) return fprintf(stderr, "usage: till MODEL.fclf|- PHOTO.jpg\n"), 2;
    if (fclf_version_number() / 10000 != FCLF_VERSION_MAJOR || fclf_version_number() < FCLF_VERSION_NUMBER)
        return fprintf(stderr, "till: built against %d, library %d\n", FCLF_VERSION_NUMBER, fclf_version_number()), 1;
    printf("fashionclf %s (%d)\n", fclf_version(), fclf_version_number());
    fclf_set_threads(1); /* a till predicts one photo at a time: one core is enough */

    fclf_model *model = NULL;
    size_t size = 0;
    unsigned char *bytes = strcmp(argv[1], "-") == 0 ? NULL : slurp(argv[1], &size);
    fclf_status s = bytes ? fclf_model_load_memory(bytes, size, &model) : fclf_model_load_default(&model);
    free(bytes);
    if (s != FCLF_OK) return fprintf(stderr, "till: %s\n", fclf_last_error()), 1;
    printf("model: %s\n", fclf_model_metadata(model));

    float p[10];
    int label = -1, failed = 0;
    unsigned char *photo = slurp(argv[2], &size);
    s = photo ? fclf_predict_image_memory(model, photo, size, p, &label) : FCLF_ERR_IO;
    if (!photo) fprintf(stderr, "till: cannot read %s\n", argv[2]);
    else failed |= report(argv[2], s, p, label);
    failed |= !photo;
    free(photo);

    enum { W = 120, H = 160, STRIDE = W * 4 + 32 };
    static unsigned char frame[H * STRIDE];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            unsigned char v = (x > 30 && x < 90 && y > 20 && y < 140) ? 50 : 250;
            unsigned char *px = frame + y * STRIDE + 4 * x;
            px[0] = px[1] = px[2] = v;
            px[3] = 255;
        }
    s = fclf_predict_pixels(model, frame, W, H, STRIDE, FCLF_PIXEL_BGRA8, p, &label);
    failed |= report("camera frame (BGRA)", s, p, label);
    fclf_model_free(model);
    return failed;
}
