// Helper of bench/edge_stream.sh, the end-to-end benchmark of edgeqc-edge. Two modes:
//   edgeqc_edge_stream prepare OUT_DIR FRAMES SECONDS   the reference network as float and int8 models (He weights;
//       speed does not depend on them), their bare inference throughput at batch 1 (the plan alone, in this run; also
//       as the node's lanes run it: one one-thread plan per thread, side by side),
//       and OUT_DIR/stream.mjpeg: FRAMES 640x480 JPEG frames of synthetic surfaces (a pool of 40, repeated)
//   edgeqc_edge_stream feed FILE FPS                      writes FILE's frames to standard output at FPS frames/s
// OMP_NUM_THREADS sets the threads of the bare figures.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "data/image.hpp"
#include "data/synth.hpp"
#include "edge/mjpeg_splitter.hpp"
#include "engine/model_file.hpp"
#include "reference_models.hpp"
#include "timing.hpp"

using namespace edgeqc;
using namespace edgeqc::bench;

namespace {

void prepare(const std::string& out, int frames, double seconds) {
    const ReferenceModels models = reference_models(kDefaultArchitecture, 80, 120, kSynthClasses);
    const Model& folded = models.folded;
    const Model& quantized = models.quantized;
    Rng rng(2);
    std::vector<float> images(80 * 120);
    for (float& v : images) v = rng.normal();
    save_model(out + "/float.eqc", folded);
    save_model(out + "/int8.eqc", quantized);
    for (const auto& [name, model] : {std::pair<const char*, const Model*>{"float", &folded}, {"int8", &quantized}}) {
        InferencePlan plan(*model, 1);
        const double per_image = time_per_call([&] { plan.run(images.data(), 1); }, seconds);
        const int threads = omp_get_max_threads();
        std::printf("bare %s batch 1: %.1f img/s (%d threads)\n", name, 1.0 / per_image, threads);
        // The node's way on a stream: as many one-thread plans on one set of weights, each on its own image.
        InferencePlan first(*model, 1, 1);
        std::vector<InferencePlan> lanes;
        for (int lane = 1; lane < threads; ++lane) lanes.push_back(first.sharing_weights());
        std::vector<double> lane_seconds(static_cast<std::size_t>(threads));
        std::vector<std::thread> workers;
        for (int lane = 0; lane < threads; ++lane)
            workers.emplace_back([&, lane] {
                InferencePlan& p = lane == 0 ? first : lanes[static_cast<std::size_t>(lane - 1)];
                lane_seconds[static_cast<std::size_t>(lane)] = time_per_call([&] { p.run(images.data(), 1); }, seconds);
            });
        double images_per_second = 0;
        for (std::size_t lane = 0; lane < workers.size(); ++lane) {
            workers[lane].join();
            images_per_second += 1.0 / lane_seconds[lane];
        }
        std::printf("bare %s in lanes: %.1f img/s (%d one-thread plans side by side)\n", name, images_per_second, threads);
    }
    std::vector<std::vector<unsigned char>> pool;
    for (int i = 0; i < 40; ++i)
        pool.push_back(encode_jpeg(render_synthetic_surface(i % static_cast<int>(kSynthClasses.size()), 640, 480, rng), 85,
                                   "frame"));
    std::ofstream stream(out + "/stream.mjpeg", std::ios::binary);
    std::size_t bytes = 0;
    for (int i = 0; i < frames; ++i) {
        const auto& frame = pool[static_cast<std::size_t>(i) % pool.size()];
        stream.write(reinterpret_cast<const char*>(frame.data()), static_cast<std::streamsize>(frame.size()));
        bytes += frame.size();
    }
    std::printf("stream: %d frames of 640x480, %.1f KiB per frame\n", frames, bytes / 1024.0 / frames);
}

void feed(const std::string& file, double fps) {
    std::ifstream in(file, std::ios::binary);
    const std::vector<unsigned char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::vector<std::vector<unsigned char>> frames;
    MjpegSplitter splitter;
    splitter.feed(bytes.data(), bytes.size(), [&](std::vector<unsigned char>&& f) { frames.push_back(std::move(f)); });
    const auto period = std::chrono::duration<double>(1.0 / fps);
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < frames.size(); ++i) {
        std::this_thread::sleep_until(start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(period * i));
        std::fwrite(frames[i].data(), 1, frames[i].size(), stdout);
        std::fflush(stdout);
    }
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const std::string mode = argc > 1 ? argv[1] : "";
        if (mode == "prepare" && argc == 5) prepare(argv[2], std::atoi(argv[3]), std::atof(argv[4]));
        else if (mode == "feed" && argc == 4) feed(argv[2], std::atof(argv[3]));
        else {
            std::fputs("usage: edgeqc_edge_stream prepare OUT_DIR FRAMES SECONDS | feed FILE FPS\n", stderr);
            return 2;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "edgeqc_edge_stream: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
