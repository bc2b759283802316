// libFuzzer target: the Pascal VOC (LabelImg) annotation parser. It may refuse a document with edgeqc::Error; any
// other outcome than a parsed annotation is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/voc_import.hpp"
#include "engine/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        edgeqc::parse_voc_annotation(std::string(reinterpret_cast<const char*>(data), size), "fuzz.xml");
    } catch (const edgeqc::Error&) {
    }
    return 0;
}
