// Parser and writer of the spec string grammar documented in architecture.hpp, and its resolution for an input.
#include "engine/architecture.hpp"

#include <charconv>
#include <cctype>
#include <cstdlib>
#include <limits>

#include "engine/error.hpp"

namespace edgeqc {

namespace {

class TokenReader {
public:
    TokenReader(const std::string& token, const std::string& spec) : token_(token), spec_(spec) {}

    bool done() const { return position_ == token_.size(); }
    bool take(const std::string& literal) {
        if (token_.compare(position_, literal.size(), literal) != 0) return false;
        position_ += literal.size();
        return true;
    }
    bool at_digit() const { return !done() && std::isdigit(static_cast<unsigned char>(token_[position_])); }
    int number(int minimum, int maximum) {
        if (!at_digit()) fail("a number was expected");
        long value = 0;
        while (at_digit() && value <= maximum) value = value * 10 + (token_[position_++] - '0');
        if (value < minimum || value > maximum)
            fail("numbers must be between " + std::to_string(minimum) + " and " + std::to_string(maximum));
        return static_cast<int>(value);
    }
    float fraction() {
        const char* start = token_.c_str() + position_;
        char* end = nullptr;
        const float value = std::strtof(start, &end);
        if (end == start) fail("a probability such as 0.5 was expected");
        position_ += static_cast<std::size_t>(end - start);
        return value;
    }
    [[noreturn]] void fail(const std::string& why) const {
        throw Error("bad layer '" + token_ + "' in architecture '" + spec_ + "': " + why +
                    " (layers: c<N>[k<K>][s<S>][v][bn], p[<K>][s<S>], gap, fc<N>, drop<P>, and a final fc)");
    }

private:
    const std::string& token_;
    const std::string& spec_;
    std::size_t position_ = 0;
};

constexpr int kMaxUnits = 65536;
// Far beyond any network for this work (the reference has 6 tokens), and small enough that a hostile spec cannot
// make resolving and checking a model file slow (their lookups are linear in the number of tensors).
constexpr std::size_t kMaxTokens = 1024;
constexpr int kMaxKernel = 31;

void parse_conv(TokenReader& reader, std::vector<LayerSpec>& layers) {
    LayerSpec conv{LayerKind::Conv};
    conv.units = reader.number(1, kMaxUnits);
    conv.kernel = 3;
    conv.stride = 1;
    bool valid = false, batch_norm = false;
    while (!reader.done()) {
        if (reader.take("bn")) batch_norm = true;
        else if (reader.take("k")) conv.kernel = reader.number(1, kMaxKernel);
        else if (reader.take("s")) conv.stride = reader.number(1, kMaxKernel);
        else if (reader.take("v")) valid = true;
        else reader.fail("unknown conv option");
    }
    conv.padding = valid ? 0 : conv.kernel / 2;
    conv.bias = !batch_norm;
    layers.push_back(conv);
    if (batch_norm) layers.push_back({LayerKind::BatchNorm, conv.units});
    layers.push_back({LayerKind::Relu});
}

void parse_pool(TokenReader& reader, std::vector<LayerSpec>& layers) {
    LayerSpec pool{LayerKind::MaxPool};
    pool.kernel = reader.at_digit() ? reader.number(1, kMaxKernel) : 2;
    pool.stride = reader.take("s") ? reader.number(1, kMaxKernel) : pool.kernel;
    if (!reader.done()) reader.fail("unknown pool option");
    layers.push_back(pool);
}

}  // namespace

std::vector<LayerSpec> parse_architecture(const std::string& spec) {
    std::vector<LayerSpec> layers;
    std::vector<std::string> tokens;
    std::size_t start = 0;
    while (true) {
        const std::size_t dash = spec.find('-', start);
        tokens.push_back(spec.substr(start, dash == std::string::npos ? std::string::npos : dash - start));
        if (dash == std::string::npos) break;
        start = dash + 1;
    }
    if (tokens.size() > kMaxTokens)
        throw Error("architecture has " + std::to_string(tokens.size()) + " layers; at most " + std::to_string(kMaxTokens) +
                    " are allowed");
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        const std::string& token = tokens[i];
        TokenReader reader(token, spec);
        if (token.empty()) throw Error("architecture '" + spec + "' has an empty layer (two '-' in a row?)");
        if (token == "fc") {
            if (i + 1 != tokens.size()) reader.fail("the plain 'fc' classifier must be the last layer");
            layers.push_back({LayerKind::Dense, kClassCount});
        } else if (token == "gap") {
            layers.push_back({LayerKind::GlobalAvgPool});
        } else if (reader.take("drop")) {
            LayerSpec dropout{LayerKind::Dropout};
            dropout.probability = reader.fraction();
            if (!reader.done() || !(dropout.probability >= 0.0f && dropout.probability < 1.0f))
                reader.fail("dropout probability must be in [0, 1)");
            layers.push_back(dropout);
        } else if (reader.take("fc")) {
            layers.push_back({LayerKind::Dense, reader.number(1, kMaxUnits)});
            if (!reader.done()) reader.fail("unexpected characters after the unit count");
            layers.push_back({LayerKind::Relu});
        } else if (reader.take("c")) {
            parse_conv(reader, layers);
        } else if (reader.take("p")) {
            parse_pool(reader, layers);
        } else {
            reader.fail("unknown layer type");
        }
    }
    if (tokens.back() != "fc") throw Error("architecture '" + spec + "' must end with the classifier 'fc'");
    return layers;
}

namespace {

[[noreturn]] void unwritable(const std::string& why) { throw Error("the layer list cannot be written as a spec: " + why); }

std::string conv_token(const LayerSpec& conv, bool batch_norm) {
    // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string temporaries here.
    std::string token = std::string("c").append(std::to_string(conv.units));
    if (conv.kernel != 3) token.append("k").append(std::to_string(conv.kernel));
    if (conv.stride != 1) token.append("s").append(std::to_string(conv.stride));
    if (conv.padding != conv.kernel / 2) {
        if (conv.padding != 0) unwritable("conv padding must be 0 or kernel / 2");
        token += "v";
    }
    if (conv.bias == batch_norm) unwritable("a conv has a bias exactly when no batch norm follows it");
    return batch_norm ? token + "bn" : token;
}

// The shortest text that reads back as the same float.
std::string float_text(float value) {
    char text[32];
    const auto result = std::to_chars(text, text + sizeof text, value);
    return std::string(text, result.ptr);
}

}  // namespace

std::string write_architecture(const std::vector<LayerSpec>& layers) {
    std::string spec;
    auto emit = [&spec](const std::string& token) {
        if (!spec.empty()) spec += '-';
        spec += token;
    };
    auto kind_at = [&layers](std::size_t i) { return i < layers.size() ? layers[i].kind : LayerKind::Flatten; };
    for (std::size_t i = 0; i < layers.size(); ++i) {
        const LayerSpec& layer = layers[i];
        switch (layer.kind) {
            case LayerKind::Conv: {
                const bool batch_norm = kind_at(i + 1) == LayerKind::BatchNorm;
                if (batch_norm) ++i;
                if (i + 1 >= layers.size() || layers[i + 1].kind != LayerKind::Relu) unwritable("a conv without a ReLU");
                ++i;
                emit(conv_token(layer, batch_norm));
                break;
            }
            case LayerKind::Dense:
                if (i + 1 == layers.size()) {
                    emit("fc");
                } else {
                    if (layers[i + 1].kind != LayerKind::Relu || layer.units < 1) unwritable("a hidden dense layer without a ReLU");
                    ++i;
                    emit(std::string("fc").append(std::to_string(layer.units)));
                }
                break;
            case LayerKind::MaxPool: {
                std::string token = "p";
                if (layer.kernel != 2) token += std::to_string(layer.kernel);
                if (layer.stride != layer.kernel) token.append("s").append(std::to_string(layer.stride));
                emit(token);
                break;
            }
            case LayerKind::GlobalAvgPool: emit("gap"); break;
            case LayerKind::Dropout: emit(std::string("drop").append(float_text(layer.probability))); break;
            case LayerKind::Flatten: break;
            case LayerKind::BatchNorm: unwritable("a batch norm that does not follow a conv");
            case LayerKind::Relu: unwritable("a ReLU that does not follow a conv or dense layer");
        }
    }
    if (layers.empty() || layers.back().kind != LayerKind::Dense) unwritable("the last layer must be the classifier");
    return spec;
}

const char* layer_kind_name(LayerKind kind) {
    switch (kind) {
        case LayerKind::Conv: return "conv";
        case LayerKind::BatchNorm: return "batchnorm";
        case LayerKind::Relu: return "relu";
        case LayerKind::MaxPool: return "maxpool";
        case LayerKind::GlobalAvgPool: return "gap";
        case LayerKind::Flatten: return "flatten";
        case LayerKind::Dense: return "dense";
        case LayerKind::Dropout: return "dropout";
    }
    return "?";
}

bool is_trainable(TensorRole role) { return role != TensorRole::RunningMean && role != TensorRole::RunningVariance; }

namespace {

const char* role_suffix(TensorRole role) {
    switch (role) {
        case TensorRole::Weight: return "weight";
        case TensorRole::Bias: return "bias";
        case TensorRole::Gamma: return "gamma";
        case TensorRole::Beta: return "beta";
        case TensorRole::RunningMean: return "running_mean";
        case TensorRole::RunningVariance: return "running_var";
    }
    return "?";
}

std::string too_small(const Shape& input, int kernel, const char* what) {
    return std::string(what) + ": input " + input.str() + " is smaller than its " + std::to_string(kernel) + "x" +
           std::to_string(kernel) + " window; use a larger --size or fewer pooling layers";
}

// Output shape of one layer for one image (C x H x W or features); fills in BatchNorm channels and class counts.
Shape resolve_layer(LayerSpec& layer, const Shape& in, int num_classes) {
    const bool image = in.rank() == 3;
    switch (layer.kind) {
        case LayerKind::Conv: {
            if (!image) throw Error("a conv layer needs an image input, got " + in.str());
            if (in[1] + 2 * layer.padding < layer.kernel || in[2] + 2 * layer.padding < layer.kernel)
                throw Error(too_small(in, layer.kernel, "conv2d"));
            return {layer.units, (in[1] + 2 * layer.padding - layer.kernel) / layer.stride + 1,
                    (in[2] + 2 * layer.padding - layer.kernel) / layer.stride + 1};
        }
        case LayerKind::BatchNorm: layer.units = in[0]; return in;
        case LayerKind::Relu:
        case LayerKind::Dropout: return in;
        case LayerKind::MaxPool:
            if (!image) throw Error("max pool needs an image input, got " + in.str());
            if (in[1] < layer.kernel || in[2] < layer.kernel) throw Error(too_small(in, layer.kernel, "max pool"));
            return {in[0], (in[1] - layer.kernel) / layer.stride + 1, (in[2] - layer.kernel) / layer.stride + 1};
        case LayerKind::GlobalAvgPool:
            if (!image) throw Error("global average pool needs an image input, got " + in.str());
            return {in[0]};
        case LayerKind::Flatten:
            if (in.elements() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
                throw Error("flatten: " + in.str() + " has too many features per image");
            return {static_cast<int>(in.elements())};
        case LayerKind::Dense:
            if (layer.units == kClassCount) layer.units = num_classes;
            return {layer.units};
    }
    throw Error("unknown layer kind");
}

}  // namespace

ResolvedArchitecture resolve_architecture(const std::vector<LayerSpec>& layers, const Shape& input, int num_classes) {
    if (num_classes < 1) throw Error("a network needs at least one class");
    if (input.rank() != 3 || input[0] < 1 || input[1] < 1 || input[2] < 1)
        throw Error("network input must be C x H x W with positive sizes, got " + input.str());
    ResolvedArchitecture resolved;
    resolved.input = input;
    resolved.num_classes = num_classes;
    Shape shape = input;
    std::vector<TensorSlot> statistics;
    for (LayerSpec layer : layers) {
        if (layer.kind == LayerKind::Flatten && shape.rank() != 3) continue;
        if (layer.kind == LayerKind::Dense && shape.rank() == 3) {
            resolved.layers.push_back({LayerKind::Flatten});
            shape = resolve_layer(resolved.layers.back(), shape, num_classes);
            resolved.outputs.push_back(shape);
        }
        const Shape in = shape;
        shape = resolve_layer(layer, in, num_classes);
        const int index = static_cast<int>(resolved.layers.size());
        const std::string prefix = std::to_string(index) + ".";
        auto add = [&](std::vector<TensorSlot>& list, TensorRole role, const Shape& s) {
            list.push_back({prefix + role_suffix(role), role, s, index});
        };
        if (layer.kind == LayerKind::Conv) {
            add(resolved.tensors, TensorRole::Weight, {layer.units, in[0], layer.kernel, layer.kernel});
            if (layer.bias) add(resolved.tensors, TensorRole::Bias, {layer.units});
        } else if (layer.kind == LayerKind::Dense) {
            add(resolved.tensors, TensorRole::Weight, {layer.units, in[0]});
            add(resolved.tensors, TensorRole::Bias, {layer.units});
        } else if (layer.kind == LayerKind::BatchNorm) {
            add(resolved.tensors, TensorRole::Gamma, {layer.units});
            add(resolved.tensors, TensorRole::Beta, {layer.units});
            add(statistics, TensorRole::RunningMean, {layer.units});
            add(statistics, TensorRole::RunningVariance, {layer.units});
        }
        resolved.layers.push_back(layer);
        resolved.outputs.push_back(shape);
    }
    if (shape.rank() != 1 || shape[0] != num_classes) throw Error("the network's last layer must output one logit per class");
    resolved.tensors.insert(resolved.tensors.end(), statistics.begin(), statistics.end());
    return resolved;
}

std::string ResolvedArchitecture::tensor_name(std::size_t layer, TensorRole role) const {
    for (const TensorSlot& slot : tensors)
        if (slot.layer == static_cast<int>(layer) && slot.role == role) return slot.name;
    return {};
}

ResolvedArchitecture resolve_architecture(const std::string& spec, const Shape& input, int num_classes) {
    return resolve_architecture(parse_architecture(spec), input, num_classes);
}

double flops_per_image(const ResolvedArchitecture& architecture) {
    double flops = 0.0;
    Shape input = architecture.input;
    for (std::size_t i = 0; i < architecture.layers.size(); ++i) {
        const LayerSpec& layer = architecture.layers[i];
        const Shape& out = architecture.outputs[i];
        if (layer.kind == LayerKind::Conv)
            flops += 2.0 * out[0] * out[1] * out[2] * input[0] * layer.kernel * layer.kernel;
        else if (layer.kind == LayerKind::Dense)
            flops += 2.0 * out[0] * input[0];
        input = out;
    }
    return flops;
}

}  // namespace edgeqc
