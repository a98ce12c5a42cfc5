/* fclf_model_data.h: data compiled into fashionclf (internal; not installed): the built-in model's bytes
 * and the class names. The Swift library (Classifier.builtIn(), FashionMNIST.classNames) and the C API
 * (fclf_model_load_default, fclf_class_name) both read them from here, so each exists once. */
#ifndef FCLF_MODEL_DATA_H
#define FCLF_MODEL_DATA_H

#include <stddef.h>

#define FCLF_DATA_CLASSES 10

/* The built-in model file (Sources/CModelData/builtin-model.fclf): its bytes and size. */
const unsigned char *fclf_data_builtin_model(size_t *size);
/* Fashion-MNIST's class names by label, static strings; NULL outside 0-9. */
const char *fclf_data_class_name(int label);

#endif
