// A model sent to an edge node over MQTT, on <prefix>/<node>/model: a one-line JSON header, a newline, then the
// model file's bytes:
//   {"sha256":"<64 hex digits of the file>","size":<bytes>}\n<the .eqc file>
// The header is read within its first 4 KiB and every field is checked; the digest is compared before anything else
// looks at the bytes.
#pragma once

#include <string>
#include <vector>

namespace edgeqc {

struct ModelEnvelope {
    std::string sha256;  // lower-case hex, as verified
    std::vector<unsigned char> file;
};

inline constexpr std::size_t kMaxEnvelopeHeader = 4096;

// Throws Error saying what is wrong: no header, a malformed field, a size or checksum that does not match.
ModelEnvelope open_model_envelope(const std::string& payload);

// The envelope of a model file's bytes (for tests, tools and the twin).
std::string seal_model_envelope(const std::vector<unsigned char>& file);

}  // namespace edgeqc
