// Exposes the system zlib (Debian zlib1g-dev) to Swift: gzip reading for the IDX files and crc32 for the model file.
#include <zlib.h>
