// Compiles the decoders and the PNG writer of Debian's stb headers (libstb-dev) into edgeqc, so the same code
// path serves native and cross builds (Debian has no stb library for the cross sysroot). No stb code lives here.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
