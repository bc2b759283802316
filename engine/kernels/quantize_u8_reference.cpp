// Scalar quantization of float activations to 7-bit ones: the test oracle of the per-arch ones (quantize_u8.hpp),
// the same loop compiled for the baseline CPU.
#include "engine/kernels/quantize_u8.hpp"

namespace edgeqc {

void quantize_u8_reference(const float* x, std::size_t count, float scale, int zero_point, std::uint8_t* q) {
    quantize_values(x, count, scale, zero_point, q);
}

}  // namespace edgeqc
