// SHA-256 (OpenSSL's libcrypto, already a dependency of libmosquitto's TLS): the id of a model is the digest of its
// file, so every result names the exact model that produced it, and models sent over the air are checked with it.
#pragma once

#include <string>
#include <vector>

namespace edgeqc {

// Lower-case hex, 64 characters.
std::string sha256_hex(const std::vector<unsigned char>& bytes);

}  // namespace edgeqc
