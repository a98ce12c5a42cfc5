/* error.c: the thread-local detail message behind fclf_last_error(), and the static strings.
 * Kept in C because a _Thread_local buffer is simplest here and Swift has no thread-local storage of
 * its own; the Swift side writes it through fclf__set_error (hidden: not exported from the library). */
#include "fclf_capi_internal.h"
#include "fclf_model_data.h"

#include <string.h>

static _Thread_local char last_error[512];

void fclf__set_error(const char *message) {
    size_t n = strlen(message);
    if (n >= sizeof last_error) n = sizeof last_error - 1;
    memcpy(last_error, message, n);
    last_error[n] = '\0';
}

void fclf__clear_error(void) { last_error[0] = '\0'; }

FCLF_API const char *fclf_last_error(void) { return last_error; }

FCLF_API const char *fclf_class_name(int label) {
    return fclf_data_class_name(label);
}

FCLF_API const char *fclf_status_string(fclf_status status) {
    switch (status) {
    case FCLF_OK: return "ok";
    case FCLF_ERR_INVALID_ARGUMENT: return "invalid argument";
    case FCLF_ERR_IO: return "I/O error";
    case FCLF_ERR_FORMAT: return "bad or unsupported format";
    case FCLF_ERR_NO_MEMORY: return "out of memory";
    case FCLF_ERR_INTERNAL: return "internal error";
    case FCLF_ERR_UNSUPPORTED: return "not supported";
    case FCLF_ERR_NUMERIC: return "non-finite result";
    }
    return "unknown status";
}

#define FCLF_STR2(x) #x
#define FCLF_STR(x) FCLF_STR2(x)
FCLF_API const char *fclf_version(void) {
    return FCLF_STR(FCLF_VERSION_MAJOR) "." FCLF_STR(FCLF_VERSION_MINOR) "." FCLF_STR(FCLF_VERSION_PATCH);
}

FCLF_API int fclf_version_number(void) { return FCLF_VERSION_NUMBER; }
