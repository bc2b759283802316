// Winograd F(2x2, 3x3): input tiles d (4x4) become V = B^T d B, weights g (3x3) become U = G g G^T, the 16
// positions of the transformed tiles are 16 independent GEMMs M = U V over channels, and Y = A^T M A gives each
// 2x2 output tile. Matrices as in Lavin & Gray (2016), section 4.1.
#include "layers/conv2d_winograd.hpp"

#include <algorithm>
#include <cstddef>

namespace edgeqc {

namespace {

constexpr int kPositions = 16;  // a 4x4 transformed tile
// Bound on the floats of transformed inputs and products held at once; batches are processed in chunks of images
// that fit (4 M floats = 16 MiB: enough columns for an efficient GEMM, little memory).
constexpr std::size_t kScratchBudgetFloats = std::size_t{4} << 20;

// U = G g G^T with G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
void transform_weight(const float* g, float (&u)[kPositions]) {
    float s[4][3];
    for (int j = 0; j < 3; ++j) {
        s[0][j] = g[j];
        s[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
        s[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
        s[3][j] = g[6 + j];
    }
    for (int i = 0; i < 4; ++i) {
        u[i * 4 + 0] = s[i][0];
        u[i * 4 + 1] = 0.5f * (s[i][0] + s[i][1] + s[i][2]);
        u[i * 4 + 2] = 0.5f * (s[i][0] - s[i][1] + s[i][2]);
        u[i * 4 + 3] = s[i][2];
    }
}

// Scratch rows of one thread, grown on demand.
float* row_scratch(std::size_t floats) {
    static thread_local AlignedFloats buffer;
    if (buffer.size() < floats) buffer.resize(floats);
    return buffer.data();
}

// V = B^T d B (B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]) for one row of tiles of one input plane, computed a
// whole row at a time so the compiler vectorises it: first B^T over the 4 input rows, then B along each row.
// out + position * position_stride + tx receives position `position` of tile tx.
void transform_input_row(const float* plane, int height, int width, int first_row, int first_column,
                         int tile_columns, std::ptrdiff_t position_stride, float* out) {
    const int row_width = 2 * tile_columns + 2;  // input columns the row of tiles reads
    float* rows = row_scratch(8 * static_cast<std::size_t>(row_width));
    float* d[4] = {rows, rows + row_width, rows + 2 * row_width, rows + 3 * row_width};
    for (int i = 0; i < 4; ++i) {
        const int iy = first_row + i;
        for (int xx = 0; xx < row_width; ++xx) {
            const int ix = first_column + xx;
            d[i][xx] = iy >= 0 && iy < height && ix >= 0 && ix < width ? plane[static_cast<std::ptrdiff_t>(iy) * width + ix]
                                                                       : 0.0f;
        }
    }
    float* t[4] = {rows + 4 * row_width, rows + 5 * row_width, rows + 6 * row_width, rows + 7 * row_width};
    for (int xx = 0; xx < row_width; ++xx) {
        t[0][xx] = d[0][xx] - d[2][xx];
        t[1][xx] = d[1][xx] + d[2][xx];
        t[2][xx] = d[2][xx] - d[1][xx];
        t[3][xx] = d[1][xx] - d[3][xx];
    }
    for (int i = 0; i < 4; ++i) {
        const float* r = t[i];
        float* v0 = out + (4 * i) * position_stride;
        float* v1 = v0 + position_stride;
        float* v2 = v1 + position_stride;
        float* v3 = v2 + position_stride;
        for (int tx = 0; tx < tile_columns; ++tx) {
            const float a = r[2 * tx], b = r[2 * tx + 1], c = r[2 * tx + 2], e = r[2 * tx + 3];
            v0[tx] = a - c;
            v1[tx] = b + c;
            v2[tx] = c - b;
            v3[tx] = b - e;
        }
    }
}

// Y = A^T m A (A^T = [1 1 1 0; 0 1 -1 -1]) for one row of tiles of one output plane, plus shift and ReLU, cropped
// to the plane. m + position * position_stride + tx holds position `position` of tile tx.
void transform_output_row(const float* m, std::ptrdiff_t position_stride, int tile_columns, float shift, bool relu,
                          float* plane, int out_height, int out_width, int first_row) {
    float* scratch = row_scratch(8 * static_cast<std::size_t>(tile_columns) + 2 * (2 * static_cast<std::size_t>(tile_columns)));
    float* q[2][4];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 4; ++j) q[i][j] = scratch + (4 * i + j) * tile_columns;
    for (int j = 0; j < 4; ++j) {
        const float* m0 = m + j * position_stride;
        const float* m1 = m0 + 4 * position_stride;
        const float* m2 = m1 + 4 * position_stride;
        const float* m3 = m2 + 4 * position_stride;
        for (int tx = 0; tx < tile_columns; ++tx) {
            q[0][j][tx] = m0[tx] + m1[tx] + m2[tx];
            q[1][j][tx] = m1[tx] - m2[tx] - m3[tx];
        }
    }
    float* row = scratch + 8 * tile_columns;
    for (int i = 0; i < 2; ++i) {
        const int oy = first_row + i;
        if (oy >= out_height) break;
        for (int tx = 0; tx < tile_columns; ++tx) {
            float left = q[i][0][tx] + q[i][1][tx] + q[i][2][tx] + shift;
            float right = q[i][1][tx] - q[i][2][tx] - q[i][3][tx] + shift;
            if (relu) {  // NaN passes through, as in PyTorch
                left = left < 0.0f ? 0.0f : left;
                right = right < 0.0f ? 0.0f : right;
            }
            row[2 * tx] = left;
            row[2 * tx + 1] = right;
        }
        std::copy_n(row, out_width, plane + static_cast<std::ptrdiff_t>(oy) * out_width);
    }
}

// dM = A dy A^T (A = [1 0; 1 1; 1 -1; 0 -1], the transpose of the output transform) for one row of tiles of one
// output-gradient plane, a whole row at a time as in transform_input_row; entries outside the plane count as 0,
// as the forward pass cropped them.
void transform_output_gradient_row(const float* plane, int out_height, int out_width, int first_row, int tile_columns,
                                   std::ptrdiff_t position_stride, float* out) {
    const int row_width = 2 * tile_columns;
    float* rows = row_scratch(4 * static_cast<std::size_t>(row_width));
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

// dW += G^T dU G (G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1]) for one channel pair: 4x4 -> 3x3.
void accumulate_weight_gradient(const float (&du)[kPositions], float* dw) {
    float s[3][4];
    for (int j = 0; j < 4; ++j) {
        s[0][j] = du[j] + 0.5f * (du[4 + j] + du[8 + j]);
        s[1][j] = 0.5f * (du[4 + j] - du[8 + j]);
        s[2][j] = 0.5f * (du[4 + j] + du[8 + j]) + du[12 + j];
    }
    for (int i = 0; i < 3; ++i) {
        dw[i * 3 + 0] += s[i][0] + 0.5f * (s[i][1] + s[i][2]);
        dw[i * 3 + 1] += 0.5f * (s[i][1] - s[i][2]);
        dw[i * 3 + 2] += 0.5f * (s[i][1] + s[i][2]) + s[i][3];
    }
}

// The 2x2 output tiles of a convolution with `padding` on a height x width input.
struct TileGrid {
    int height, width, padding, out_height, out_width, tile_rows, tile_columns;
    TileGrid(int height_, int width_, int padding_)
        : height(height_), width(width_), padding(padding_), out_height(height_ + 2 * padding_ - 2),
          out_width(width_ + 2 * padding_ - 2), tile_rows((out_height + 1) / 2), tile_columns((out_width + 1) / 2) {}
    int tiles_per_image() const { return tile_rows * tile_columns; }
    // Images per round so that `floats_per_tile` floats of scratch per tile stay within the budget.
    int chunk(int batch, std::size_t floats_per_tile) const {
        return static_cast<int>(std::clamp<std::size_t>(
            kScratchBudgetFloats / (floats_per_tile * static_cast<std::size_t>(tiles_per_image())), 1,
            static_cast<std::size_t>(batch)));
    }
};

// V for images [first, first + count) of x (batch x channels x H x W): 16 matrices of channels x tiles.
void transform_input_chunk(const TileGrid& grid, const float* x, int channels, int first, int count, float* v) {
    const std::ptrdiff_t tiles = static_cast<std::ptrdiff_t>(count) * grid.tiles_per_image();
    const std::size_t plane_size = static_cast<std::size_t>(grid.height) * grid.width;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < count; ++n) {
        for (int c = 0; c < channels; ++c) {
            const float* plane = x + (static_cast<std::size_t>(first + n) * channels + c) * plane_size;
            float* out = v + static_cast<std::ptrdiff_t>(c) * tiles + n * grid.tiles_per_image();
            for (int ty = 0; ty < grid.tile_rows; ++ty)
                transform_input_row(plane, grid.height, grid.width, 2 * ty - grid.padding, -grid.padding,
                                    grid.tile_columns, channels * tiles, out + ty * grid.tile_columns);
        }
    }
}

}  // namespace

void WinogradConv3x3::prepare(const KernelTable& table, const float* weights, int out_channels, int in_channels) {
    out_channels_ = out_channels;
    in_channels_ = in_channels;
    // U as 16 matrices of Cout x Cin, each then packed as the GEMM's A.
    AlignedFloats transformed(static_cast<std::size_t>(kPositions) * out_channels * in_channels);
    const std::size_t plane = static_cast<std::size_t>(out_channels) * in_channels;
    for (std::size_t pair = 0; pair < plane; ++pair) {
        float u[kPositions];
        transform_weight(weights + pair * 9, u);
        for (int position = 0; position < kPositions; ++position) transformed[position * plane + pair] = u[position];
    }
    packed_floats_ = table.gemm_pack_a_f32(false, out_channels, in_channels, nullptr, in_channels, nullptr);
    packed_weights_.assign(packed_floats_ * kPositions, 0.0f);
    for (int position = 0; position < kPositions; ++position)
        table.gemm_pack_a_f32(false, out_channels, in_channels, transformed.data() + position * plane, in_channels,
                              packed_weights_.data() + position * packed_floats_);
    table_ = &table;
}

void WinogradConv3x3::forward(const float* x, int batch, int height, int width, int padding, const float* bias,
                              bool relu, float* y) const {
    if (batch <= 0) return;
    const TileGrid grid(height, width, padding);
    const int tiles_per_image = grid.tiles_per_image(), tile_rows = grid.tile_rows, tile_columns = grid.tile_columns;
    const int out_height = grid.out_height, out_width = grid.out_width;
    const int chunk = grid.chunk(batch, static_cast<std::size_t>(kPositions) * (in_channels_ + out_channels_));
    float* transformed_input = kernel_workspace(KernelWorkspace::WinogradInput,
                                                static_cast<std::size_t>(kPositions) * in_channels_ * tiles_per_image * chunk);
    float* products = kernel_workspace(KernelWorkspace::WinogradProduct,
                                       static_cast<std::size_t>(kPositions) * out_channels_ * tiles_per_image * chunk);
    const std::size_t out_plane = static_cast<std::size_t>(out_height) * out_width;

    for (int first = 0; first < batch; first += chunk) {
        const int count = std::min(chunk, batch - first);
        const std::ptrdiff_t tiles = static_cast<std::ptrdiff_t>(count) * tiles_per_image;
        transform_input_chunk(grid, x, in_channels_, first, count, transformed_input);
        // M = U V for each of the 16 positions: Cout x tiles. One whole GEMM per thread: no barriers inside them,
        // and each thread's packed panels stay in its own cache.
#pragma omp parallel for schedule(dynamic)
        for (int position = 0; position < kPositions; ++position)
            table_->gemm_packed_a_f32(false, out_channels_, static_cast<int>(tiles), in_channels_, 1.0f,
                                      packed_weights_.data() + position * packed_floats_,
                                      transformed_input + position * in_channels_ * tiles, static_cast<int>(tiles),
                                      0.0f, products + position * out_channels_ * tiles, static_cast<int>(tiles), {});
        // Y = A^T M A per tile, plus bias and ReLU, cropped to the output size.
#pragma omp parallel for collapse(2) schedule(static)
        for (int n = 0; n < count; ++n) {
            for (int co = 0; co < out_channels_; ++co) {
                const float* in = products + static_cast<std::ptrdiff_t>(co) * tiles + n * tiles_per_image;
                float* plane = y + (static_cast<std::size_t>(first + n) * out_channels_ + co) * out_plane;
                for (int ty = 0; ty < tile_rows; ++ty)
                    transform_output_row(in + ty * tile_columns, static_cast<std::ptrdiff_t>(out_channels_) * tiles,
                                         tile_columns, bias ? bias[co] : 0.0f, relu, plane, out_height, out_width,
                                         2 * ty);
            }
        }
    }
}

void winograd_weight_gradient(const KernelTable& table, const float* x, const float* dy, int batch, int height,
                              int width, int padding, int out_channels, int in_channels, float* dw) {
    if (batch <= 0) return;  // no tiles: nothing to add (and the scratch below would hold an old sum)
    const TileGrid grid(height, width, padding);
    const int tiles_per_image = grid.tiles_per_image();
    const int chunk = grid.chunk(batch, static_cast<std::size_t>(kPositions) * (in_channels + out_channels));
    float* transformed_input = kernel_workspace(KernelWorkspace::WinogradInput,
                                                static_cast<std::size_t>(kPositions) * in_channels * tiles_per_image * chunk);
    float* transformed_gradient = kernel_workspace(
        KernelWorkspace::WinogradProduct, static_cast<std::size_t>(kPositions) * out_channels * tiles_per_image * chunk);
    const std::size_t pairs = static_cast<std::size_t>(out_channels) * in_channels;
    // 16 matrices of Cout x Cin, summed over every chunk. Reached through a plain pointer: inside the parallel
    // loops below the name of a thread_local would mean each worker thread's own (empty) copy.
    static thread_local AlignedFloats du_storage;
    du_storage.resize(kPositions * pairs);
    float* du = du_storage.data();
    const std::size_t out_plane = static_cast<std::size_t>(grid.out_height) * grid.out_width;

    for (int first = 0; first < batch; first += chunk) {
        const int count = std::min(chunk, batch - first);
        const std::ptrdiff_t tiles = static_cast<std::ptrdiff_t>(count) * tiles_per_image;
        transform_input_chunk(grid, x, in_channels, first, count, transformed_input);
#pragma omp parallel for collapse(2) schedule(static)
        for (int n = 0; n < count; ++n) {
            for (int co = 0; co < out_channels; ++co) {
                const float* plane = dy + (static_cast<std::size_t>(first + n) * out_channels + co) * out_plane;
                float* out = transformed_gradient + static_cast<std::ptrdiff_t>(co) * tiles + n * tiles_per_image;
                for (int ty = 0; ty < grid.tile_rows; ++ty)
                    transform_output_gradient_row(plane, grid.out_height, grid.out_width, 2 * ty, grid.tile_columns,
                                                  out_channels * tiles, out + ty * grid.tile_columns);
            }
        }
        // dU[position] (+)= dM[position] (Cout x tiles) * V[position]^T (tiles x Cin), one GEMM per thread.
#pragma omp parallel for schedule(dynamic)
        for (int position = 0; position < kPositions; ++position)
            table.gemm_f32(false, true, out_channels, in_channels, static_cast<int>(tiles), 1.0f,
                           transformed_gradient + position * out_channels * tiles, static_cast<int>(tiles),
                           transformed_input + position * in_channels * tiles, static_cast<int>(tiles),
                           first == 0 ? 0.0f : 1.0f, du + position * pairs, in_channels, {});
    }
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t pair = 0; pair < static_cast<std::ptrdiff_t>(pairs); ++pair) {
        float gathered[kPositions];
        for (int position = 0; position < kPositions; ++position) gathered[position] = du[position * pairs + pair];
        accumulate_weight_gradient(gathered, dw + pair * 9);
    }
}

}  // namespace edgeqc
