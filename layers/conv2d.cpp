// Convolution forward and backward for training via im2col + GEMM (engine/conv2d_f32.hpp gives the column layout),
// processing the batch in chunks to bound scratch memory, or via Winograd where that pays.
#include "layers/conv2d.hpp"

#include <omp.h>

#include <algorithm>
#include <limits>

#include "engine/error.hpp"
#include "engine/kernels.hpp"
#include "layers/ordered_sums.hpp"

namespace edgeqc {

namespace {

// Inverse of im2col: adds every column entry back onto the input position it was read from.
void col2im_add(const ConvGeometry& g, const float* col, int count, float* dx) {
    const std::size_t columns = static_cast<std::size_t>(count) * g.positions();
    // One (image, channel) plane per iteration: its k*k rows touch only that plane, so no two threads collide.
#pragma omp parallel for schedule(static)
    for (int plane_index = 0; plane_index < count * g.channels; ++plane_index) {
        const int n = plane_index / g.channels;
        const int c = plane_index % g.channels;
        float* plane = dx + static_cast<std::size_t>(plane_index) * g.height * g.width;
        for (int ky = 0; ky < g.kernel; ++ky) {
            for (int kx = 0; kx < g.kernel; ++kx) {
                const int row = (c * g.kernel + ky) * g.kernel + kx;
                const float* in = col + static_cast<std::size_t>(row) * columns + static_cast<std::size_t>(n) * g.positions();
                for (int oy = 0; oy < g.out_height; ++oy) {
                    const int iy = oy * g.stride - g.padding + ky;
                    if (iy < 0 || iy >= g.height) continue;
                    float* target_row = plane + static_cast<std::size_t>(iy) * g.width;
                    for (int ox = 0; ox < g.out_width; ++ox) {
                        const int ix = ox * g.stride - g.padding + kx;
                        if (ix >= 0 && ix < g.width) target_row[ix] += in[oy * g.out_width + ox];
                    }
                }
            }
        }
    }
}

}  // namespace

struct Conv2d::Plan {
    ConvGeometry g;
    int batch = 0, out_channels = 0;
    int chunk = 1;  // images per im2col + GEMM round, bounded by the config's column budget
    std::size_t in_image = 0, out_image = 0;  // floats per image of x and of y
    float* column = nullptr;   // rows x (chunk * positions)
    float* product = nullptr;  // out_channels x (chunk * positions)
};

Conv2d::Conv2d(const Conv2dConfig& config) : config_(config) {
    if (config.in_channels < 1 || config.out_channels < 1 || config.kernel < 1 || config.stride < 1 ||
        config.padding < 0)
        throw Error("conv2d: channels, kernel and stride must be positive and padding non-negative");
}

Shape Conv2d::output_shape(const Shape& input) const {
    if (input.rank() != 4 || input[1] != config_.in_channels)
        throw Error("conv2d expects N x " + std::to_string(config_.in_channels) + " x H x W input, got " + input.str());
    const int out_height = (input[2] + 2 * config_.padding - config_.kernel) / config_.stride + 1;
    const int out_width = (input[3] + 2 * config_.padding - config_.kernel) / config_.stride + 1;
    if (input[2] + 2 * config_.padding < config_.kernel || input[3] + 2 * config_.padding < config_.kernel)
        throw Error("conv2d: input " + input.str() + " is smaller than its " + std::to_string(config_.kernel) + "x" +
                    std::to_string(config_.kernel) + " kernel");
    return {input[0], config_.out_channels, out_height, out_width};
}

void Conv2d::declare(ParameterArena& parameters, ParameterArena&, const std::string& prefix) {
    parameters_ = &parameters;
    weight_slot_ = parameters.reserve(prefix + "weight",
                                      {config_.out_channels, config_.in_channels, config_.kernel, config_.kernel});
    if (config_.bias) bias_slot_ = parameters.reserve(prefix + "bias", {config_.out_channels});
}

void Conv2d::initialize(InitScheme scheme, Rng& rng) {
    const int fan_in = config_.in_channels * config_.kernel * config_.kernel;
    initialize_weights(weight(), fan_in, scheme, rng);
    if (config_.bias) initialize_bias(bias(), fan_in, scheme, rng);
}

Conv2d::Plan Conv2d::plan(const Shape& input) {
    const Shape out = output_shape(input);
    Plan p;
    p.g = {config_.in_channels, input[2], input[3], config_.kernel, config_.stride, config_.padding, out[2], out[3]};
    p.batch = input[0];
    p.out_channels = config_.out_channels;
    p.in_image = static_cast<std::size_t>(p.g.channels) * p.g.height * p.g.width;
    p.out_image = static_cast<std::size_t>(p.out_channels) * p.g.positions();
    const std::size_t column_floats_per_image = static_cast<std::size_t>(p.g.rows()) * p.g.positions();
    p.chunk = static_cast<int>(std::clamp<std::size_t>(
        config_.column_budget_floats / std::max<std::size_t>(column_floats_per_image, 1), 1,
        static_cast<std::size_t>(std::max(p.batch, 1))));
    // GEMM sizes are int: one chunk's columns must fit.
    if (static_cast<std::size_t>(p.chunk) * static_cast<std::size_t>(p.g.positions()) >
        static_cast<std::size_t>(std::numeric_limits<int>::max()))
        throw Error("conv2d: the input " + input.str() + " is too large");
    p.column = context_->columns.floats(column_floats_per_image * p.chunk);
    p.product = context_->products.floats(p.out_image * p.chunk);
    return p;
}

// bf16 products pay where multiply-adds are the bound; a convolution of few weights keeps f32 products (the first
// layer under bf16 training ran 12.0 against 5.4 ms a batch of 32, forward and backward).
const KernelTable& Conv2d::table() const {
    const KernelTable& network = context_->kernels();
    return few_weights() && network.product_bits < 24 ? kernels() : network;
}

bool Conv2d::winograd_forward() const {
    return config_.winograd &&
           winograd_suits({config_.in_channels, 0, 0, config_.kernel, config_.stride, config_.padding, 0, 0});
}

// The input gradient of a 3x3 stride-1 convolution is itself one: dy convolved with the flipped, transposed
// weights and padding 2 - p, so it goes through Winograd too when dy has enough channels.
bool Conv2d::winograd_input_gradient() const {
    return config_.winograd && config_.kernel == 3 && config_.stride == 1 && config_.padding <= 2 &&
           config_.out_channels >= kWinogradMinInputChannels;
}

bool Conv2d::winograd_pays_while_training(const Shape& output) const {
    return static_cast<long>(output[0]) * ((output[2] + 1) / 2) * ((output[3] + 1) / 2) >=
           config_.winograd_training_min_tiles;
}

void Conv2d::winograd_run(const float* weights, int out_channels, int in_channels, const Shape& x_shape,
                          const float* x, int padding, const float* bias, float* y) {
    WinogradConv3x3& winograd = context_->winograd_weights;
    const KernelTable& table = this->table();
    const WinogradTile tile = winograd_tile_for(table, in_channels, out_channels, x_shape[2], x_shape[3], padding,
                                                x_shape[0], WinogradWeights::PreparedPerCall);
    const int threads = omp_get_max_threads();
    winograd.prepare(table, weights, out_channels, in_channels, tile, threads);
    const std::size_t floats = winograd.workspace_floats(x_shape[0], x_shape[2], x_shape[3], padding, threads);
    winograd.forward(x, x_shape[0], x_shape[2], x_shape[3], padding, bias, false, false, y,
                     context_->winograd.floats(floats), threads);
}

void Conv2d::forward(const Tensor& x, Tensor& y, Mode) {
    y.resize(output_shape(x.shape()));
    const float* w = weight().data;
    const float* b = config_.bias ? bias().data : nullptr;
    if (winograd_forward() && winograd_pays_while_training(y.shape())) {
        winograd_run(w, config_.out_channels, config_.in_channels, x.shape(), x.data(), config_.padding, b, y.data());
        return;
    }
    const Shape& in = x.shape();
    if (packs_from_image(table(), {in[1], in[2], in[3], config_.kernel, config_.stride, config_.padding,
                                               in[2], in[3]})) {
        forward_from_image(w, b, x, y);
        return;
    }
    const Plan p = plan(x.shape());
    const ConvGeometry& g = p.g;
    const int batch = p.batch, cout = p.out_channels, chunk = p.chunk, positions = g.positions();
    const std::size_t in_image = p.in_image, out_image = p.out_image;
    const KernelTable& table = this->table();
    float* col = p.column;
    float* product = p.product;

    for (int first = 0; first < batch; first += chunk) {
        const int count = std::min(chunk, batch - first);
        const int columns = count * positions;
        im2col(g, x.data() + first * in_image, count, col);
        table.gemm_f32(false, false, cout, columns, g.rows(), 1.0f, w, g.rows(), col, columns, 0.0f, product, columns,
                       {}, context_->gemm.floats(table.gemm_workspace_f32(cout, columns, g.rows(), false)));
        // product is Cout x (count * positions); y wants count x Cout x positions.
#pragma omp parallel for collapse(2) schedule(static)
        for (int n = 0; n < count; ++n) {
            for (int co = 0; co < cout; ++co) {
                const float* source = product + static_cast<std::size_t>(co) * columns + static_cast<std::size_t>(n) * positions;
                float* target = y.data() + (first + n) * out_image + static_cast<std::size_t>(co) * positions;
                const float shift = b ? b[co] : 0.0f;
                for (int p = 0; p < positions; ++p) target[p] = source[p] + shift;
            }
        }
    }
}

void Conv2d::forward_from_image(const float* weights, const float* bias, const Tensor& x, Tensor& y) {
    const KernelTable& table = this->table();
    const int batch = x.shape()[0], channels = x.shape()[1], height = x.shape()[2], width = x.shape()[3];
    const int cout = config_.out_channels, threads = omp_get_max_threads();
    float* packed = context_->packed_weights.floats(table.gemm_conv3x3_pack_a_f32(cout, channels, nullptr, nullptr));
    table.gemm_conv3x3_pack_a_f32(cout, channels, weights, packed);
    const int group = images_per_gemm(height * width, batch, threads);
    const std::size_t per_group =
        aligned_floats(table.gemm_conv3x3_workspace_f32(cout, channels, height, width, group));
    float* workspace = context_->gemm.floats(per_group * images_in_flight(batch, threads));
    const std::size_t in_image = static_cast<std::size_t>(channels) * height * width;
    const std::size_t out_image = static_cast<std::size_t>(cout) * height * width;
    for_each_image(batch, threads, group, workspace, per_group, [&](int n, int images, float* group_workspace) {
        table.gemm_conv3x3_f32(cout, channels, height, width, images, packed, x.data() + n * in_image,
                               y.data() + n * out_image, {bias, false}, group_workspace);
    });
}

// A convolution of at most 4096 weights (the first layer's 32 x 9, or 64 x 27 on colour images) does few
// multiply-adds per value it reads or writes: bound by memory, with shallow products. Its weight gradient has few
// outputs and a deep product (the batch's positions): as one GEMM, dW (out_channels x rows) = dY col^T, its nine
// columns ran at 8 GFLOP/s on 2 threads, slower than on one (the product gives the threads nothing to split but its
// few rows), after dY gathered by channel and the batch's im2col (tenfold the input) written out.
bool Conv2d::few_weights() const {
    constexpr long kFewWeights = 4096;
    return static_cast<long>(config_.out_channels) * config_.in_channels * config_.kernel * config_.kernel <=
           kFewWeights;
}

// Each image's dW^T (rows x out_channels) = col dy^T on one thread: its columns written to the thread's own buffer
// (in cache for an image of the first layer's size: 9 x 9600 floats), and dy read as it lies. The images' partial
// products are then summed in image order, so the bits do not depend on the thread count.
void Conv2d::weight_gradient_by_image(const Plan& p, const Tensor& x, const Tensor& dy, float* dw) {
    const KernelTable& table = this->table();
    const ConvGeometry& g = p.g;
    const int rows = g.rows(), cout = p.out_channels, positions = g.positions(), threads = omp_get_max_threads();
    const std::size_t per_image = static_cast<std::size_t>(rows) * cout;
    const std::size_t column_floats = aligned_floats(static_cast<std::size_t>(rows) * positions);
    const std::size_t per_thread =
        column_floats + aligned_floats(table.gemm_workspace_f32(rows, cout, positions, false));
    const std::size_t partial_floats = aligned_floats(per_image * p.batch);
    float* partials = context_->gemm.floats(partial_floats + per_thread * threads);
    float* scratch = partials + partial_floats;
#pragma omp parallel num_threads(threads)
    {
        float* col = scratch + per_thread * omp_get_thread_num();
#pragma omp for schedule(static)
        for (int n = 0; n < p.batch; ++n) {
            im2col(g, x.data() + n * p.in_image, 1, col);
            table.gemm_f32(false, true, rows, cout, positions, 1.0f, col, positions, dy.data() + n * p.out_image,
                           positions, 0.0f, partials + n * per_image, cout, {}, col + column_floats);
        }
    }
#pragma omp parallel for schedule(static)
    for (int co = 0; co < cout; ++co) {
        for (int row = 0; row < rows; ++row) {
            const float* partial = partials + static_cast<std::size_t>(row) * cout + co;
            float sum = 0.0f;
            for (int n = 0; n < p.batch; ++n) sum += partial[n * per_image];
            dw[static_cast<std::size_t>(co) * rows + row] += sum;
        }
    }
}

void Conv2d::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
    const Plan p = plan(x.shape());
    const ConvGeometry& g = p.g;
    const int batch = p.batch, cout = p.out_channels, chunk = p.chunk, positions = g.positions();
    const std::size_t in_image = p.in_image, out_image = p.out_image;
    const float* w = weight().data;
    float* dw = parameters_->gradient(weight_slot_).data;
    const KernelTable& table = this->table();
    float* col = p.column;
    float* dy_gathered = p.product;

    if (config_.bias) {
        float* db = parameters_->gradient(bias_slot_).data;
#pragma omp parallel for schedule(static)
        for (int co = 0; co < cout; ++co) {
            // In ordered float lanes: one double running sum was bound by add latency (16 ms a training step of the
            // paper's network, whose convolutions have biases).
            double sum = 0.0;
            for (int n = 0; n < batch; ++n) {
                const float* source = dy.data() + n * out_image + static_cast<std::size_t>(co) * positions;
                const auto value = [source](std::size_t i) { return source[i]; };
                sum += ordered_sums(static_cast<std::size_t>(positions), value)[0];
            }
            db[co] += static_cast<float>(sum);
        }
    }
    // Weight gradient and input gradient each through Winograd where it pays, else through im2col + GEMM.
    const bool winograd_weights = winograd_forward() && winograd_pays_while_training(dy.shape());
    const bool gemm_input_gradient = dx && !(winograd_input_gradient() && winograd_pays_while_training(x.shape()));
    if (dx) {
        dx->resize(x.shape());
        if (gemm_input_gradient) dx->fill(0.0f);
        else input_gradient_winograd(dy, *dx);
    }
    // Image by image where a thread's columns of one image stay within the column budget, as a chunk's do.
    const bool weights_by_image = !winograd_weights && few_weights() &&
                                  static_cast<std::size_t>(g.rows()) * positions * omp_get_max_threads() <=
                                      config_.column_budget_floats;
    if (winograd_weights)
        winograd_weight_gradient(table, x.data(), dy.data(), batch, g.height, g.width, g.padding, cout,
                                 g.channels, dw, context_->winograd);
    if (weights_by_image) weight_gradient_by_image(p, x, dy, dw);
    const bool gemm_weights = !winograd_weights && !weights_by_image;
    if (!gemm_weights && !gemm_input_gradient) return;
    for (int first = 0; first < batch; first += chunk) {
        const int count = std::min(chunk, batch - first);
        const int columns = count * positions;
#pragma omp parallel for collapse(2) schedule(static)
        for (int co = 0; co < cout; ++co) {
            for (int n = 0; n < count; ++n) {
                const float* source = dy.data() + (first + n) * out_image + static_cast<std::size_t>(co) * positions;
                std::copy(source, source + positions,
                          dy_gathered + static_cast<std::size_t>(co) * columns + static_cast<std::size_t>(n) * positions);
            }
        }
        if (gemm_weights) {
            im2col(g, x.data() + first * in_image, count, col);
            // dW[Cout x K] += dY[Cout x columns] * col^T
            table.gemm_f32(false, true, cout, g.rows(), columns, 1.0f, dy_gathered, columns, col, columns, 1.0f, dw,
                           g.rows(), {}, context_->gemm.floats(table.gemm_workspace_f32(cout, g.rows(), columns, false)));
        }
        if (gemm_input_gradient) {
            // dcol[K x columns] = W^T * dY, written over col, then scattered back.
            table.gemm_f32(true, false, g.rows(), columns, cout, 1.0f, w, g.rows(), dy_gathered, columns, 0.0f, col, columns,
                           {}, context_->gemm.floats(table.gemm_workspace_f32(g.rows(), columns, cout, false)));
            col2im_add(g, col, count, dx->data() + first * in_image);
        }
    }
}

void Conv2d::input_gradient_winograd(const Tensor& dy, Tensor& dx) {
    const int cin = config_.in_channels, cout = config_.out_channels;
    float* flipped = context_->flipped.floats(static_cast<std::size_t>(cin) * cout * 9);  // Cin x Cout x 3 x 3
    const float* w = weight().data;
    for (int ci = 0; ci < cin; ++ci)
        for (int co = 0; co < cout; ++co)
            for (int tap = 0; tap < 9; ++tap)
                flipped[(static_cast<std::size_t>(ci) * cout + co) * 9 + tap] =
                    w[(static_cast<std::size_t>(co) * cin + ci) * 9 + (8 - tap)];
    winograd_run(flipped, cin, cout, dy.shape(), dy.data(), 2 - config_.padding, nullptr, dx.data());
}

}  // namespace edgeqc
