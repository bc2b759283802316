// The int8 Winograd convolution: weight transform, input transform, 16 int16 GEMMs, output transform.
#include "engine/winograd_s8.hpp"

#include <omp.h>

#include <algorithm>

#include "engine/kernels/gemm_int.hpp"
#include "engine/winograd_f32.hpp"

namespace edgeqc {

namespace {

constexpr int kPositions = kWinogradPositions;

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

}  // namespace

// The tiles of one image as the transforms lay them out: each row of tiles holds one spare tile past its last, so
// that tile g of every row together sits at 2g in the rows the transforms read (rows of 2 x tile_columns + 2 values,
// two per tile), and every transform step is one loop over the whole image. The spare tiles read the padded row's
// last two values and a neighbour's: their products are computed and never stored.
struct WinogradConv3x3S8::Tiles {
    int rows, columns;  // rows of tiles; tiles a row, the spare one included
    explicit Tiles(const WinogradTileGrid& grid) : rows(grid.tile_rows), columns(grid.tile_columns + 1) {}
    int row_length() const { return 2 * columns; }  // values in a padded input row, or an output row of tiles
    int count() const { return rows * columns; }
};

// How forward() carves its workspace: V (16 x Cin x tiles int16), V packed for the GEMM (16 positions), then per
// thread a block's products (16 x block rows x tiles int32) and the transforms' rows: the input transform's padded
// plane and its 4 rows of tiles combined vertically (int16), or the output transform's 8 of s and 2 of y (int32).
struct WinogradConv3x3S8::Layout {
    std::size_t input = 0, packed_input = 0, packed_position = 0, products = 0, rows = 0;
    std::size_t per_thread() const { return products + rows; }
};

WinogradConv3x3S8::Layout WinogradConv3x3S8::layout() const {
    const Tiles tiles(WinogradTileGrid(WinogradTile::F2x2, height_, width_, padding_));
    const auto count = static_cast<std::size_t>(tiles.count());
    Layout l;
    l.input = aligned_bytes(kPositions * static_cast<std::size_t>(in_channels_) * count * sizeof(std::int16_t));
    l.packed_position = table_.gemm_pack_b_s16(false, tiles.count(), in_channels_, nullptr, 0, nullptr);
    l.packed_input = aligned_bytes(kPositions * l.packed_position * sizeof(std::int16_t));
    l.products = aligned_bytes(kPositions * static_cast<std::size_t>(block_rows_) * count * sizeof(std::int32_t));
    const std::size_t plane = (2 * static_cast<std::size_t>(tiles.rows) + 2) * tiles.row_length();
    l.rows = aligned_bytes(std::max((plane + 8 * count + 2) * sizeof(std::int16_t), 12 * count * sizeof(std::int32_t)));
    return l;
}

WinogradConv3x3S8::WinogradConv3x3S8(const KernelTable& table, const std::int8_t* weights, int out_channels,
                                     int in_channels, int height, int width, int padding)
    : table_(table), out_channels_(out_channels), in_channels_(in_channels), height_(height), width_(width),
      padding_(padding) {
    // A block's products, 16 x rows x tiles int32, about 192 KiB (they stay in L2 for the output transform), in
    // whole 8s of rows; at least four blocks when there are channels enough, so that threads share the work.
    // (The image's tiles, not counting the transforms' spare ones: counting them changed conv4's blocks from 72 rows
    // to 64, which pad to 72 on a 12-row tile and held 1 MB more weights.)
    const int tiles = WinogradTileGrid(WinogradTile::F2x2, height, width, padding).tiles_per_image();
    const int cache_rows = std::max(8, 3072 / std::max(tiles, 1) / 8 * 8);
    block_rows_ = std::min({cache_rows, std::max(8, (out_channels + 31) / 32 * 8), out_channels});
    const std::size_t plane = static_cast<std::size_t>(out_channels) * in_channels;
    std::size_t total = 0;
    for (int first = 0; first < out_channels; first += block_rows_) {
        const int rows = std::min(block_rows_, out_channels - first);
        block_offsets_.push_back(total);
        block_position_elements_.push_back(table.gemm_pack_a_s16(rows, in_channels, nullptr, in_channels, nullptr));
        total += kPositions * block_position_elements_.back();
    }
    packed_weights_.assign(total, 0);
    // U' four positions (one row of the transformed tile) at a time, so that preparing a 512 x 512 layer holds
    // 2 MB of unpacked matrices rather than 8 MB (inference with int8 models must fit small boards).
    std::vector<std::int16_t> transformed(4 * plane);
    for (int row = 0; row < 4; ++row) {
        for (std::size_t pair = 0; pair < plane; ++pair) {
            std::int16_t u[kPositions];
            transform_weights(weights + pair * 9, u);
            for (int column = 0; column < 4; ++column) transformed[column * plane + pair] = u[4 * row + column];
        }
        for (int column = 0; column < 4; ++column)
            for (std::size_t block = 0; block < block_offsets_.size(); ++block) {
                const int first = static_cast<int>(block) * block_rows_;
                table.gemm_pack_a_s16(std::min(block_rows_, out_channels - first), in_channels,
                                      transformed.data() + column * plane + static_cast<std::size_t>(first) * in_channels,
                                      in_channels,
                                      packed_weights_.data() + block_offsets_[block] +
                                          (4 * row + column) * block_position_elements_[block]);
            }
    }
}

std::size_t WinogradConv3x3S8::workspace_bytes(int threads) const {
    const Layout l = layout();
    return l.input + l.packed_input + l.per_thread() * static_cast<std::size_t>(std::max(threads, 1));
}

void WinogradConv3x3S8::forward(const std::uint8_t* x, int batch, int zero_point, const IntegerGemmEpilogue& epilogue,
                                void* y, unsigned char* workspace, int threads) const {
    const int height = height_, width = width_, padding = padding_;
    const WinogradTileGrid grid(WinogradTile::F2x2, height, width, padding);
    const Tiles tiles(grid);
    const Layout l = layout();
    const int count = tiles.count(), row_length = tiles.row_length(), out_width = grid.out_width;
    const int padded_rows = 2 * tiles.rows + 2;
    auto* v = reinterpret_cast<std::int16_t*>(workspace);
    auto* packed_v = reinterpret_cast<std::int16_t*>(workspace + l.input);
    unsigned char* thread_scratch = workspace + l.input + l.packed_input;
    const std::size_t in_plane = static_cast<std::size_t>(height) * width;
    const std::size_t out_plane = static_cast<std::size_t>(grid.out_height) * out_width;
    const std::size_t output_size = epilogue.quantized ? 1 : sizeof(float);

    for (int n = 0; n < batch; ++n) {
        // V = B^T d B per channel and tile, d = q (the zero point outside the image, as im2col pads): the plane with
        // its padding, then per row of tiles the four rows B^T combines (vertically), then B across the tiles of
        // every row at once (each step a loop the compiler vectorizes).
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int c = 0; c < in_channels_; ++c) {
            auto* padded = reinterpret_cast<std::int16_t*>(
                thread_scratch + static_cast<std::size_t>(omp_get_thread_num()) * l.per_thread() + l.products);
            std::int16_t* t[4];
            for (int i = 0; i < 4; ++i) t[i] = padded + padded_rows * row_length + i * 2 * count;
            t[3][2 * count] = t[3][2 * count + 1] = 0;  // read by the last spare tile alone
            const std::uint8_t* plane = x + (static_cast<std::size_t>(n) * in_channels_ + c) * in_plane;
            const int first_row = std::max(0, padding), last_row = std::min(padded_rows, height + padding);
            const int first = std::max(0, padding), last = std::min(row_length, width + padding);
            const auto pad = static_cast<std::int16_t>(zero_point);
            for (int row = 0; row < padded_rows; ++row) {  // each value written once: the image's, or the padding
                std::int16_t* __restrict out = padded + row * row_length;
                if (row < first_row || row >= last_row) {
                    std::fill_n(out, row_length, pad);
                    continue;
                }
                const std::uint8_t* __restrict source = plane + static_cast<std::size_t>(row - padding) * width;
                std::fill_n(out, first, pad);
                for (int column = first; column < last; ++column) out[column] = source[column - padding];
                std::fill(out + last, out + row_length, pad);
            }
            for (int ty = 0; ty < tiles.rows; ++ty) {
                const std::int16_t* __restrict d0 = padded + 2 * ty * row_length;
                const std::int16_t *__restrict d1 = d0 + row_length, *__restrict d2 = d1 + row_length,
                                  *__restrict d3 = d2 + row_length;
                std::int16_t *__restrict t0 = t[0] + ty * row_length, *__restrict t1 = t[1] + ty * row_length,
                                  *__restrict t2 = t[2] + ty * row_length, *__restrict t3 = t[3] + ty * row_length;
                for (int column = 0; column < row_length; ++column) {
                    t0[column] = static_cast<std::int16_t>(d0[column] - d2[column]);
                    t1[column] = static_cast<std::int16_t>(d1[column] + d2[column]);
                    t2[column] = static_cast<std::int16_t>(d2[column] - d1[column]);
                    t3[column] = static_cast<std::int16_t>(d1[column] - d3[column]);
                }
            }
            const std::ptrdiff_t stride = static_cast<std::ptrdiff_t>(in_channels_) * count;
            std::int16_t* out = v + static_cast<std::ptrdiff_t>(c) * count;
            // Tile g reads values 2g to 2g + 3 of its row of tiles; the last (spare) tile reads two past the rows:
            // the next vertical combination's first two, or after the last one (t[3]) two zeros.
            for (int i = 0; i < 4; ++i) {
                const std::int16_t* __restrict r = t[i];
                std::int16_t* __restrict o0 = out + (4 * i) * stride;
                std::int16_t* __restrict o1 = o0 + stride;
                std::int16_t* __restrict o2 = o1 + stride;
                std::int16_t* __restrict o3 = o2 + stride;
                for (int g = 0; g < count; ++g) {
                    o0[g] = static_cast<std::int16_t>(r[2 * g] - r[2 * g + 2]);
                    o1[g] = static_cast<std::int16_t>(r[2 * g + 1] + r[2 * g + 2]);
                    o2[g] = static_cast<std::int16_t>(r[2 * g + 2] - r[2 * g + 1]);
                    o3[g] = static_cast<std::int16_t>(r[2 * g + 1] - r[2 * g + 3]);
                }
            }
        }
        // V packed once per position for the GEMMs of every block.
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int position = 0; position < kPositions; ++position)
            table_.gemm_pack_b_s16(false, count, in_channels_,
                                   v + static_cast<std::ptrdiff_t>(position) * in_channels_ * count, count,
                                   packed_v + position * l.packed_position);
        IntegerGemmEpilogue e = epilogue;
        e.ldc = static_cast<int>(out_plane);
        unsigned char* image_out = static_cast<unsigned char*>(y) + static_cast<std::size_t>(n) * out_channels_ * out_plane * output_size;
        if (e.quantized) e.quantized = image_out;
        else e.real = reinterpret_cast<float*>(image_out);
        // Per block of output channels, on one thread: M = U' V for the 16 positions, then per output channel
        // Y = A^T M A / 4 over all its tiles at once, and the epilogue on each output row.
        const int blocks = static_cast<int>(block_offsets_.size());
#pragma omp parallel for schedule(dynamic) num_threads(threads)
        for (int block = 0; block < blocks; ++block) {
            unsigned char* scratch = thread_scratch + static_cast<std::size_t>(omp_get_thread_num()) * l.per_thread();
            auto* m = reinterpret_cast<std::int32_t*>(scratch);
            const int first = block * block_rows_, rows = std::min(block_rows_, out_channels_ - first);
            const std::ptrdiff_t stride = static_cast<std::ptrdiff_t>(rows) * count;
            for (int position = 0; position < kPositions; ++position) {
                IntegerGemmEpilogue sums;
                sums.sums = m + position * stride;
                sums.ldc = count;
                table_.gemm_packed_ab_s16(rows, count, in_channels_,
                                          packed_weights_.data() + block_offsets_[static_cast<std::size_t>(block)] +
                                              position * block_position_elements_[static_cast<std::size_t>(block)],
                                          packed_v + position * l.packed_position, sums);
            }
            // Unsigned: the sums of products wrap where int32 would overflow; the result does not.
            auto* row_scratch = reinterpret_cast<std::uint32_t*>(scratch + l.products);
            std::uint32_t* s[2][4];
            for (int i = 0; i < 2; ++i)
                for (int j = 0; j < 4; ++j) s[i][j] = row_scratch + (4 * i + j) * count;
            std::uint32_t* y_rows[2] = {row_scratch + 8 * count, row_scratch + 10 * count};
            for (int co = first; co < first + rows; ++co) {
                const auto* in =
                    reinterpret_cast<const std::uint32_t*>(m + static_cast<std::ptrdiff_t>(co - first) * count);
                for (int j = 0; j < 4; ++j) {  // s = A^T M
                    const std::uint32_t *__restrict p0 = in + j * stride, *__restrict p1 = in + (4 + j) * stride,
                                       *__restrict p2 = in + (8 + j) * stride, *__restrict p3 = in + (12 + j) * stride;
                    std::uint32_t *__restrict s0 = s[0][j], *__restrict s1 = s[1][j];
                    for (int g = 0; g < count; ++g) {
                        s0[g] = p0[g] + p1[g] + p2[g];
                        s1[g] = p1[g] - p2[g] - p3[g];
                    }
                }
                for (int i = 0; i < 2; ++i) {  // y = s A / 4 (exact), row i of every tile
                    const std::uint32_t *__restrict a = s[i][0], *__restrict b = s[i][1], *__restrict c = s[i][2],
                                       *__restrict d = s[i][3];
                    auto* __restrict out = reinterpret_cast<std::int32_t*>(y_rows[i]);
                    for (int g = 0; g < count; ++g) {
                        out[2 * g] = static_cast<std::int32_t>(a[g] + b[g] + c[g]) / 4;
                        out[2 * g + 1] = static_cast<std::int32_t>(b[g] - c[g] - d[g]) / 4;
                    }
                }
                for (int ty = 0; ty < tiles.rows; ++ty)
                    for (int i = 0; i < 2 && 2 * ty + i < grid.out_height; ++i)
                        int_gemm_detail::finish_sums(reinterpret_cast<std::int32_t*>(y_rows[i]) + ty * row_length,
                                                     out_width, co, (2 * ty + i) * out_width, e);
            }
        }
    }
}

}  // namespace edgeqc
