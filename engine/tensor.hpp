// Dense tensors with explicit shapes (NCHW for images), owning or viewing 64-byte aligned memory: float tensors
// for training and compute, and typed tensors (f32, s8, s32, u8) for models and the inference runtime.
// Deliberately minimal: no broadcasting, no autograd, no device abstraction; layers own their math.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <new>
#include <string>
#include <vector>

namespace edgeqc {

// 64 bytes covers an AVX-512 register and a cache line, so every SIMD kernel may use aligned loads
// on the start of a buffer.
inline constexpr std::size_t kTensorAlignment = 64;

template <class T>
struct AlignedAllocator {
    using value_type = T;
    AlignedAllocator() = default;
    template <class U>
    AlignedAllocator(const AlignedAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kTensorAlignment}));
    }
    void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{kTensorAlignment}); }
    template <class U>
    bool operator==(const AlignedAllocator<U>&) const noexcept { return true; }
};

using AlignedFloats = std::vector<float, AlignedAllocator<float>>;

// Up to four dimensions; the meaning of each (N, C, H, W or rows, cols) is documented where used.
class Shape {
public:
    static constexpr int kMaxRank = 4;
    Shape() = default;
    Shape(std::initializer_list<int> dims);

    int rank() const { return rank_; }
    int operator[](int axis) const { return dims_[static_cast<std::size_t>(axis)]; }
    std::size_t elements() const;
    bool operator==(const Shape& other) const;
    bool operator!=(const Shape& other) const { return !(*this == other); }
    std::string str() const;  // "2x3x5x7"

private:
    std::array<int, kMaxRank> dims_{};
    int rank_ = 0;
};

// A non-owning window onto floats laid out densely in row-major order of its shape.
struct TensorView {
    float* data = nullptr;
    Shape shape;
    std::size_t size() const { return shape.elements(); }
    float& operator[](std::size_t i) const { return data[i]; }
    void fill(float value) const;
};

// Owning tensor. resize() keeps capacity so per-batch activations are allocated once per run; elements it adds are
// zero the first time the storage reaches them and otherwise keep what was there.
class Tensor {
public:
    Tensor() = default;
    explicit Tensor(const Shape& shape) { resize(shape); }

    void resize(const Shape& shape);
    const Shape& shape() const { return shape_; }
    std::size_t size() const { return shape_.elements(); }
    float* data() { return storage_.data(); }
    const float* data() const { return storage_.data(); }
    float& operator[](std::size_t i) { return storage_[i]; }
    float operator[](std::size_t i) const { return storage_[i]; }
    TensorView view() { return {storage_.data(), shape_}; }
    void fill(float value);

private:
    Shape shape_;
    AlignedFloats storage_;
};

// Scratch memory that its owner grows on demand and reuses: for training layers, whose batch size is only known
// when they run, one per layer (never shared between threads). Inference plans size theirs once, when built.
class ScratchBuffer {
public:
    // At least `floats` floats, 64-byte aligned; earlier contents are not kept when it grows.
    float* floats(std::size_t count) {
        if (storage_.size() < count) storage_ = AlignedFloats(count);
        return storage_.data();
    }

private:
    AlignedFloats storage_;
};

// `floats` rounded up to whole 64-byte lines, so that a region carved after it from one block stays aligned.
inline std::size_t aligned_floats(std::size_t floats) {
    constexpr std::size_t line = kTensorAlignment / sizeof(float);
    return (floats + line - 1) / line * line;
}

// `bytes` rounded up to whole 64-byte lines, for byte workspaces carved the same way.
inline std::size_t aligned_bytes(std::size_t bytes) {
    return (bytes + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
}

// Element types of typed tensors; the numbers are the model file's type codes, so they never change.
// S16 (the int8 Winograd's transformed operands) and BF16 (the products of bf16 training) name kernels only: no
// model tensor role allows them.
enum class DataType : std::uint8_t { F32 = 0, S8 = 1, S32 = 2, U8 = 3, S16 = 4, BF16 = 5 };
inline constexpr int kDataTypeCount = 6;
std::size_t element_size(DataType type);
const char* data_type_name(DataType type);  // "f32", "s8", "s32", "u8", "s16", "bf16"

template <class T>
constexpr DataType data_type_of();
template <>
constexpr DataType data_type_of<float>() { return DataType::F32; }
template <>
constexpr DataType data_type_of<std::int8_t>() { return DataType::S8; }
template <>
constexpr DataType data_type_of<std::int32_t>() { return DataType::S32; }
template <>
constexpr DataType data_type_of<std::uint8_t>() { return DataType::U8; }
template <>
constexpr DataType data_type_of<std::int16_t>() { return DataType::S16; }

// Activations of quantized layers are 7-bit: integers 0..kActivationMax, real value = scale * (q - zero_point).
// 7 bits, not 8, so that a sum of two activation x weight products stays within int16 (2 x 127 x 127 < 32767),
// which AVX2's vpmaddubsw and ARMv8.0's smlal need; 8-bit activations would saturate there. Quantized weights are
// symmetric in [-kWeightMax, kWeightMax]: -128 is never used, for the same reason.
inline constexpr int kActivationMax = 127;
inline constexpr int kWeightMax = 127;
// Quantizing rounds to nearest, ties to even (as std::nearbyint in the default rounding mode), by adding and then
// subtracting 1.5 x 2^23: for |value| <= 2^22 the sum has no fraction bits, the FPU rounds, and the difference is
// exact. Unlike nearbyint it needs no SSE4.1 (roundps) to vectorize, so every arch computes it in vectors, and all
// get the same bits.
inline constexpr float kRoundToEvenShifter = 12582912.0f;

// A tensor of any DataType. Quantized tensors (s8, s32) carry one f32 scale per index of their first axis (the
// output channel): real value = scale[channel] * stored integer. Float tensors carry no scales.
class TypedTensor {
public:
    TypedTensor() = default;
    TypedTensor(DataType type, const Shape& shape);

    DataType type() const { return type_; }
    const Shape& shape() const { return shape_; }
    std::size_t elements() const { return shape_.elements(); }
    std::size_t bytes() const { return storage_.size(); }
    unsigned char* raw() { return storage_.data(); }
    const unsigned char* raw() const { return storage_.data(); }
    // Typed access; throws std::logic_error when T is not the tensor's type.
    template <class T>
    T* data() {
        check_type(data_type_of<T>());
        return reinterpret_cast<T*>(storage_.data());
    }
    template <class T>
    const T* data() const {
        check_type(data_type_of<T>());
        return reinterpret_cast<const T*>(storage_.data());
    }

    std::vector<float> scales;  // empty, or shape[0] values for a quantized tensor

private:
    void check_type(DataType wanted) const;
    DataType type_ = DataType::F32;
    Shape shape_;
    std::vector<unsigned char, AlignedAllocator<unsigned char>> storage_;
};

}  // namespace edgeqc
