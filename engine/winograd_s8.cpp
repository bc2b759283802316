// The int8 Winograd convolution: weight transform, input transform, 16 int16 GEMMs, output transform.
#include "engine/winograd_s8.hpp"

#include <omp.h>

#include <algorithm>

#include "engine/kernels/gemm_int.hpp"
#include "engine/winograd_f32.hpp"

namespace edgeqc {

namespace {

constexpr int kPositions = kWinogradPositions;

std::size_t aligned_bytes(std::size_t bytes) { return (bytes + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment; }

// U' = (2G) g (2G)^T with 2G = [2 0 0; 1 1 1; 1 -1 1; 0 0 2]: the 16 positions of one 3x3 kernel.
void transform_weights(const std::int8_t* g, std::int16_t (&u)[kPositions]) {
    int s[4][3];  // (2G) g
    for (int j = 0; j < 3; ++j) {
        s[0][j] = 2 * g[j];
        s[1][j] = g[j] + g[3 + j] + g[6 + j];
        s[2][j] = g[j] - g[3 + j] + g[6 + j];
        s[3][j] = 2 * g[6 + j];
    }
    for (int i = 0; i < 4; ++i) {
        u[4 * i + 0] = static_cast<std::int16_t>(2 * s[i][0]);
        u[4 * i + 1] = static_cast<std::int16_t>(s[i][0] + s[i][1] + s[i][2]);
        u[4 * i + 2] = static_cast<std::int16_t>(s[i][0] - s[i][1] + s[i][2]);
        u[4 * i + 3] = static_cast<std::int16_t>(2 * s[i][2]);
    }
}

// Scratch layout of forward(): V (16 x Cin x tiles int16), M (16 x Cout x tiles int32), then per thread a GEMM
// workspace or two output rows of sums, whichever is larger.
struct Layout {
    std::size_t input = 0, products = 0, per_thread = 0;
};

Layout layout_of(const KernelTable& table, const WinogradTileGrid& grid, int in_channels, int out_channels) {
    const std::size_t tiles = static_cast<std::size_t>(grid.tiles_per_image());
    Layout l;
    l.input = aligned_bytes(kPositions * static_cast<std::size_t>(in_channels) * tiles * sizeof(std::int16_t));
    l.products = aligned_bytes(kPositions * static_cast<std::size_t>(out_channels) * tiles * sizeof(std::int32_t));
    l.per_thread = aligned_bytes(std::max(table.gemm_workspace_s16(out_channels, static_cast<int>(tiles), in_channels),
                                          2 * static_cast<std::size_t>(grid.out_width + 2) * sizeof(std::int32_t)));
    return l;
}

}  // namespace

WinogradConv3x3S8::WinogradConv3x3S8(const KernelTable& table, const std::int8_t* weights, int out_channels,
                                     int in_channels)
    : table_(table), out_channels_(out_channels), in_channels_(in_channels) {
    const std::size_t plane = static_cast<std::size_t>(out_channels) * in_channels;
    std::vector<std::int16_t> transformed(kPositions * plane);
    for (std::size_t pair = 0; pair < plane; ++pair) {
        std::int16_t u[kPositions];
        transform_weights(weights + pair * 9, u);
        for (int position = 0; position < kPositions; ++position) transformed[position * plane + pair] = u[position];
    }
    packed_elements_ = table.gemm_pack_a_s16(out_channels, in_channels, nullptr, in_channels, nullptr);
    packed_weights_.assign(packed_elements_ * kPositions, 0);
    for (int position = 0; position < kPositions; ++position)
        table.gemm_pack_a_s16(out_channels, in_channels, transformed.data() + position * plane, in_channels,
                              packed_weights_.data() + position * packed_elements_);
}

std::size_t WinogradConv3x3S8::workspace_bytes(int height, int width, int padding, int threads) const {
    const Layout l = layout_of(table_, WinogradTileGrid(height, width, padding), in_channels_, out_channels_);
    return l.input + l.products + l.per_thread * static_cast<std::size_t>(std::max(threads, 1));
}

void WinogradConv3x3S8::forward(const std::uint8_t* x, int batch, int height, int width, int padding, int zero_point,
                                const IntegerGemmEpilogue& epilogue, void* y, unsigned char* workspace,
                                int threads) const {
    const WinogradTileGrid grid(height, width, padding);
    const Layout l = layout_of(table_, grid, in_channels_, out_channels_);
    const int tile_rows = grid.tile_rows, tile_columns = grid.tile_columns, out_width = grid.out_width;
    const std::ptrdiff_t tiles = grid.tiles_per_image();
    auto* v = reinterpret_cast<std::int16_t*>(workspace);
    auto* m = reinterpret_cast<std::int32_t*>(workspace + l.input);
    unsigned char* thread_scratch = workspace + l.input + l.products;
    const std::size_t in_plane = static_cast<std::size_t>(height) * width;
    const std::size_t out_plane = static_cast<std::size_t>(grid.out_height) * out_width;
    const std::size_t output_size = epilogue.quantized ? 1 : sizeof(float);

    for (int n = 0; n < batch; ++n) {
        // V = B^T d B per channel and tile, d = q - zero point (0 outside the image).
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int c = 0; c < in_channels_; ++c) {
            const std::uint8_t* plane = x + (static_cast<std::size_t>(n) * in_channels_ + c) * in_plane;
            const auto at = [&](int row, int column) {
                return row < 0 || row >= height || column < 0 || column >= width
                           ? 0
                           : plane[static_cast<std::size_t>(row) * width + column] - zero_point;
            };
            for (int ty = 0; ty < tile_rows; ++ty)
                for (int tx = 0; tx < tile_columns; ++tx) {
                    int d[4][4], t[4][4];
                    for (int i = 0; i < 4; ++i)
                        for (int j = 0; j < 4; ++j) d[i][j] = at(2 * ty - padding + i, 2 * tx - padding + j);
                    for (int j = 0; j < 4; ++j) {
                        t[0][j] = d[0][j] - d[2][j];
                        t[1][j] = d[1][j] + d[2][j];
                        t[2][j] = d[2][j] - d[1][j];
                        t[3][j] = d[1][j] - d[3][j];
                    }
                    std::int16_t* out = v + static_cast<std::ptrdiff_t>(c) * tiles + ty * tile_columns + tx;
                    const std::ptrdiff_t stride = static_cast<std::ptrdiff_t>(in_channels_) * tiles;
                    for (int i = 0; i < 4; ++i) {
                        out[(4 * i + 0) * stride] = static_cast<std::int16_t>(t[i][0] - t[i][2]);
                        out[(4 * i + 1) * stride] = static_cast<std::int16_t>(t[i][1] + t[i][2]);
                        out[(4 * i + 2) * stride] = static_cast<std::int16_t>(t[i][2] - t[i][1]);
                        out[(4 * i + 3) * stride] = static_cast<std::int16_t>(t[i][1] - t[i][3]);
                    }
                }
        }
        // M = U' V for each of the 16 positions: Cout x tiles, one whole GEMM per thread.
#pragma omp parallel for schedule(dynamic) num_threads(threads)
        for (int position = 0; position < kPositions; ++position) {
            IntegerGemmEpilogue sums;
            sums.sums = m + position * out_channels_ * tiles;
            sums.ldc = static_cast<int>(tiles);
            table_.gemm_packed_a_s16(false, out_channels_, static_cast<int>(tiles), in_channels_,
                                     packed_weights_.data() + position * packed_elements_,
                                     v + position * in_channels_ * tiles, static_cast<int>(tiles), sums,
                                     thread_scratch + static_cast<std::size_t>(omp_get_thread_num()) * l.per_thread);
        }
        // Y = A^T M A / 4 per tile, two output rows at a time, then the epilogue on each row.
        IntegerGemmEpilogue e = epilogue;
        e.ldc = static_cast<int>(out_plane);
        unsigned char* image_out = static_cast<unsigned char*>(y) + static_cast<std::size_t>(n) * out_channels_ * out_plane * output_size;
        if (e.quantized) e.quantized = image_out;
        else e.real = reinterpret_cast<float*>(image_out);
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int co = 0; co < out_channels_; ++co) {
            auto* rows = reinterpret_cast<std::int32_t*>(thread_scratch + static_cast<std::size_t>(omp_get_thread_num()) * l.per_thread);
            std::int32_t* row_pair[2] = {rows, rows + 2 * tile_columns};
            const std::int32_t* in = m + static_cast<std::ptrdiff_t>(co) * tiles;
            const std::ptrdiff_t stride = static_cast<std::ptrdiff_t>(out_channels_) * tiles;
            for (int ty = 0; ty < tile_rows; ++ty) {
                for (int tx = 0; tx < tile_columns; ++tx) {
                    // Unsigned: the sums of products wrap where int32 would overflow; the result does not.
                    std::uint32_t p[4][4], s[2][4];
                    for (int k = 0; k < kPositions; ++k)
                        p[k / 4][k % 4] = static_cast<std::uint32_t>(in[k * stride + ty * tile_columns + tx]);
                    for (int j = 0; j < 4; ++j) {
                        s[0][j] = p[0][j] + p[1][j] + p[2][j];
                        s[1][j] = p[1][j] - p[2][j] - p[3][j];
                    }
                    for (int i = 0; i < 2; ++i) {
                        row_pair[i][2 * tx] = static_cast<std::int32_t>(s[i][0] + s[i][1] + s[i][2]) / 4;
                        row_pair[i][2 * tx + 1] = static_cast<std::int32_t>(s[i][1] - s[i][2] - s[i][3]) / 4;
                    }
                }
                for (int i = 0; i < 2 && 2 * ty + i < grid.out_height; ++i)
                    int_gemm_detail::finish_sums(row_pair[i], out_width, co, (2 * ty + i) * out_width, e);
            }
        }
    }
}

}  // namespace edgeqc
