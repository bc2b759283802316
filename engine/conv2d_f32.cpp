// The im2col transform and the packed inference convolution.
#include "engine/conv2d_f32.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace edgeqc {

template <class T>
void im2col(const ConvGeometry& g, const T* x, int count, T* col, T padding) {
    const int positions = g.positions();
    const std::size_t columns = static_cast<std::size_t>(count) * positions;
    const std::size_t image_size = static_cast<std::size_t>(g.channels) * g.height * g.width;
#pragma omp parallel for schedule(static) if (!omp_in_parallel())  // inside an image-per-thread loop: alone
    for (int row = 0; row < g.rows(); ++row) {
        const int c = row / (g.kernel * g.kernel);
        const int ky = (row / g.kernel) % g.kernel;
        const int kx = row % g.kernel;
        T* out = col + static_cast<std::size_t>(row) * columns;
        for (int n = 0; n < count; ++n) {
            const T* plane = x + n * image_size + static_cast<std::size_t>(c) * g.height * g.width;
            for (int oy = 0; oy < g.out_height; ++oy) {
                const int iy = oy * g.stride - g.padding + ky;
                if (iy < 0 || iy >= g.height) {
                    std::fill(out, out + g.out_width, padding);
                    out += g.out_width;
                    continue;
                }
                const T* source_row = plane + static_cast<std::size_t>(iy) * g.width;
                if (g.stride == 1) {  // padding, a contiguous run of the row, padding
                    const int first = std::clamp(g.padding - kx, 0, g.out_width);
                    const int last = std::clamp(g.width + g.padding - kx, first, g.out_width);
                    out = std::fill_n(out, first, padding);
                    out = std::copy(source_row + first - g.padding + kx, source_row + last - g.padding + kx, out);
                    out = std::fill_n(out, g.out_width - last, padding);
                    continue;
                }
                for (int ox = 0; ox < g.out_width; ++ox) {
                    const int ix = ox * g.stride - g.padding + kx;
                    *out++ = (ix >= 0 && ix < g.width) ? source_row[ix] : padding;
                }
            }
        }
    }
}

template void im2col<float>(const ConvGeometry&, const float*, int, float*, float);
template void im2col<std::uint8_t>(const ConvGeometry&, const std::uint8_t*, int, std::uint8_t*, std::uint8_t);

PackedConv2dF32::PackedConv2dF32(const KernelTable& table, const ConvGeometry& geometry, int out_channels,
                                 const float* weights, const float* bias, bool relu, int max_batch, int threads,
                                 ConvAlgorithmF32 algorithm)
    : table_(table), geometry_(geometry), out_channels_(out_channels), relu_(relu) {
    if (bias) bias_.assign(bias, bias + out_channels);
    if (algorithm != ConvAlgorithmF32::Im2col && winograd_suits(geometry)) {
        WinogradTile tile = algorithm == ConvAlgorithmF32::WinogradF4x4 ? WinogradTile::F4x4 : WinogradTile::F2x2;
        if (algorithm == ConvAlgorithmF32::Auto)
            tile = winograd_tile_for(table, geometry.channels, out_channels, geometry.height, geometry.width,
                                     geometry.padding, max_batch, WinogradWeights::PreparedOnce);
        const WinogradTileGrid grid(tile, geometry.height, geometry.width, geometry.padding);
        const bool narrow = winograd_narrow_products(table, grid, max_batch, WinogradWeights::PreparedOnce);
        winograd_ = std::make_unique<WinogradConv3x3>();
        winograd_->prepare(table, weights, out_channels, geometry.channels, tile, threads, narrow);
        return;
    }
    // The convolution GEMM from the image reads A packed its own way; the GEMM on im2col as gemm_pack_a_f32 packs it.
    const int rows = geometry.rows();
    if (packs_from_image(table, geometry)) {
        packed_weights_.resize(table.gemm_conv3x3_pack_a_f32(out_channels, geometry.channels, nullptr, nullptr));
        table.gemm_conv3x3_pack_a_f32(out_channels, geometry.channels, weights, packed_weights_.data());
        return;
    }
    packed_weights_.resize(table.gemm_pack_a_f32(false, out_channels, rows, nullptr, rows, nullptr));
    table.gemm_pack_a_f32(false, out_channels, rows, weights, rows, packed_weights_.data());
}

bool PackedConv2dF32::fuse_max_pool_2x2() {
    pool_ = pool_ || winograd_ != nullptr;
    return pool_;
}

ConvAlgorithmF32 PackedConv2dF32::algorithm() const {
    if (!winograd_) return ConvAlgorithmF32::Im2col;
    return winograd_->tile() == WinogradTile::F4x4 ? ConvAlgorithmF32::WinogradF4x4 : ConvAlgorithmF32::WinogradF2x2;
}

std::size_t PackedConv2dF32::packed_bytes() const {
    return winograd_ ? winograd_->packed_bytes() : packed_weights_.size() * sizeof(float);
}

std::size_t PackedConv2dF32::workspace_floats(int batch, int threads) const {
    const ConvGeometry& g = geometry_;
    if (winograd_) return winograd_->workspace_floats(batch, g.height, g.width, g.padding, threads);
    // The most any thread count up to `threads` needs: the images a product, and with them a product's workspace,
    // grow as the threads fall.
    std::size_t floats = 0;
    for (int t = 1; t <= threads; ++t)
        floats = std::max(floats, gemm_workspace_floats(gemm_images(batch, t)) *
                                      static_cast<std::size_t>(images_in_flight(batch, t)));
    return floats;
}

// Several images a GEMM where B is read from them, else one (im2col makes one image's columns).
int PackedConv2dF32::gemm_images(int batch, int threads) const {
    return packs_from_image(table_, geometry_) ? edgeqc::images_per_gemm(geometry_.positions(), batch, threads) : 1;
}

// Floats a GEMM of `images` in flight needs: the GEMM's from the images, or the columns and then the GEMM's packing
// space.
std::size_t PackedConv2dF32::gemm_workspace_floats(int images) const {
    const ConvGeometry& g = geometry_;
    if (packs_from_image(table_, g))
        return aligned_floats(table_.gemm_conv3x3_workspace_f32(out_channels_, g.channels, g.height, g.width, images));
    return aligned_floats(static_cast<std::size_t>(g.rows()) * g.positions()) +
           aligned_floats(table_.gemm_workspace_f32(out_channels_, g.positions(), g.rows(), true));
}

void PackedConv2dF32::run(const float* x, int batch, float* y, float* workspace, int threads) const {
    const ConvGeometry& g = geometry_;
    const float* bias = bias_.empty() ? nullptr : bias_.data();
    if (winograd_) {
        winograd_->forward(x, batch, g.height, g.width, g.padding, bias, relu_, pool_, y, workspace, threads);
        return;
    }
    const std::size_t in_image = static_cast<std::size_t>(g.channels) * g.height * g.width;
    const std::size_t out_image = static_cast<std::size_t>(out_channels_) * g.positions();
    // C is the images' output itself, bias and ReLU included.
    const GemmEpilogue epilogue{bias, relu_};
    const int group = gemm_images(batch, threads);
    const auto convolve = [&](int n, int images, float* gemm_workspace) {
        if (packs_from_image(table_, g))
            return table_.gemm_conv3x3_f32(out_channels_, g.channels, g.height, g.width, images,
                                           packed_weights_.data(), x + n * in_image, y + n * out_image, epilogue,
                                           gemm_workspace);
        im2col(g, x + n * in_image, 1, gemm_workspace);  // one image: gemm_images() is 1 here
        table_.gemm_packed_a_f32(false, out_channels_, g.positions(), g.rows(), 1.0f, packed_weights_.data(),
                                 gemm_workspace, g.positions(), 0.0f, y + n * out_image, g.positions(), epilogue,
                                 gemm_workspace + aligned_floats(static_cast<std::size_t>(g.rows()) * g.positions()));
    };
    for_each_image(batch, threads, group, workspace, gemm_workspace_floats(group), convolve);
}

}  // namespace edgeqc
