// One contiguous block for all parameters of a network (and one for their gradients), handed out as views.
// Keeping them contiguous lets optimizers run a single flat loop and lets the model file write one block.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "engine/tensor.hpp"

namespace edgeqc {

struct ParameterSlot {
    std::string name;  // "<layer index>.<role>", e.g. "3.weight"; stable across runs, used by the model file
    Shape shape;
    std::size_t offset = 0;  // in floats from the start of the arena, a multiple of 16 (64 bytes)
};

// Two phases: layers reserve() slots while the network is built, then allocate() creates the storage.
class ParameterArena {
public:
    explicit ParameterArena(bool with_gradients) : with_gradients_(with_gradients) {}

    std::size_t reserve(const std::string& name, const Shape& shape);
    void allocate();

    TensorView value(std::size_t slot);
    TensorView gradient(std::size_t slot);
    const std::vector<ParameterSlot>& slots() const { return slots_; }
    // The slot named `name`; throws edgeqc::Error when there is none.
    std::size_t slot_of(const std::string& name) const;

    float* values() { return values_.data(); }
    const float* values() const { return values_.data(); }
    float* gradients() { return gradients_.data(); }
    bool has_gradients() const { return with_gradients_; }
    std::size_t size() const { return values_.size(); }  // floats, padding included (0 before allocate)
    std::size_t parameter_count() const;                  // floats, padding excluded
    void zero_gradients();

private:
    bool with_gradients_;
    bool allocated_ = false;
    std::size_t total_ = 0;
    std::vector<ParameterSlot> slots_;
    AlignedFloats values_;
    AlignedFloats gradients_;
};

}  // namespace edgeqc
