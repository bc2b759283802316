// The tile transforms of Winograd F(2x2, 3x3) and F(4x4, 3x3), one row of tiles at a time, written once as plain
// loops over whole rows that the compiler vectorises for the arch each instantiation is built for
// (winograd_f32_avx2.cpp is compiled with -mavx2, so its loops use AVX2 whatever the rest of the build targets).
// Only additions, subtractions, multiplications by powers of two and a ReLU select: a multiply-add the compiler
// contracts rounds as the separate multiply and add would (the product is exact), so every arch rounds alike.
// Arch is only a tag here.
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>

#include "engine/kernels.hpp"
#include "engine/kernels/simd_arch.hpp"

namespace edgeqc {

template <class Arch>
struct WinogradRowsF32 {
    // V = B^T d B (B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]) for one row of tiles of one input plane, computed a
    // whole row at a time so the compiler vectorises it: first B^T over the 4 input rows, then B along each row.
    // out + position * position_stride + tx receives position `position` of tile tx.
    // rows: the calling thread's scratch, winograd_thread_scratch_floats() of them.
    static void input(const float* plane, int height, int width, int first_row, int first_column, int tile_columns,
                      std::ptrdiff_t position_stride, float* out, float* rows);
    // Y = A^T m A (A^T = [1 1 1 0; 0 1 -1 -1]) for `tile_rows` rows of tile_columns tiles of one output plane, the
    // first at output row first_row, plus shift and ReLU, cropped to the plane. m + position * position_stride + t
    // holds position `position` of tile t, row by row (tile tx of row r is t = r * tile_columns + tx): A^T down the
    // tiles' columns runs over all the rows' tiles at once, so that a plane of few tiles still fills whole vectors.
    // scratch: the calling thread's, winograd_output_scratch_floats() of them. With `pool`, the output goes through
    // a 2x2 max pool of stride 2 on its way: plane is the pooled plane, (out_height / 2) x (out_width / 2), each
    // window's first maximum winning as max_pool_2x2_f32 picks it (NaN included), a last odd row or column dropped.
    static void output(const float* m, std::ptrdiff_t position_stride, int tile_columns, int tile_rows, float shift,
                       bool relu, bool pool, float* plane, int out_height, int out_width, int first_row,
                       float* scratch);
    // dM = A dy A^T (A = [1 0; 1 1; 1 -1; 0 -1], the transpose of the output transform) for one row of tiles of one
    // output-gradient plane, a whole row at a time as in input(); entries outside the plane count as 0,
    // as the forward pass cropped them. rows: the calling thread's scratch, 8 * tile_columns floats at least.
    static void output_gradient(const float* plane, int out_height, int out_width, int first_row, int tile_columns,
                                std::ptrdiff_t position_stride, float* out, float* rows);

    // F(4x4, 3x3): as input() and output() for 6x6 transformed tiles (36 positions, position = 6 * row + column)
    // of 4x4 output tiles, with the matrices of Lavin & Gray (2016), section 4.2:
    // B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1] and
    // A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]. Scratch: winograd_thread_scratch_floats() for
    // the input, winograd_output_scratch_floats() for the output.
    static void input_f4(const float* plane, int height, int width, int first_row, int first_column, int tile_columns,
                         std::ptrdiff_t position_stride, float* out, float* rows);
    static void output_f4(const float* m, std::ptrdiff_t position_stride, int tile_columns, int tile_rows, float shift,
                          bool relu, bool pool, float* plane, int out_height, int out_width, int first_row,
                          float* scratch);
};

// Unnamed: each per-arch source compiles these helpers with its own flags, and a helper with external linkage would
// be one symbol that the linker keeps from any one of them (an AVX-512 copy could then run on an AVX2-only CPU).
namespace {
namespace winograd_detail {

// The loops below take their rows as __restrict parameters: they all lie in one scratch buffer, and without the
// promise that they do not overlap the compiler keeps scalar loops (measured: the input transform was 17 % of a
// training step on AVX-512, mostly scalar stores).

// t = B^T d over four input rows, element by element.
inline void input_columns(int n, const float* __restrict d0, const float* __restrict d1, const float* __restrict d2,
                          const float* __restrict d3, float* __restrict t0, float* __restrict t1,
                          float* __restrict t2, float* __restrict t3) {
    for (int xx = 0; xx < n; ++xx) {
        t0[xx] = d0[xx] - d2[xx];
        t1[xx] = d1[xx] + d2[xx];
        t2[xx] = d2[xx] - d1[xx];
        t3[xx] = d1[xx] - d3[xx];
    }
}

// B along one row r of t: the four positions of each tile, from its columns 2 tx .. 2 tx + 3.
inline void input_row(int tile_columns, const float* __restrict r, float* __restrict v0, float* __restrict v1,
                      float* __restrict v2, float* __restrict v3) {
    for (int tx = 0; tx < tile_columns; ++tx) {
        const float a = r[2 * tx], b = r[2 * tx + 1], c = r[2 * tx + 2], e = r[2 * tx + 3];
        v0[tx] = a - c;
        v1[tx] = b + c;
        v2[tx] = c - b;
        v3[tx] = b - e;
    }
}

// Copies `rows` input rows from first_row on, columns [first_column, first_column + row_width), into d[0..rows),
// with zeros where they lie outside the plane (the convolution's padding).
inline void gather_rows(const float* plane, int height, int width, int first_row, int first_column, int row_width,
                        int rows, float* const* d) {
    // Columns [inside_begin, inside_end) of the row lie inside the plane; the rest is zero padding.
    const int inside_begin = std::clamp(-first_column, 0, row_width);
    const int inside_end = std::clamp(width - first_column, inside_begin, row_width);
    for (int i = 0; i < rows; ++i) {
        const int iy = first_row + i;
        if (iy < 0 || iy >= height) {
            std::fill_n(d[i], row_width, 0.0f);
            continue;
        }
        std::fill_n(d[i], inside_begin, 0.0f);
        std::copy(plane + static_cast<std::ptrdiff_t>(iy) * width + first_column + inside_begin,
                  plane + static_cast<std::ptrdiff_t>(iy) * width + first_column + inside_end, d[i] + inside_begin);
        std::fill(d[i] + inside_end, d[i] + row_width, 0.0f);
    }
}

// The six combinations of F(4x4, 3x3)'s B^T, from six values (one per input row or column). Every product is by a
// power of two, hence exact.
struct InputTransformF4 {
    float v[6];
    InputTransformF4(float d0, float d1, float d2, float d3, float d4, float d5) {
        const float outer = d4 - d2, inner = 2.0f * (d3 - d1);
        const float quad_even = d4 - 4.0f * d2, quad_odd = d3 - 4.0f * d1;
        v[0] = 4.0f * (d0 - d2) + outer;
        v[1] = quad_even + quad_odd;
        v[2] = quad_even - quad_odd;
        v[3] = outer + inner;
        v[4] = outer - inner;
        v[5] = 4.0f * (d1 - d3) + (d5 - d3);
    }
};

// t = B^T d over six input rows, element by element.
inline void input_columns_f4(int n, const float* __restrict d0, const float* __restrict d1,
                             const float* __restrict d2, const float* __restrict d3, const float* __restrict d4,
                             const float* __restrict d5, float* __restrict t0, float* __restrict t1,
                             float* __restrict t2, float* __restrict t3, float* __restrict t4,
                             float* __restrict t5) {
    for (int xx = 0; xx < n; ++xx) {
        const InputTransformF4 t(d0[xx], d1[xx], d2[xx], d3[xx], d4[xx], d5[xx]);
        t0[xx] = t.v[0];
        t1[xx] = t.v[1];
        t2[xx] = t.v[2];
        t3[xx] = t.v[3];
        t4[xx] = t.v[4];
        t5[xx] = t.v[5];
    }
}

// B along one row r of t: the six positions of each tile, from its columns 4 tx .. 4 tx + 5.
inline void input_row_f4(int tile_columns, const float* __restrict r, float* __restrict v0, float* __restrict v1,
                         float* __restrict v2, float* __restrict v3, float* __restrict v4, float* __restrict v5) {
    for (int tx = 0; tx < tile_columns; ++tx) {
        const float* c = r + 4 * tx;
        const InputTransformF4 t(c[0], c[1], c[2], c[3], c[4], c[5]);
        v0[tx] = t.v[0];
        v1[tx] = t.v[1];
        v2[tx] = t.v[2];
        v3[tx] = t.v[3];
        v4[tx] = t.v[4];
        v5[tx] = t.v[5];
    }
}

// One output row of n 2x2 tiles from q = A^T m's row (its four columns): A^T along the row, plus shift and ReLU (NaN
// passes through, as in PyTorch); tile tx's two values at row[2 tx].
inline void output_row_pairs(int n, const float* const (&q)[4], float shift, bool relu, float* __restrict row) {
    for (int tx = 0; tx < n; ++tx) {
        float left = q[0][tx] + q[1][tx] + q[2][tx] + shift;
        float right = q[1][tx] - q[2][tx] - q[3][tx] + shift;
        if (relu) {
            left = left < 0.0f ? 0.0f : left;
            right = right < 0.0f ? 0.0f : right;
        }
        row[2 * tx] = left;
        row[2 * tx + 1] = right;
    }
}

// The four combinations of F(4x4, 3x3)'s A^T, from six values.
struct OutputTransformF4 {
    float y[4];
    OutputTransformF4(float m0, float m1, float m2, float m3, float m4, float m5) {
        const float sum12 = m1 + m2, difference12 = m1 - m2, sum34 = m3 + m4, difference34 = m3 - m4;
        y[0] = m0 + sum12 + sum34;
        y[1] = difference12 + 2.0f * difference34;
        y[2] = sum12 + 4.0f * sum34;
        y[3] = difference12 + 8.0f * difference34 + m5;
    }
};

// q = A^T m over six positions down the tiles' columns, tile by tile.
inline void output_columns_f4(int n, const float* __restrict m0, const float* __restrict m1,
                              const float* __restrict m2, const float* __restrict m3, const float* __restrict m4,
                              const float* __restrict m5, float* __restrict q0, float* __restrict q1,
                              float* __restrict q2, float* __restrict q3) {
    for (int tx = 0; tx < n; ++tx) {
        const OutputTransformF4 o(m0[tx], m1[tx], m2[tx], m3[tx], m4[tx], m5[tx]);
        q0[tx] = o.y[0];
        q1[tx] = o.y[1];
        q2[tx] = o.y[2];
        q3[tx] = o.y[3];
    }
}

// An output row from the four columns of its 4x4 tiles: row[4 tx + k] = y[k][tx] + shift, raised to floor where
// below it (NaN stays NaN).
inline void interleave_columns_f4(int n, const float* const (&y)[4], float shift, float floor, float* __restrict row) {
    for (int tx = 0; tx < n; ++tx)
        for (int k = 0; k < 4; ++k) {
            const float value = y[k][tx] + shift;
            row[4 * tx + k] = value < floor ? floor : value;
        }
}

// The 2x2 max pool of one window of outputs v (row-major), each plus shift and raised to floor first: the first
// maximum wins, as max_pool_2x2_window() picks it, NaN included.
inline float pooled_window(float v0, float v1, float v2, float v3, float shift, float floor) {
    const auto output = [&](float v) {
        v += shift;
        return v < floor ? floor : v;
    };
    float best = output(v0);
    const float rest[3] = {output(v1), output(v2), output(v3)};
    for (const float v : rest) best = v > best ? v : best;
    return best;
}

// A pooled output row of n 2x2 tiles, one value a tile, from both tile rows' q = A^T m (q[4 i + j]: row i, column j).
inline void pooled_row_pairs(int n, const float* const (&q)[8], float shift, float floor, float* __restrict row) {
    for (int tx = 0; tx < n; ++tx)
        row[tx] = pooled_window(q[0][tx] + q[1][tx] + q[2][tx], q[1][tx] - q[2][tx] - q[3][tx],
                                q[4][tx] + q[5][tx] + q[6][tx], q[5][tx] - q[6][tx] - q[7][tx], shift, floor);
}

// A pooled output row of n 4x4 tiles, two values a tile, from the columns of the two output rows it pools
// (y[4 i + k]: column k of row i).
inline void pooled_row_f4(int n, const float* const (&y)[8], float shift, float floor, float* __restrict row) {
    for (int tx = 0; tx < n; ++tx)
        for (int k = 0; k < 2; ++k)
            row[2 * tx + k] = pooled_window(y[2 * k][tx], y[2 * k + 1][tx], y[4 + 2 * k][tx], y[5 + 2 * k][tx], shift,
                                            floor);
}

// One row of a plane out_width wide, `size` values a tile from tile_columns tiles, computed by row_of(n, arrays,
// out) from arrays of per-tile values (each offset to the first tile), which writes n tiles' values: whole tiles
// straight into the plane's row (a copy through a row of scratch took 40 % of the 4x4 output transform), a last tile
// the plane crops through the scratch row.
template <std::size_t kArrays, class RowOf>
inline void write_output_row(int size, int tile_columns, int out_width, const float* const (&arrays)[kArrays],
                             float* plane_row, float* scratch_row, const RowOf& row_of) {
    const int whole = std::min(tile_columns, out_width / size);
    row_of(whole, arrays, plane_row);
    if (whole < tile_columns) {
        const float* last[kArrays];
        for (std::size_t a = 0; a < kArrays; ++a) last[a] = arrays[a] + whole;
        row_of(1, last, scratch_row);
        std::copy_n(scratch_row, out_width - size * whole, plane_row + size * whole);
    }
}

}  // namespace winograd_detail
}  // namespace

template <class Arch>
void WinogradRowsF32<Arch>::input(const float* plane, int height, int width, int first_row, int first_column,
                                  int tile_columns, std::ptrdiff_t position_stride, float* out, float* rows) {
    const int row_width = 2 * tile_columns + 2;  // input columns the row of tiles reads
    float* d[4] = {rows, rows + row_width, rows + 2 * row_width, rows + 3 * row_width};
    winograd_detail::gather_rows(plane, height, width, first_row, first_column, row_width, 4, d);
    float* t[4] = {rows + 4 * row_width, rows + 5 * row_width, rows + 6 * row_width, rows + 7 * row_width};
    winograd_detail::input_columns(row_width, d[0], d[1], d[2], d[3], t[0], t[1], t[2], t[3]);
    for (int i = 0; i < 4; ++i) {
        float* v0 = out + (4 * i) * position_stride;
        winograd_detail::input_row(tile_columns, t[i], v0, v0 + position_stride, v0 + 2 * position_stride,
                                   v0 + 3 * position_stride);
    }
}

template <class Arch>
void WinogradRowsF32<Arch>::output(const float* m, std::ptrdiff_t position_stride, int tile_columns, int tile_rows,
                                   float shift, bool relu, bool pool, float* plane, int out_height, int out_width,
                                   int first_row, float* scratch) {
    const int tiles = tile_rows * tile_columns;
    float* q[2][4];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 4; ++j) q[i][j] = scratch + (4 * i + j) * tiles;
    for (int j = 0; j < 4; ++j) {
        const float* m0 = m + j * position_stride;
        const float* m1 = m0 + 4 * position_stride;
        const float* m2 = m1 + 4 * position_stride;
        const float* m3 = m2 + 4 * position_stride;
        for (int t = 0; t < tiles; ++t) {
            q[0][j][t] = m0[t] + m1[t] + m2[t];
            q[1][j][t] = m1[t] - m2[t] - m3[t];
        }
    }
    float* row = scratch + 8 * tiles;
    if (pool) {  // each tile one pooled value, a tile row one pooled row
        const int pooled_height = out_height / 2, pooled_width = out_width / 2;
        const float floor = relu ? 0.0f : -std::numeric_limits<float>::infinity();
        for (int r = 0; r < tile_rows && first_row / 2 + r < pooled_height; ++r) {
            const int first = r * tile_columns;
            const float* const arrays[8] = {q[0][0] + first, q[0][1] + first, q[0][2] + first, q[0][3] + first,
                                            q[1][0] + first, q[1][1] + first, q[1][2] + first, q[1][3] + first};
            winograd_detail::write_output_row(
                1, tile_columns, pooled_width, arrays,
                plane + static_cast<std::ptrdiff_t>(first_row / 2 + r) * pooled_width, row,
                [&](int n, const float* const (&q_rows)[8], float* out) {
                    winograd_detail::pooled_row_pairs(n, q_rows, shift, floor, out);
                });
        }
        return;
    }
    for (int r = 0; r < tile_rows; ++r)
        for (int i = 0; i < 2; ++i) {
            const int oy = first_row + 2 * r + i;
            if (oy >= out_height) break;
            const int first = r * tile_columns;
            const float* const columns[4] = {q[i][0] + first, q[i][1] + first, q[i][2] + first, q[i][3] + first};
            winograd_detail::write_output_row(
                2, tile_columns, out_width, columns, plane + static_cast<std::ptrdiff_t>(oy) * out_width, row,
                [&](int n, const float* const (&q_row)[4], float* out) {
                    winograd_detail::output_row_pairs(n, q_row, shift, relu, out);
                });
        }
}

template <class Arch>
void WinogradRowsF32<Arch>::output_gradient(const float* plane, int out_height, int out_width, int first_row,
                                            int tile_columns, std::ptrdiff_t position_stride, float* out, float* rows) {
    const int row_width = 2 * tile_columns;
    float* g[2] = {rows, rows + row_width};
    for (int i = 0; i < 2; ++i) {
        const int oy = first_row + i;
        std::fill_n(g[i], row_width, 0.0f);
        if (oy < out_height) std::copy_n(plane + static_cast<std::ptrdiff_t>(oy) * out_width, out_width, g[i]);
    }
    // A applied down the columns: rows g0, g0 + g1, g0 - g1, -g1 (the last is negated in the loop below).
    float* r[2] = {rows + 2 * row_width, rows + 3 * row_width};
    for (int xx = 0; xx < row_width; ++xx) {
        r[0][xx] = g[0][xx] + g[1][xx];
        r[1][xx] = g[0][xx] - g[1][xx];
    }
    const float* combined[4] = {g[0], r[0], r[1], g[1]};
    const float sign[4] = {1.0f, 1.0f, 1.0f, -1.0f};
    for (int i = 0; i < 4; ++i) {
        const float* source = combined[i];
        const float s = sign[i];
        float* m0 = out + (4 * i) * position_stride;
        float* m1 = m0 + position_stride;
        float* m2 = m1 + position_stride;
        float* m3 = m2 + position_stride;
        for (int tx = 0; tx < tile_columns; ++tx) {
            const float left = s * source[2 * tx], right = s * source[2 * tx + 1];
            m0[tx] = left;
            m1[tx] = left + right;
            m2[tx] = left - right;
            m3[tx] = -right;
        }
    }
}

template <class Arch>
void WinogradRowsF32<Arch>::input_f4(const float* plane, int height, int width, int first_row, int first_column,
                                     int tile_columns, std::ptrdiff_t position_stride, float* out, float* rows) {
    const int row_width = 4 * tile_columns + 2;  // input columns the row of tiles reads
    float* d[6];
    float* t[6];
    for (int i = 0; i < 6; ++i) {
        d[i] = rows + i * row_width;
        t[i] = rows + (6 + i) * row_width;
    }
    winograd_detail::gather_rows(plane, height, width, first_row, first_column, row_width, 6, d);
    winograd_detail::input_columns_f4(row_width, d[0], d[1], d[2], d[3], d[4], d[5], t[0], t[1], t[2], t[3], t[4],
                                      t[5]);
    for (int i = 0; i < 6; ++i) {
        float* v0 = out + (6 * i) * position_stride;
        winograd_detail::input_row_f4(tile_columns, t[i], v0, v0 + position_stride, v0 + 2 * position_stride,
                                      v0 + 3 * position_stride, v0 + 4 * position_stride, v0 + 5 * position_stride);
    }
}

template <class Arch>
void WinogradRowsF32<Arch>::output_f4(const float* m, std::ptrdiff_t position_stride, int tile_columns, int tile_rows,
                                      float shift, bool relu, bool pool, float* plane, int out_height, int out_width,
                                      int first_row, float* scratch) {
    const int tiles = tile_rows * tile_columns;
    // q[i][j]: output row i of the tiles' column j (A^T down the columns), then A^T along each output row.
    float* q[4][6];
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 6; ++j) q[i][j] = scratch + (6 * i + j) * tiles;
    for (int j = 0; j < 6; ++j) {
        const float* m0 = m + j * position_stride;
        winograd_detail::output_columns_f4(tiles, m0, m0 + 6 * position_stride, m0 + 12 * position_stride,
                                           m0 + 18 * position_stride, m0 + 24 * position_stride,
                                           m0 + 30 * position_stride, q[0][j], q[1][j], q[2][j], q[3][j]);
    }
    // Then A^T along each output row as whole rows of tiles too (y[i][k][t]: column k of output row i of tile t), and
    // the columns interleaved into the output rows in a loop of its own: computing and interleaving each tile in one
    // loop kept the compiler to scalar code (a tenth of batch-1 inference).
    float* y[4][4];
    for (int i = 0; i < 4; ++i)
        for (int k = 0; k < 4; ++k) y[i][k] = scratch + (24 + 4 * i + k) * tiles;
    for (int i = 0; i < 4; ++i)
        winograd_detail::output_columns_f4(tiles, q[i][0], q[i][1], q[i][2], q[i][3], q[i][4], q[i][5], y[i][0],
                                           y[i][1], y[i][2], y[i][3]);
    float* row = scratch + 40 * tiles;
    // ReLU clamps below 0; without it the floor lets every number and NaN through (NaN passes either way, as in
    // PyTorch).
    const float floor = relu ? 0.0f : -std::numeric_limits<float>::infinity();
    if (pool) {  // output rows 2 i and 2 i + 1 of a tile make its pooled row i, two values a tile
        const int pooled_height = out_height / 2, pooled_width = out_width / 2;
        for (int r = 0; r < tile_rows; ++r)
            for (int i = 0; i < 2; ++i) {
                const int py = first_row / 2 + 2 * r + i;
                if (py >= pooled_height) break;
                const int first = r * tile_columns;
                const float* const* upper = y[2 * i];
                const float* const* lower = y[2 * i + 1];
                const float* const arrays[8] = {upper[0] + first, upper[1] + first, upper[2] + first, upper[3] + first,
                                                lower[0] + first, lower[1] + first, lower[2] + first, lower[3] + first};
                winograd_detail::write_output_row(
                    2, tile_columns, pooled_width, arrays, plane + static_cast<std::ptrdiff_t>(py) * pooled_width, row,
                    [&](int n, const float* const (&y_rows)[8], float* out) {
                        winograd_detail::pooled_row_f4(n, y_rows, shift, floor, out);
                    });
            }
        return;
    }
    for (int r = 0; r < tile_rows; ++r)
        for (int i = 0; i < 4; ++i) {
            const int oy = first_row + 4 * r + i;
            if (oy >= out_height) break;
            const int first = r * tile_columns;
            const float* const columns[4] = {y[i][0] + first, y[i][1] + first, y[i][2] + first, y[i][3] + first};
            winograd_detail::write_output_row(
                4, tile_columns, out_width, columns, plane + static_cast<std::ptrdiff_t>(oy) * out_width, row,
                [&](int n, const float* const (&y_row)[4], float* out) {
                    winograd_detail::interleave_columns_f4(n, y_row, shift, floor, out);
                });
        }
}

EDGEQC_EXTERN_SIMD_KERNEL(WinogradRowsF32)

}  // namespace edgeqc
