// What decoding camera frames at a DCT scale costs in accuracy and saves in time: every JPEG of a labelled test
// folder (optionally enlarged first, as a camera that sees the part larger would deliver it) classified twice, from a
// full-size decode and from one at libjpeg-turbo's smallest scale that keeps MARGIN x the model's input size; prints
// the top-1 agreement of the two, both accuracies, and decode + preprocessing time per image.
//
// Usage: edgeqc_decode_scaling MODEL TEST_DIR ENLARGE MARGIN
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "bench/timing.hpp"
#include "data/classifier.hpp"
#include "data/dataset.hpp"
#include "data/image.hpp"
#include "engine/model_file.hpp"

using namespace edgeqc;

namespace {

std::vector<unsigned char> read_bytes(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

int positive_argument(const char* text, const char* what) {
    const int value = std::atoi(text);
    if (value < 1 || value > 16) throw std::invalid_argument(std::string(what) + " must be 1 to 16, not '" + text + "'");
    return value;
}

bool is_jpeg(const std::vector<unsigned char>& bytes) { return bytes.size() > 3 && bytes[0] == 0xFF && bytes[1] == 0xD8; }

struct Tally {
    int images = 0, decoded_smaller = 0, agreeing = 0, right_full = 0, right_scaled = 0;
    double seconds_full = 0, seconds_scaled = 0;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fputs("usage: edgeqc_decode_scaling MODEL TEST_DIR ENLARGE MARGIN\n", stderr);
        return 2;
    }
    try {
        Classifier classifier(load_model(argv[1]), 1, 1);
        const std::string root = argv[2];
        const int enlarge = positive_argument(argv[3], "ENLARGE");
        const int margin = positive_argument(argv[4], "MARGIN");
        const InputFormat& input = classifier.description().input;
        const DecodeSize at_least{input.width * margin, input.height * margin};
        std::vector<float> preprocessed(classifier.input_size());
        Tally t;
        // Decodes and preprocesses (timed), then classifies; the class index.
        const auto classify = [&](const std::vector<unsigned char>& bytes, DecodeSize size, double& seconds, int& width) {
            const auto start = std::chrono::steady_clock::now();
            const Image decoded = decode_image_memory(bytes.data(), bytes.size(), "frame", size);
            classifier.preprocess(decoded, preprocessed.data());
            seconds += bench::seconds_since(start);
            width = decoded.width;
            Prediction prediction;
            classifier.classify_batch(preprocessed.data(), 1, &prediction);
            return prediction.class_index;
        };
        for (const LabelledImage& image : scan_with_classes(root, classifier.description().class_names).images) {
            std::vector<unsigned char> bytes = read_bytes(image.path);
            if (!is_jpeg(bytes)) continue;
            if (enlarge > 1) {
                const Image original = decode_image_memory(bytes.data(), bytes.size(), image.path);
                bytes = encode_jpeg(resize_image(original, original.width * enlarge, original.height * enlarge), 90, "frame");
            }
            int full_width = 0, scaled_width = 0;
            const int full = classify(bytes, {}, t.seconds_full, full_width);
            const int scaled = classify(bytes, at_least, t.seconds_scaled, scaled_width);
            ++t.images;
            t.decoded_smaller += scaled_width < full_width;
            t.agreeing += full == scaled;
            t.right_full += full == image.label;
            t.right_scaled += scaled == image.label;
        }
        if (t.images == 0) throw std::runtime_error("no JPEG images in " + root);
        const double n = t.images;
        std::printf("| %d | %d | %d | %d | %.2f | %.2f | %.2f | %.3f | %.3f |\n", enlarge, margin, t.images,
                    t.decoded_smaller, 100 * t.agreeing / n, 100 * t.right_full / n, 100 * t.right_scaled / n,
                    1e3 * t.seconds_full / n, 1e3 * t.seconds_scaled / n);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "edgeqc_decode_scaling: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
