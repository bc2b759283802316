// The Winograd tile transforms built without any SIMD flags: the fallback path and the test oracle of the
// per-arch builds of the same loops (winograd_f32.hpp).
#include "engine/kernels/winograd_f32.hpp"

namespace edgeqc {

namespace {
struct Unvectorised {};  // the tag of this plain build
using Rows = WinogradRowsF32<Unvectorised>;
}  // namespace

void winograd_input_row_f32_reference(const float* plane, int height, int width, int first_row, int first_column,
                                      int tile_columns, std::ptrdiff_t position_stride, float* out, float* rows) {
    Rows::input(plane, height, width, first_row, first_column, tile_columns, position_stride, out, rows);
}

void winograd_output_row_f32_reference(const float* m, std::ptrdiff_t position_stride, int tile_columns,
                                       int tile_rows, float shift, bool relu, bool pool, float* plane,
                                       int out_height, int out_width, int first_row, float* scratch) {
    Rows::output(m, position_stride, tile_columns, tile_rows, shift, relu, pool, plane, out_height, out_width,
                 first_row, scratch);
}

void winograd_gradient_row_f32_reference(const float* plane, int out_height, int out_width, int first_row,
                                         int tile_columns, std::ptrdiff_t position_stride, float* out, float* rows) {
    Rows::output_gradient(plane, out_height, out_width, first_row, tile_columns, position_stride, out, rows);
}

void winograd_f4_input_row_f32_reference(const float* plane, int height, int width, int first_row, int first_column,
                                         int tile_columns, std::ptrdiff_t position_stride, float* out, float* rows) {
    Rows::input_f4(plane, height, width, first_row, first_column, tile_columns, position_stride, out, rows);
}

void winograd_f4_output_row_f32_reference(const float* m, std::ptrdiff_t position_stride, int tile_columns,
                                          int tile_rows, float shift, bool relu, bool pool, float* plane,
                                          int out_height, int out_width, int first_row, float* scratch) {
    Rows::output_f4(m, position_stride, tile_columns, tile_rows, shift, relu, pool, plane, out_height, out_width,
                    first_row, scratch);
}

}  // namespace edgeqc
