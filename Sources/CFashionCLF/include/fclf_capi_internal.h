/* Internal to libfashionclf: hidden helpers shared by its C and Swift parts. Not installed. */
#ifndef FCLF_CAPI_INTERNAL_H
#define FCLF_CAPI_INTERNAL_H

#include "fashionclf.h"

#define FCLF_HIDDEN __attribute__((visibility("hidden")))

FCLF_HIDDEN void fclf__set_error(const char *message);
FCLF_HIDDEN void fclf__clear_error(void);

#endif
