// `edgeqc-infer`: classifies images with the inference runtime alone (decode, preprocess, plan, model file), the
// first version of the edge binary. It links no training code; its output matches `edgeqc predict` line for line.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "data/classifier.hpp"
#include "engine/error.hpp"
#include "engine/kernels.hpp"
#include "engine/model_file.hpp"
#include "prediction_output.hpp"
#include "max_pixels_option.hpp"
#include "tool_errors.hpp"

using namespace edgeqc;

namespace {

struct Arguments {
    std::string model;
    std::vector<std::string> images;
    int threads = 0;
    bool json = false;
    bool memory = false;
    std::int64_t max_pixels = 0;
};

int run(const Arguments& a) {
    if (a.threads < 0 || a.threads > 1024) throw Error("--threads must be 0 (all cores) to 1024");
    if (a.threads > 0) omp_set_num_threads(a.threads);
    Classifier classifier(load_model(a.model));  // the loaded tensors end up in the plan's packed form only
    if (a.memory) {
        const PlanMemory m = classifier.plan().memory();
        std::fprintf(stderr, "plan memory %.1f MiB: weights %.1f, activations %.1f, workspace %.1f (kernels: %s)\n",
                     m.total() / 1048576.0, m.weights / 1048576.0, m.activations / 1048576.0, m.workspace / 1048576.0,
                     kernels().kernels_used.c_str());
    }
    int failures = 0;
    for (const std::string& path : a.images) {
        try {
            print_prediction(path, classifier.classify_file(path), classifier.description().class_names, a.json);
        } catch (const Error& e) {
            ++failures;
            print_prediction_error(path, e.what(), a.json);
        }
    }
    return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"edgeqc-infer: classify images with a trained edgeqc model (inference runtime only)"};
    Arguments a;
    app.add_option("model", a.model, "Model file (.eqc)")->required();
    app.add_option("images", a.images, "Image files (PNG, JPEG, BMP, PGM/PPM)")->required();
    app.add_option("--threads", a.threads, "Threads (0 = all cores)")->capture_default_str();
    app.add_flag("--json", a.json, "Print one JSON object per image, one per line");
    app.add_flag("--memory", a.memory, "Print the inference plan's memory (weights, activations, workspace) to stderr");
    add_max_pixels_option(app, a.max_pixels);
    app.set_version_flag("--version", std::string("edgeqc-infer ") + EDGEQC_VERSION);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);
        std::fprintf(stderr, "edgeqc-infer: error: %s\nRun with --help for more information.\n", e.what());
        return 1;
    }
    return exit_status_of("edgeqc-infer", "", [&] {
        set_max_image_pixels(a.max_pixels);
        return run(a);
    });
}
