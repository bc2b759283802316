// Little-endian binary encoding with bounds-checked reads, and CRC-32, for the model file format.
// The reader never reads past its buffer: every read checks the remaining length first and throws.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/error.hpp"

namespace edgeqc {

// The format is little-endian and written with plain copies; both targets (x86-64, aarch64) are little-endian.
static_assert(std::endian::native == std::endian::little, "edgeqc model files assume a little-endian host");

// CRC-32 (IEEE 802.3, as zlib), continuing from `crc` so that it can be computed over several pieces.
std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc = 0);

class ByteWriter {
public:
    template <class T>
    void put(T value) {
        static_assert(std::is_arithmetic_v<T>);
        const auto* p = reinterpret_cast<const unsigned char*>(&value);
        bytes_.insert(bytes_.end(), p, p + sizeof(T));
    }
    void put_string(const std::string& s) {
        put<std::uint32_t>(static_cast<std::uint32_t>(s.size()));
        bytes_.insert(bytes_.end(), s.begin(), s.end());
    }
    void put_floats(const float* values, std::size_t count) {
        const auto* p = reinterpret_cast<const unsigned char*>(values);
        bytes_.insert(bytes_.end(), p, p + count * sizeof(float));
    }
    void put_bytes(const std::vector<unsigned char>& more) { bytes_.insert(bytes_.end(), more.begin(), more.end()); }
    void put_raw(const unsigned char* data, std::size_t count) { bytes_.insert(bytes_.end(), data, data + count); }
    std::vector<unsigned char>& bytes() { return bytes_; }

private:
    std::vector<unsigned char> bytes_;
};

class ByteReader {
public:
    // what: names the data in error messages, e.g. "model file 'm.eqc'".
    ByteReader(const unsigned char* data, std::size_t size, std::string what)
        : data_(data), size_(size), what_(std::move(what)) {}

    template <class T>
    T get() {
        static_assert(std::is_arithmetic_v<T>);
        require(sizeof(T));
        T value;
        std::memcpy(&value, data_ + position_, sizeof(T));
        position_ += sizeof(T);
        return value;
    }
    std::string get_string(std::size_t max_length) {
        const auto length = get<std::uint32_t>();
        if (length > max_length) fail("a text field is implausibly long");
        require(length);
        std::string s(reinterpret_cast<const char*>(data_ + position_), length);
        position_ += length;
        return s;
    }
    // An empty read leaves `out` alone (it may be the null data() of an empty vector).
    void get_floats(float* out, std::size_t count) {
        if (count == 0) return;
        if (count > remaining() / sizeof(float)) fail("it ends inside a tensor");
        std::memcpy(out, data_ + position_, count * sizeof(float));
        position_ += count * sizeof(float);
    }
    void get_raw(unsigned char* out, std::size_t count) {
        if (count == 0) return;
        require(count);
        std::memcpy(out, data_ + position_, count);
        position_ += count;
    }
    ByteReader sub_reader(std::size_t length) {
        require(length);
        ByteReader sub(data_ + position_, length, what_);
        position_ += length;
        return sub;
    }
    std::size_t remaining() const { return size_ - position_; }
    [[noreturn]] void fail(const std::string& why) const { throw Error(what_ + " is corrupt: " + why); }

private:
    void require(std::size_t count) const {
        if (count > remaining()) throw Error(what_ + " is truncated or corrupt: it ends in the middle of a field");
    }
    const unsigned char* data_;
    std::size_t size_;
    std::size_t position_ = 0;
    std::string what_;
};

}  // namespace edgeqc
