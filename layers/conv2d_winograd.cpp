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

// V = B^T d B with B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
void transform_input_tile(const float (&d)[4][4], float (&v)[kPositions]) {
    float t[4][4];
    for (int j = 0; j < 4; ++j) {
        t[0][j] = d[0][j] - d[2][j];
        t[1][j] = d[1][j] + d[2][j];
        t[2][j] = d[2][j] - d[1][j];
        t[3][j] = d[1][j] - d[3][j];
    }
    for (int i = 0; i < 4; ++i) {
        v[i * 4 + 0] = t[i][0] - t[i][2];
        v[i * 4 + 1] = t[i][1] + t[i][2];
        v[i * 4 + 2] = t[i][2] - t[i][1];
        v[i * 4 + 3] = t[i][1] - t[i][3];
    }
}

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

// Y = A^T m A with A^T = [1 1 1 0; 0 1 -1 -1].
void transform_output_tile(const float (&m)[kPositions], float (&y)[2][2]) {
    float q[2][4];
    for (int j = 0; j < 4; ++j) {
        q[0][j] = m[j] + m[4 + j] + m[8 + j];
        q[1][j] = m[4 + j] - m[8 + j] - m[12 + j];
    }
    for (int i = 0; i < 2; ++i) {
        y[i][0] = q[i][0] + q[i][1] + q[i][2];
        y[i][1] = q[i][1] - q[i][2] - q[i][3];
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
    const int out_height = height + 2 * padding - 2, out_width = width + 2 * padding - 2;
    const int tile_rows = (out_height + 1) / 2, tile_columns = (out_width + 1) / 2;
    const int tiles_per_image = tile_rows * tile_columns;
    const std::size_t floats_per_image =
        static_cast<std::size_t>(kPositions) * (in_channels_ + out_channels_) * tiles_per_image;
    const int chunk = static_cast<int>(
        std::clamp<std::size_t>(kScratchBudgetFloats / floats_per_image, 1, static_cast<std::size_t>(batch)));
    float* transformed_input = kernel_workspace(KernelWorkspace::WinogradInput,
                                                static_cast<std::size_t>(kPositions) * in_channels_ * tiles_per_image * chunk);
    float* products = kernel_workspace(KernelWorkspace::WinogradProduct,
                                       static_cast<std::size_t>(kPositions) * out_channels_ * tiles_per_image * chunk);
    const std::size_t in_plane = static_cast<std::size_t>(height) * width;
    const std::size_t out_plane = static_cast<std::size_t>(out_height) * out_width;

    for (int first = 0; first < batch; first += chunk) {
        const int count = std::min(chunk, batch - first);
        const std::ptrdiff_t tiles = static_cast<std::ptrdiff_t>(count) * tiles_per_image;
        // V: 16 matrices of Cin x tiles.
#pragma omp parallel for collapse(2) schedule(static)
        for (int n = 0; n < count; ++n) {
            for (int c = 0; c < in_channels_; ++c) {
                const float* plane = x + (static_cast<std::size_t>(first + n) * in_channels_ + c) * in_plane;
                float* out = transformed_input + static_cast<std::ptrdiff_t>(c) * tiles + n * tiles_per_image;
                for (int ty = 0; ty < tile_rows; ++ty) {
                    for (int tx = 0; tx < tile_columns; ++tx) {
                        float d[4][4];
                        for (int i = 0; i < 4; ++i) {
                            const int iy = 2 * ty - padding + i;
                            for (int j = 0; j < 4; ++j) {
                                const int ix = 2 * tx - padding + j;
                                d[i][j] = iy >= 0 && iy < height && ix >= 0 && ix < width
                                              ? plane[static_cast<std::size_t>(iy) * width + ix]
                                              : 0.0f;
                            }
                        }
                        float v[kPositions];
                        transform_input_tile(d, v);
                        const int tile = ty * tile_columns + tx;
                        for (int position = 0; position < kPositions; ++position)
                            out[position * in_channels_ * tiles + tile] = v[position];
                    }
                }
            }
        }
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
                const float shift = bias ? bias[co] : 0.0f;
                for (int ty = 0; ty < tile_rows; ++ty) {
                    for (int tx = 0; tx < tile_columns; ++tx) {
                        const int tile = ty * tile_columns + tx;
                        float m[kPositions];
                        for (int position = 0; position < kPositions; ++position)
                            m[position] = in[position * out_channels_ * tiles + tile];
                        float out[2][2];
                        transform_output_tile(m, out);
                        for (int i = 0; i < 2; ++i) {
                            const int oy = 2 * ty + i;
                            if (oy >= out_height) break;
                            for (int j = 0; j < 2; ++j) {
                                const int ox = 2 * tx + j;
                                if (ox >= out_width) break;
                                const float value = out[i][j] + shift;
                                plane[static_cast<std::size_t>(oy) * out_width + ox] = relu ? std::max(value, 0.0f) : value;
                            }
                        }
                    }
                }
            }
        }
    }
}

}  // namespace edgeqc
