// Shape arithmetic and tensor storage management.
#include "engine/tensor.hpp"

#include <algorithm>
#include <stdexcept>

namespace edgeqc {

Shape::Shape(std::initializer_list<int> dims) {
    if (dims.size() > kMaxRank) throw std::invalid_argument("Shape: more than 4 dimensions");
    for (int d : dims) {
        if (d < 0) throw std::invalid_argument("Shape: negative dimension");
        dims_[static_cast<std::size_t>(rank_++)] = d;
    }
}

std::size_t Shape::elements() const {
    if (rank_ == 0) return 0;
    std::size_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= static_cast<std::size_t>(dims_[static_cast<std::size_t>(i)]);
    return n;
}

bool Shape::operator==(const Shape& other) const {
    if (rank_ != other.rank_) return false;
    return std::equal(dims_.begin(), dims_.begin() + rank_, other.dims_.begin());
}

std::string Shape::str() const {
    std::string s;
    for (int i = 0; i < rank_; ++i) {
        if (i) s += 'x';
        s += std::to_string(dims_[static_cast<std::size_t>(i)]);
    }
    return s.empty() ? "scalar" : s;
}

void TensorView::fill(float value) const { std::fill(data, data + size(), value); }

void Tensor::resize(const Shape& shape) {
    shape_ = shape;
    // The storage only grows: the backward pass's gradient buffers alternate between layers of different sizes,
    // and growing back into kept capacity zero-filled the difference on every step (1-3 % of a training step).
    if (storage_.size() < shape.elements()) storage_.resize(shape.elements());
}

void Tensor::fill(float value) { std::fill_n(storage_.begin(), shape_.elements(), value); }

std::size_t element_size(DataType type) {
    switch (type) {
        case DataType::F32: return 4;
        case DataType::S8: return 1;
        case DataType::S32: return 4;
        case DataType::U8: return 1;
        case DataType::S16:
        case DataType::BF16: return 2;
    }
    throw std::logic_error("element_size: unknown data type");
}

const char* data_type_name(DataType type) {
    switch (type) {
        case DataType::F32: return "f32";
        case DataType::S8: return "s8";
        case DataType::S32: return "s32";
        case DataType::U8: return "u8";
        case DataType::S16: return "s16";
        case DataType::BF16: return "bf16";
    }
    return "?";
}

TypedTensor::TypedTensor(DataType type, const Shape& shape)
    : type_(type), shape_(shape), storage_(shape.elements() * element_size(type), 0) {}

void TypedTensor::check_type(DataType wanted) const {
    if (wanted != type_)
        throw std::logic_error(std::string("TypedTensor: ") + data_type_name(type_) + " tensor read as " +
                               data_type_name(wanted));
}

}  // namespace edgeqc
