// Envelope header parsing and checking.
#include "edge/model_envelope.hpp"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "edge/sha256.hpp"
#include "engine/error.hpp"

namespace edgeqc {

ModelEnvelope open_model_envelope(const std::string& payload) {
    const std::size_t newline = payload.find('\n');
    if (newline == std::string::npos || newline > kMaxEnvelopeHeader)
        throw Error("model message: no header line within its first " + std::to_string(kMaxEnvelopeHeader) + " bytes");
    const nlohmann::json header = nlohmann::json::parse(payload.substr(0, newline), nullptr, false);
    if (header.is_discarded() || !header.is_object()) throw Error("model message: the header is not a JSON object");
    const auto digest = header.find("sha256");
    if (digest == header.end() || !digest->is_string() || digest->get_ref<const std::string&>().size() != 64 ||
        !std::all_of(digest->get_ref<const std::string&>().begin(), digest->get_ref<const std::string&>().end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f'); }))
        throw Error("model message: \"sha256\" must be 64 lower-case hex digits");
    const auto size = header.find("size");
    if (size == header.end() || !size->is_number_unsigned())
        throw Error("model message: \"size\" must be the file's length in bytes");
    const std::size_t file_bytes = payload.size() - newline - 1;
    if (size->get<std::uint64_t>() != file_bytes)
        throw Error("model message: the header says " + std::to_string(size->get<std::uint64_t>()) + " bytes, " +
                    std::to_string(file_bytes) + " came (cut off in transit?)");
    ModelEnvelope envelope{digest->get<std::string>(),
                           std::vector<unsigned char>(payload.begin() + static_cast<std::ptrdiff_t>(newline + 1), payload.end())};
    if (sha256_hex(envelope.file) != envelope.sha256)
        throw Error("model message: checksum mismatch, the file is not the one the header names (damaged in transit?)");
    return envelope;
}

std::string seal_model_envelope(const std::vector<unsigned char>& file) {
    const nlohmann::json header = {{"sha256", sha256_hex(file)}, {"size", file.size()}};
    return header.dump() + "\n" + std::string(file.begin(), file.end());
}

}  // namespace edgeqc
