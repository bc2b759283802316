// Dense float tensors with explicit shapes (NCHW for images), owning or viewing 64-byte aligned memory.
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

// Owning tensor. resize() keeps capacity so per-batch activations are allocated once per run.
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

}  // namespace edgeqc
