// libFuzzer target: every image decoder behind decode_image_memory (JPEG, PNG, BMP, PGM/PPM), with and without a
// DCT scale. A decode may fail with edgeqc::Error; anything else (a crash, a sanitizer report, another exception,
// pixels outside [0, 1]) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "data/image.hpp"
#include "engine/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    edgeqc::set_max_image_pixels(4'000'000);  // the fuzzer's memory limit, not the decoders', bounds a test
    for (const edgeqc::DecodeSize scale : {edgeqc::DecodeSize{}, edgeqc::DecodeSize{24, 16}}) {
        try {
            const edgeqc::Image image = edgeqc::decode_image_memory(data, size, "fuzz", scale);
            for (const float value : image.pixels)
                if (!(value >= 0.0f && value <= 1.0f)) std::abort();
        } catch (const edgeqc::Error&) {
        }
    }
    return 0;
}
