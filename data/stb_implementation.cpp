// Compiles the BMP decoder and the PNG/JPEG writer of Debian's stb headers (libstb-dev) into edgeqc, so the same code
// path serves native and cross builds (Debian has no stb library for the cross sysroot). No stb code lives here.
// BMP only: the other formats stb_image reads ignore short reads or fail sanitizers (image_decode.cpp).
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_BMP
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
