// Parser of the spec string grammar documented in architecture.hpp.
#include "engine/architecture.hpp"

#include <cctype>
#include <cstdlib>

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

}  // namespace edgeqc
