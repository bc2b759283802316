// libFuzzer targets of the edge node's network and camera inputs, one binary per input (EDGEQC_FUZZ_TARGET):
// 1 the MJPEG stream splitter, fed the input in chunks whose sizes the input's first byte sets (frames must be
// bounded by the splitter's limit and start and end with the JPEG markers); 2 the over-the-air model envelope; 3 the
// node commands. Each may refuse its input with edgeqc::Error, nothing else.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "edge/mjpeg_splitter.hpp"
#include "edge/model_envelope.hpp"
#include "edge/node_command.hpp"
#include "engine/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
#if EDGEQC_FUZZ_TARGET == 1
    if (size == 0) return 0;
    constexpr std::size_t kMaxFrame = 4096;
    const std::size_t chunk = 1 + data[0] % 97;
    edgeqc::MjpegSplitter splitter(kMaxFrame);
    const auto check = [](std::vector<unsigned char>&& frame) {
        if (frame.size() < 4 || frame.size() > kMaxFrame || frame[0] != 0xFF || frame[1] != 0xD8 ||
            frame[frame.size() - 2] != 0xFF || frame[frame.size() - 1] != 0xD9)
            std::abort();
    };
    for (std::size_t at = 1; at < size; at += chunk) splitter.feed(data + at, std::min(chunk, size - at), check);
    splitter.finish();
#elif EDGEQC_FUZZ_TARGET == 2
    try {
        const edgeqc::ModelEnvelope envelope = edgeqc::open_model_envelope(std::string(reinterpret_cast<const char*>(data), size));
        if (envelope.file.size() > size) std::abort();
    } catch (const edgeqc::Error&) {
    }
#elif EDGEQC_FUZZ_TARGET == 3
    try {
        edgeqc::parse_node_command(std::string(reinterpret_cast<const char*>(data), size));
    } catch (const edgeqc::Error&) {
    }
#else
#error "EDGEQC_FUZZ_TARGET: 1 (MJPEG splitter), 2 (model envelope) or 3 (node command)"
#endif
    return 0;
}
