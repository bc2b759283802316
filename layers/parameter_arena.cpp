// Slot bookkeeping and storage of the parameter arena.
#include "layers/parameter_arena.hpp"

#include <algorithm>
#include <stdexcept>

#include "engine/error.hpp"

namespace edgeqc {

namespace {
constexpr std::size_t kSlotAlignmentFloats = kTensorAlignment / sizeof(float);
}

std::size_t ParameterArena::slot_of(const std::string& name) const {
    for (std::size_t i = 0; i < slots_.size(); ++i)
        if (slots_[i].name == name) return i;
    throw Error("no parameter '" + name + "'");
}

std::size_t ParameterArena::reserve(const std::string& name, const Shape& shape) {
    if (allocated_) throw std::logic_error("ParameterArena::reserve after allocate");
    slots_.push_back({name, shape, total_});
    const std::size_t n = shape.elements();
    total_ += (n + kSlotAlignmentFloats - 1) / kSlotAlignmentFloats * kSlotAlignmentFloats;
    return slots_.size() - 1;
}

void ParameterArena::allocate() {
    values_.assign(total_, 0.0f);
    if (with_gradients_) gradients_.assign(total_, 0.0f);
    allocated_ = true;
}

TensorView ParameterArena::value(std::size_t slot) {
    const ParameterSlot& s = slots_.at(slot);
    return {values_.data() + s.offset, s.shape};
}

TensorView ParameterArena::gradient(std::size_t slot) {
    if (!with_gradients_) throw std::logic_error("ParameterArena: this arena keeps no gradients");
    const ParameterSlot& s = slots_.at(slot);
    return {gradients_.data() + s.offset, s.shape};
}

std::size_t ParameterArena::parameter_count() const {
    std::size_t n = 0;
    for (const ParameterSlot& s : slots_) n += s.shape.elements();
    return n;
}

void ParameterArena::zero_gradients() { std::fill(gradients_.begin(), gradients_.end(), 0.0f); }

}  // namespace edgeqc
