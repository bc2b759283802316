// Packing and running the int8 conv and dense layers.
#include "engine/layer_s8.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "engine/error.hpp"
#include "engine/kernels/gemm_int.hpp"
#include "engine/pooling.hpp"

namespace edgeqc {

namespace {

// The best of three runs of `step` (given a workspace of `workspace_bytes`), in seconds: how the layer picks between
// ways that give the same bits.
template <class Step>
double best_of_three(std::size_t workspace_bytes, const Step& step) {
    std::vector<unsigned char, AlignedAllocator<unsigned char>> workspace(workspace_bytes);
    double best = 1e30;
    for (int trial = 0; trial < 3; ++trial) {
        const auto start = std::chrono::steady_clock::now();
        step(workspace.data());
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return best;
}

}  // namespace

PackedLayerS8::PackedLayerS8(const KernelTable& table, const ConvGeometry* conv, int outputs, int inputs,
                             const TypedTensor& weights, const TypedTensor* bias, const ActivationQuantization& input,
                             const std::optional<ActivationQuantization>& output, bool relu, int threads,
                             ConvAlgorithm algorithm, bool max_pool_follows)
    : table_(table), outputs_(outputs), inputs_(conv ? conv->rows() : inputs), input_(input), output_(output),
      relu_(relu) {
    if (conv) conv_ = *conv;
    // Every sum, the zero-point correction and the bias must stay inside int32 (validate_model bounds the bias by
    // 2^30): 2 x 127 x 127 x depth < 2^30.
    if (2.0 * kWeightMax * kActivationMax * inputs_ >= static_cast<double>(1 << 30))
        throw Error("a layer " + std::to_string(inputs_) + " deep is too deep for int8 inference");
    const std::int8_t* w = weights.data<std::int8_t>();
    row_bias_.resize(static_cast<std::size_t>(outputs_));
    row_scale_.resize(static_cast<std::size_t>(outputs_));
    for (int o = 0; o < outputs_; ++o) {
        std::int32_t weight_sum = 0;
        for (int p = 0; p < inputs_; ++p) weight_sum += w[static_cast<std::size_t>(o) * inputs_ + p];
        const std::int32_t b = bias ? bias->data<std::int32_t>()[o] : 0;
        row_bias_[static_cast<std::size_t>(o)] = b - input.zero_point * weight_sum;
        const float sum_scale = weights.scales[static_cast<std::size_t>(o)] * input.scale;
        row_scale_[static_cast<std::size_t>(o)] = output ? sum_scale / output->scale : sum_scale;
    }
    const auto pack_im2col_weights = [&] {
        if (packs_from_image()) {
            packed_weights_.resize(table.gemm_conv3x3_pack_a_s8(outputs_, conv->channels, order_, w, nullptr));
            table.gemm_conv3x3_pack_a_s8(outputs_, conv->channels, order_, w, packed_weights_.data());
            return;
        }
        packed_weights_.resize(table.gemm_pack_a_s8(outputs_, inputs_, w, inputs_, nullptr));
        table.gemm_pack_a_s8(outputs_, inputs_, w, inputs_, packed_weights_.data());
    };
    const auto build_winograd = [&] {
        winograd_ = std::make_unique<WinogradConv3x3S8>(table, w, outputs_, conv->channels, conv->height,
                                                        conv->width, conv->padding);
    };
    if (algorithm == ConvAlgorithm::Im2colByPositions) order_ = Conv3x3Order::ByPositions;
    const bool winograd_possible = conv &&
                                   (algorithm == ConvAlgorithm::Fastest || algorithm == ConvAlgorithm::Winograd) &&
                                   winograd_suits(*conv) && WinogradConv3x3S8::exact_for(conv->channels);
    if (algorithm == ConvAlgorithm::Winograd && winograd_possible) {
        build_winograd();
        return;
    }
    // The pool is computed on the sums where the GEMM reads B from the image (the full output is never written).
    const bool can_pool = max_pool_follows && packs_from_image();
    if (algorithm != ConvAlgorithm::Fastest || (!winograd_possible && !packs_from_image())) {
        pool_ = can_pool;
        pack_im2col_weights();
        return;
    }

    // Keep the way that runs fastest on this CPU (the best of three runs on the layer's shape, a pool pass after it
    // where it leaves one to do): the product in either order where B comes from the image, each pooling its sums or
    // not, then the Winograd. The order and the pool are a choice of shape: on a Zen 5 with VNNI, conv4 of the
    // reference network (10 x 15) ran 5 % faster ByPositions when pooling, and no faster when not; pooling the sums
    // made conv1 to conv3 slower with AVX2's narrow tiles. One way at a time, so that only one set of its weights is
    // held: a 512 x 512 layer's Winograd weights are 8 MiB, and holding both ways' at once was the peak of a whole
    // int8 inference's memory.
    const ConvGeometry& g = *conv_;
    const std::size_t out_size = output ? 1 : sizeof(float);
    std::vector<std::uint8_t> x(static_cast<std::size_t>(g.channels) * g.height * g.width,
                                static_cast<std::uint8_t>(input.zero_point));
    std::vector<unsigned char, AlignedAllocator<unsigned char>> y(
        static_cast<std::size_t>(outputs_) * g.positions() * out_size),
        pooled(static_cast<std::size_t>(outputs_) * (g.height / 2) * (g.width / 2) * out_size);
    // Only where the layer could pool its sums instead (its output then the size of its input, as y and pooled are
    // here); elsewhere the pass after costs every way the same.
    const auto pool_pass = [&] {
        if (!can_pool) return;
        if (output) max_pool_u8(table, y.data(), outputs_, g.height, g.width, 2, 2, pooled.data());
        else
            max_pool_f32(table, reinterpret_cast<const float*>(y.data()), outputs_, g.height, g.width, 2, 2,
                         reinterpret_cast<float*>(pooled.data()), nullptr);
    };
    double best_seconds = 1e30;
    Conv3x3Order best_order = order_;
    bool best_pool = false;
    for (const Conv3x3Order order : {Conv3x3Order::ByColumns, Conv3x3Order::ByPositions}) {
        if (order == Conv3x3Order::ByPositions && !packs_from_image()) break;
        order_ = order;
        pack_im2col_weights();
        for (const bool pool : {false, true}) {
            if (pool && !can_pool) break;
            pool_ = pool;
            const double seconds = best_of_three(im2col_workspace_bytes(1), [&](unsigned char* workspace) {
                run_im2col(x.data(), 1, pool ? pooled.data() : y.data(), workspace);
                if (!pool) pool_pass();
            });
            if (seconds < best_seconds) best_seconds = seconds, best_order = order, best_pool = pool;
        }
    }
    order_ = best_order;
    pool_ = best_pool;
    if (winograd_possible) {
        decltype(packed_weights_)().swap(packed_weights_);  // frees them (assigning {} would keep the capacity)
        build_winograd();
        const double winograd_seconds =
            best_of_three(winograd_->workspace_bytes(threads), [&](unsigned char* workspace) {
                winograd_->forward(x.data(), 1, input.zero_point, epilogue(y.data(), 0), y.data(), workspace, threads);
                pool_pass();
            });
        if (winograd_seconds < best_seconds) {
            pool_ = false;
            return;
        }
        winograd_.reset();
    }
    pack_im2col_weights();  // in the order kept
}

std::size_t PackedLayerS8::packed_bytes() const {
    return (winograd_ ? winograd_->packed_bytes() : packed_weights_.size()) + row_bias_.size() * sizeof(std::int32_t) +
           row_scale_.size() * sizeof(float);
}

std::size_t PackedLayerS8::workspace_bytes(int batch, int threads) const {
    return winograd_ ? winograd_->workspace_bytes(threads) : im2col_workspace_bytes(batch);
}

std::size_t PackedLayerS8::im2col_workspace_bytes(int batch) const {
    if (packs_from_image())
        return table_.gemm_conv3x3_workspace_s8(outputs_, conv_->channels, conv_->height, conv_->width);
    if (conv_)  // one image at a time: its columns, then the GEMM's packing space
        return aligned_bytes(static_cast<std::size_t>(inputs_) * conv_->positions()) +
               table_.gemm_workspace_s8(outputs_, conv_->positions(), inputs_);
    // The product outputs x batch, then the GEMM's packing space.
    return aligned_bytes(static_cast<std::size_t>(outputs_) * batch * (output_ ? 1 : sizeof(float))) +
           table_.gemm_workspace_s8(outputs_, batch, inputs_);
}

IntegerGemmEpilogue PackedLayerS8::epilogue(void* c, int ldc) const {
    IntegerGemmEpilogue e;
    e.row_bias = row_bias_.data();
    e.row_scale = row_scale_.data();
    e.relu = relu_;
    e.ldc = ldc;
    if (output_) {
        e.quantized = static_cast<std::uint8_t*>(c);
        e.zero_point = output_->zero_point;
    } else {
        e.real = static_cast<float*>(c);
    }
    return e;
}

void PackedLayerS8::run(const std::uint8_t* x, int batch, void* y, unsigned char* workspace, int threads) const {
    if (winograd_) winograd_->forward(x, batch, input_.zero_point, epilogue(y, 0), y, workspace, threads);
    else run_im2col(x, batch, y, workspace);
}

void PackedLayerS8::run_im2col(const std::uint8_t* x, int batch, void* y, unsigned char* workspace) const {
    const std::size_t out_size = output_ ? 1 : sizeof(float);
    if (conv_) {
        const ConvGeometry& g = *conv_;
        const std::size_t in_image = static_cast<std::size_t>(g.channels) * g.height * g.width;
        const std::size_t out_image = static_cast<std::size_t>(outputs_) * g.positions() * out_size;
        const auto padding = static_cast<std::uint8_t>(input_.zero_point);  // a real 0 outside the image
        if (packs_from_image()) {
            const int positions = pool_ ? g.height / 2 * (g.width / 2) : g.positions();
            for (int n = 0; n < batch; ++n) {
                const IntegerGemmEpilogue image_epilogue = epilogue(
                    static_cast<unsigned char*>(y) + n * static_cast<std::size_t>(outputs_) * positions * out_size,
                    positions);
                table_.gemm_conv3x3_s8(outputs_, g.channels, g.height, g.width, order_, packed_weights_.data(),
                                       x + n * in_image, padding, pool_, image_epilogue, workspace);
            }
            return;
        }
        auto* columns = reinterpret_cast<std::uint8_t*>(workspace);
        unsigned char* gemm_workspace = workspace + aligned_bytes(static_cast<std::size_t>(inputs_) * g.positions());
        for (int n = 0; n < batch; ++n) {
            im2col(g, x + n * in_image, 1, columns, padding);
            table_.gemm_packed_a_s8(false, outputs_, g.positions(), inputs_, packed_weights_.data(), columns,
                                    g.positions(), epilogue(static_cast<unsigned char*>(y) + n * out_image, g.positions()),
                                    gemm_workspace);
        }
        return;
    }
    // C (outputs x batch) = W x^T, then transposed into y (batch x outputs).
    unsigned char* product = workspace;
    unsigned char* gemm_workspace =
        workspace + aligned_bytes(static_cast<std::size_t>(outputs_) * batch * out_size);
    table_.gemm_packed_a_s8(true, outputs_, batch, inputs_, packed_weights_.data(), x, inputs_,
                            epilogue(product, batch), gemm_workspace);
    for (int n = 0; n < batch; ++n)
        for (int o = 0; o < outputs_; ++o)
            std::copy_n(product + (static_cast<std::size_t>(o) * batch + n) * out_size, out_size,
                        static_cast<unsigned char*>(y) + (static_cast<std::size_t>(n) * outputs_ + o) * out_size);
}

}  // namespace edgeqc
