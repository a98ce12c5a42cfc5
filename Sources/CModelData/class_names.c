/* class_names.c: Fashion-MNIST's ten class names, in label order (the dataset's documentation). */
#include "fclf_model_data.h"

const char *fclf_data_class_name(int label) {
    static const char *const names[FCLF_DATA_CLASSES] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                         "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return label >= 0 && label < FCLF_DATA_CLASSES ? names[label] : NULL;
}
