/* builtin_model.c: the built-in model's bytes, compiled in with C23 #embed so that Classifier.builtIn()
 * and fclf_model_load_default work with no file on disk. The file is the committed model trained by the
 * command recorded in README.md ("The default model"). */
#include "fclf_model_data.h"

#if defined(__clang__)
#pragma clang diagnostic ignored "-Wc23-extensions"
#endif

static const unsigned char model_bytes[] = {
#embed "builtin-model.fclf"
};

const unsigned char *fclf_data_builtin_model(size_t *size) {
    *size = sizeof model_bytes;
    return model_bytes;
}
