// libFuzzer target: the model file loader past its checksum. The input is a model file without its CRC trailer;
// the target appends the right CRC, so mutations reach every section parser instead of stopping at the checksum
// (which a real file's damage meets first). Loading may fail with edgeqc::Error, nothing else.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/byte_io.hpp"
#include "engine/error.hpp"
#include "engine/model_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<unsigned char> file(data, data + size);
    const std::uint32_t crc = edgeqc::crc32(file.data(), file.size());
    const auto* crc_bytes = reinterpret_cast<const unsigned char*>(&crc);
    file.insert(file.end(), crc_bytes, crc_bytes + sizeof crc);
    try {
        edgeqc::load_model_bytes(file, "fuzz.eqc");
    } catch (const edgeqc::Error&) {
    }
    return 0;
}
