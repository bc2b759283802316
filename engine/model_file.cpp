// Encoding and validating decoding of .eqc model files.
#include "engine/model_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/byte_io.hpp"
#include "engine/error.hpp"

namespace edgeqc {

namespace {

constexpr char kMagic[8] = {'E', 'Q', 'C', 'M', 'O', 'D', 'E', 'L'};
constexpr std::uint32_t tag(const char (&name)[5]) {
    return static_cast<std::uint32_t>(name[0]) | static_cast<std::uint32_t>(name[1]) << 8 |
           static_cast<std::uint32_t>(name[2]) << 16 | static_cast<std::uint32_t>(name[3]) << 24;
}
constexpr std::uint32_t kMetaTag = tag("META");
constexpr std::uint32_t kTensorsTag = tag("TENS");
constexpr std::uint32_t kTrainingTag = tag("TRNS");
constexpr std::uint32_t kPreprocessingTag = tag("PREP");
constexpr std::uint32_t kActivationsTag = tag("QACT");
// Files whose tensors are all f32 keep the version before typed tensors, so earlier builds still read them.
// v3 added typed tensors, v4 (quantized models) the activation scales.
constexpr std::uint32_t kFloatModelFormatVersion = 2;
constexpr std::uint32_t kTypedTensorsVersion = 3;
constexpr std::size_t kMaxText = 1 << 20;
constexpr std::uint32_t kMaxClasses = 100000;
// Far above any model this engine trains (the reference network is 15 MB), far below a Pi's memory.
constexpr std::uint64_t kMaxFileBytes = std::uint64_t{2} << 30;

void put_float_block(ByteWriter& out, const AlignedFloats& values) {
    out.put<std::uint64_t>(values.size());
    out.put_floats(values.data(), values.size());
}

void get_float_block(ByteReader& in, AlignedFloats& values) {
    const auto count = in.get<std::uint64_t>();
    if (count > in.remaining() / sizeof(float)) in.fail("it ends inside the optimizer state");
    values.resize(static_cast<std::size_t>(count));
    in.get_floats(values.data(), values.size());
}

void put_tensors(ByteWriter& out, const std::vector<NamedTensor>& tensors) {
    out.put<std::uint32_t>(static_cast<std::uint32_t>(tensors.size()));
    for (const auto& [name, t] : tensors) {
        out.put_string(name);
        out.put<std::uint8_t>(static_cast<std::uint8_t>(t.type()));
        out.put<std::uint8_t>(static_cast<std::uint8_t>(t.shape().rank()));
        for (int d = 0; d < t.shape().rank(); ++d) out.put<std::uint32_t>(static_cast<std::uint32_t>(t.shape()[d]));
        if (t.type() != DataType::F32) {
            out.put<std::uint32_t>(static_cast<std::uint32_t>(t.scales.size()));
            out.put_floats(t.scales.data(), t.scales.size());
        }
        out.put_raw(t.raw(), t.bytes());
    }
}

void encode_meta(ByteWriter& out, const ModelDescription& d) {
    out.put_string(d.architecture);
    out.put<std::uint32_t>(static_cast<std::uint32_t>(d.class_names.size()));
    for (const std::string& name : d.class_names) out.put_string(name);
    out.put<std::int32_t>(d.input.channels);
    out.put<std::int32_t>(d.input.height);
    out.put<std::int32_t>(d.input.width);
    out.put<std::uint32_t>(static_cast<std::uint32_t>(d.input.mean.size()));
    out.put_floats(d.input.mean.data(), d.input.mean.size());
    out.put_floats(d.input.stddev.data(), d.input.stddev.size());
    out.put_string(EDGEQC_VERSION);
}

ModelDescription decode_meta(ByteReader in) {
    ModelDescription d;
    d.architecture = in.get_string(kMaxText);
    const auto classes = in.get<std::uint32_t>();
    if (classes < 1 || classes > kMaxClasses) in.fail("implausible class count " + std::to_string(classes));
    for (std::uint32_t i = 0; i < classes; ++i) d.class_names.push_back(in.get_string(kMaxText));
    d.input.channels = in.get<std::int32_t>();
    d.input.height = in.get<std::int32_t>();
    d.input.width = in.get<std::int32_t>();
    if (d.input.channels != 1 && d.input.channels != 3) in.fail("implausible channel count");
    const auto stats = in.get<std::uint32_t>();
    if (stats != 0 && stats != static_cast<std::uint32_t>(d.input.channels)) in.fail("normalisation size differs from channels");
    d.input.mean.resize(stats);
    d.input.stddev.resize(stats);
    in.get_floats(d.input.mean.data(), stats);
    in.get_floats(d.input.stddev.data(), stats);
    try {
        validate_input_format(d.input);
    } catch (const Error& e) {
        in.fail(e.what());
    }
    d.writer_version = in.get_string(256);
    return d;
}

void encode_enhancement(ByteWriter& out, const Enhancement& e) {
    out.put<std::uint8_t>(static_cast<std::uint8_t>(e.denoise));
    out.put<std::uint8_t>(static_cast<std::uint8_t>(e.denoise_size));
    out.put<float>(e.clahe_clip);
    out.put<std::uint8_t>(static_cast<std::uint8_t>(e.clahe_tiles));
}

Enhancement decode_enhancement(ByteReader in) {
    Enhancement e;
    e.denoise = static_cast<Denoise>(in.get<std::uint8_t>());
    e.denoise_size = in.get<std::uint8_t>();
    e.clahe_clip = in.get<float>();
    e.clahe_tiles = in.get<std::uint8_t>();
    return e;
}

void put_text_map(ByteWriter& out, const std::map<std::string, std::string>& entries) {
    out.put<std::uint32_t>(static_cast<std::uint32_t>(entries.size()));
    for (const auto& [key, value] : entries) {
        out.put_string(key);
        out.put_string(value);
    }
}

std::map<std::string, std::string> get_text_map(ByteReader& in, const char* what) {
    std::map<std::string, std::string> entries;
    const auto count = in.get<std::uint32_t>();
    if (count > 1000) in.fail(std::string("implausible ") + what + " size");
    for (std::uint32_t i = 0; i < count; ++i) {
        std::string key = in.get_string(kMaxText);
        entries[key] = in.get_string(kMaxText);
    }
    return entries;
}

// Reads the tensors, checking each against the slot of its name before allocating it; validate_model then checks
// what the values must satisfy.
std::vector<NamedTensor> decode_tensors(ByteReader in, const ResolvedArchitecture& architecture, std::uint32_t version) {
    std::map<std::string, const TensorSlot*> expected;
    std::size_t least_bytes = 0;  // every tensor at one byte per element
    for (const TensorSlot& slot : architecture.tensors) {
        expected[slot.name] = &slot;
        least_bytes += slot.shape.elements();
    }
    // A tiny file must not make us allocate the gigabytes its architecture string could claim.
    if (least_bytes > in.remaining()) in.fail("its tensors are smaller than its architecture needs");
    const auto count = in.get<std::uint32_t>();
    if (count != expected.size())
        in.fail("it holds " + std::to_string(count) + " tensors where its architecture needs " + std::to_string(expected.size()));
    std::vector<NamedTensor> tensors;
    for (std::uint32_t t = 0; t < count; ++t) {
        const std::string name = in.get_string(256);
        const auto found = expected.find(name);
        if (found == expected.end()) in.fail("unexpected tensor '" + name + "'");
        const auto type = in.get<std::uint8_t>();
        if (type >= kDataTypeCount) in.fail("tensor '" + name + "' has an element type this build cannot read");
        if (type != static_cast<std::uint8_t>(DataType::F32) && version < kTypedTensorsVersion)
            in.fail("tensor '" + name + "' is typed, which only format v3 and later files may be");
        const Shape& shape = found->second->shape;
        const auto rank = in.get<std::uint8_t>();
        bool same_shape = rank == shape.rank();
        for (int d = 0; d < rank; ++d) {
            const auto dim = in.get<std::uint32_t>();
            same_shape = same_shape && d < shape.rank() && dim == static_cast<std::uint32_t>(shape[d]);
        }
        if (!same_shape) in.fail("tensor '" + name + "' does not have the shape " + shape.str() + " its architecture needs");
        TypedTensor tensor;
        std::vector<float> scales;
        if (static_cast<DataType>(type) != DataType::F32) {
            const auto scale_count = in.get<std::uint32_t>();
            if (scale_count != static_cast<std::uint32_t>(shape[0])) in.fail("tensor '" + name + "' needs one scale per output channel");
            scales.resize(scale_count);
            in.get_floats(scales.data(), scale_count);
        }
        if (shape.elements() * element_size(static_cast<DataType>(type)) > in.remaining()) in.fail("it ends inside a tensor");
        tensor = TypedTensor(static_cast<DataType>(type), shape);
        tensor.scales = std::move(scales);
        in.get_raw(tensor.raw(), tensor.bytes());
        tensors.push_back({name, std::move(tensor)});
        expected.erase(found);
    }
    // In the architecture's order, whatever order the file used.
    std::map<std::string, std::size_t> position;
    for (std::size_t i = 0; i < tensors.size(); ++i) position[tensors[i].name] = i;
    std::vector<NamedTensor> ordered;
    for (const TensorSlot& slot : architecture.tensors) ordered.push_back(std::move(tensors[position.at(slot.name)]));
    return ordered;
}

void encode_activations(ByteWriter& out, const std::vector<ActivationQuantization>& activations) {
    out.put<std::uint32_t>(static_cast<std::uint32_t>(activations.size()));
    for (const ActivationQuantization& a : activations) {
        out.put<std::uint32_t>(static_cast<std::uint32_t>(a.layer));
        out.put<float>(a.scale);
        out.put<std::int32_t>(a.zero_point);
    }
}

// Bounds only; validate_model checks the values against the layers.
std::vector<ActivationQuantization> decode_activations(ByteReader in, const ResolvedArchitecture& architecture) {
    const auto count = in.get<std::uint32_t>();
    if (count > architecture.layers.size()) in.fail("it has more activation scales than layers");
    std::vector<ActivationQuantization> activations(count);
    for (ActivationQuantization& a : activations) {
        const auto layer = in.get<std::uint32_t>();
        if (layer >= architecture.layers.size()) in.fail("an activation scale names a layer it does not have");
        a.layer = static_cast<int>(layer);
        a.scale = in.get<float>();
        a.zero_point = in.get<std::int32_t>();
    }
    return activations;
}

void encode_training_state(ByteWriter& out, const TrainingState& s) {
    out.put<std::uint32_t>(s.epochs_done);
    out.put<std::uint64_t>(s.optimizer_steps);
    out.put<double>(s.best_metric);
    out.put<std::uint32_t>(s.best_epoch);
    put_float_block(out, s.first_moment);
    put_float_block(out, s.second_moment);
    put_text_map(out, s.recipe);
    put_text_map(out, s.callbacks);
}

TrainingState decode_training_state(ByteReader in, std::uint32_t version) {
    TrainingState s;
    s.epochs_done = in.get<std::uint32_t>();
    s.optimizer_steps = in.get<std::uint64_t>();
    s.best_metric = in.get<double>();
    s.best_epoch = in.get<std::uint32_t>();
    get_float_block(in, s.first_moment);
    const std::size_t arena_floats = s.first_moment.size();
    const std::size_t second = static_cast<std::size_t>(in.get<std::uint64_t>());
    if (second != 0 && second != arena_floats) in.fail("its two optimizer moments differ in size");
    s.second_moment.resize(second);
    in.get_floats(s.second_moment.data(), second);
    if (!all_finite(s.first_moment.data(), arena_floats) || !all_finite(s.second_moment.data(), second) ||
        !std::all_of(s.second_moment.begin(), s.second_moment.end(), [](float v) { return v >= 0.0f; }))
        in.fail("its optimizer state holds invalid values");
    s.recipe = get_text_map(in, "recipe");
    if (version >= 2) s.callbacks = get_text_map(in, "callback state");
    return s;
}

void add_section(ByteWriter& file, std::uint32_t section_tag, ByteWriter& payload) {
    file.put<std::uint32_t>(section_tag);
    file.put<std::uint64_t>(payload.bytes().size());
    file.put_bytes(payload.bytes());
}

}  // namespace

std::vector<unsigned char> read_model_file(const std::string& path) {
    std::error_code error;
    if (!std::filesystem::exists(path, error)) throw Error("model file '" + path + "' does not exist");
    if (std::filesystem::is_directory(path, error)) throw Error("'" + path + "' is a folder, not a model file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open model file '" + path + "': " + std::strerror(errno));
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    if (size < 0 || static_cast<std::uint64_t>(size) > kMaxFileBytes) throw Error("'" + path + "' is too large to be an edgeqc model");
    in.seekg(0);
    std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
    if (!in.read(reinterpret_cast<char*>(bytes.data()), size)) throw Error("cannot read model file '" + path + "'");
    return bytes;
}

void save_model(const std::string& path, const Model& model, const TrainingState* training_state) {
    const bool all_float = std::all_of(model.tensors.begin(), model.tensors.end(),
                                       [](const NamedTensor& t) { return t.tensor.type() == DataType::F32; });
    ByteWriter file;
    for (char c : kMagic) file.put<char>(c);
    file.put<std::uint32_t>(all_float ? kFloatModelFormatVersion : kModelFormatVersion);
    file.put<std::uint32_t>(3 + (training_state ? 1 : 0) + (model.activations.empty() ? 0 : 1));

    ByteWriter meta;
    encode_meta(meta, model.description);
    add_section(file, kMetaTag, meta);

    ByteWriter preprocessing;
    encode_enhancement(preprocessing, model.description.input.enhancement);
    add_section(file, kPreprocessingTag, preprocessing);

    ByteWriter tensors;
    put_tensors(tensors, model.tensors);
    add_section(file, kTensorsTag, tensors);

    if (!model.activations.empty()) {
        ByteWriter activations;
        encode_activations(activations, model.activations);
        add_section(file, kActivationsTag, activations);
    }
    if (training_state) {
        ByteWriter training;
        encode_training_state(training, *training_state);
        add_section(file, kTrainingTag, training);
    }
    file.put<std::uint32_t>(crc32(file.bytes().data(), file.bytes().size()));
    write_file_atomically(path, file.bytes());
}

LoadedModel load_model(const std::string& path) { return load_model_bytes(read_model_file(path), path); }

LoadedModel load_model_bytes(const std::vector<unsigned char>& bytes, const std::string& path) {
    const std::string what = "model file '" + path + "'";
    if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
        throw Error("'" + path + "' is not an edgeqc model file (wrong magic bytes)");
    // Header (magic, version, section count) and the CRC trailer.
    constexpr std::size_t kHeaderBytes = sizeof kMagic + 8;
    if (bytes.size() < kHeaderBytes + 4) throw Error(what + " is truncated");
    ByteReader file(bytes.data(), bytes.size(), what);
    for (std::size_t i = 0; i < sizeof kMagic; ++i) file.get<char>();
    const auto version = file.get<std::uint32_t>();
    const auto sections = file.get<std::uint32_t>();
    std::uint32_t stored_crc;
    std::memcpy(&stored_crc, bytes.data() + bytes.size() - 4, 4);
    // The checksum comes first: a flipped bit in the version field must read as damage, not as a newer format.
    if (crc32(bytes.data(), bytes.size() - 4) != stored_crc) {
        if (version > kModelFormatVersion)
            throw Error(what + " is corrupted, or was written by a newer edgeqc (model format v" + std::to_string(version) + ")");
        ByteReader walk(bytes.data() + kHeaderBytes, bytes.size() - kHeaderBytes - 4, what);
        for (std::uint32_t s = 0; s < std::min<std::uint32_t>(sections, 64); ++s) {
            walk.get<std::uint32_t>();
            const auto length = walk.get<std::uint64_t>();
            if (length > walk.remaining()) throw Error(what + " is truncated (a section runs past the end of the file)");
            walk.sub_reader(static_cast<std::size_t>(length));
        }
        throw Error(what + " is corrupted (checksum mismatch); re-copy or re-train it");
    }
    if (version > kModelFormatVersion)
        throw Error(what + " uses model format v" + std::to_string(version) + ", newer than this edgeqc (reads up to v" +
                    std::to_string(kModelFormatVersion) + "); upgrade edgeqc to load it");
    if (version == 0) file.fail("format version 0 does not exist");
    if (sections > 64) file.fail("implausible section count");
    ByteReader body(bytes.data() + kHeaderBytes, bytes.size() - kHeaderBytes - 4, what);
    std::map<std::uint32_t, ByteReader> found;
    for (std::uint32_t s = 0; s < sections; ++s) {
        const auto section_tag = body.get<std::uint32_t>();
        const auto length = body.get<std::uint64_t>();
        if (length > body.remaining()) file.fail("a section runs past the end of the file");
        found.emplace(section_tag, body.sub_reader(static_cast<std::size_t>(length)));
    }
    if (!found.count(kMetaTag) || !found.count(kTensorsTag)) file.fail("the META or TENS section is missing");

    if (version >= 2 && !found.count(kPreprocessingTag)) file.fail("the PREP section is missing");

    LoadedModel model;
    model.description = decode_meta(found.at(kMetaTag));
    if (found.count(kPreprocessingTag)) {
        model.description.input.enhancement = decode_enhancement(found.at(kPreprocessingTag));
        try {
            validate_input_format(model.description.input);
        } catch (const Error& e) {
            file.fail(e.what());
        }
    }
    ResolvedArchitecture architecture;
    try {
        architecture = model.description.resolve();
    } catch (const Error& e) {
        file.fail(std::string("its architecture cannot be built: ") + e.what());
    }
    model.tensors = decode_tensors(found.at(kTensorsTag), architecture, version);
    if (found.count(kActivationsTag)) model.activations = decode_activations(found.at(kActivationsTag), architecture);
    try {
        validate_model(model);
    } catch (const Error& e) {
        file.fail(e.what());
    }
    if (found.count(kTrainingTag)) {
        model.training_state = decode_training_state(found.at(kTrainingTag), version);
        model.has_training_state = true;
    }
    return model;
}

}  // namespace edgeqc
