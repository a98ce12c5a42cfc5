/* default_model.c: the default model's bytes, built into the library with C23 #embed so that
 * fclf_model_load_default works with no file on disk. The file is the committed model trained by the
 * command recorded in README.md ("The default model"). */
#include "fclf_capi_internal.h"

#if defined(__clang__)
#pragma clang diagnostic ignored "-Wc23-extensions"
#endif

static const unsigned char model_bytes[] = {
#embed "default-model.fclf"
};

const unsigned char *fclf__default_model(size_t *size) {
    *size = sizeof model_bytes;
    return model_bytes;
}
