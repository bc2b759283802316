// Writes edgeqc's random streams for one training run so that bench/torch_ref.py --replay-streams can train
// PyTorch from exactly the same start: the initial weights (Network::initialize, default architecture) and the
// order of every epoch (epoch_order, as the training loader draws it). This separates "the two engines draw
// different random numbers" from "the two engines compute training differently" (bench/RESULTS.md).
//
// Usage: edgeqc_streams TRAIN_DIR SEED EPOCHS PREFIX [HEIGHTxWIDTH]
// Writes PREFIX.init.txt ("name count" per parameter tensor, arena order), PREFIX.init.f32 (their values,
// little-endian float32, concatenated) and PREFIX.orders.txt (one line of training-split indices per epoch).
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "data/sampling.hpp"
#include "engine/architecture.hpp"
#include "engine/error.hpp"
#include "engine/input_format.hpp"
#include "layers/network.hpp"

int main(int argc, char** argv) {
    using namespace edgeqc;
    if (argc != 5 && argc != 6) {
        std::fprintf(stderr, "usage: edgeqc_streams TRAIN_DIR SEED EPOCHS PREFIX [HEIGHTxWIDTH]\n");
        return 2;
    }
    try {
        const std::uint64_t seed = std::stoull(argv[2]);
        const int epochs = std::stoi(argv[3]);
        const std::string prefix = argv[4];
        int height = 80, width = 120;
        if (argc == 6) parse_input_size(argv[5], height, width);
        const FolderScan scan = scan_labelled_folder(argv[1]);
        const int classes = static_cast<int>(scan.class_names.size());
        const Split split = stratified_split(scan.images, classes, 0.2);  // the trainer's default --val-split
        Network network(kDefaultArchitecture, Shape{1, height, width}, classes);
        network.initialize(InitScheme::He, seed);

        std::ofstream names(prefix + ".init.txt"), values(prefix + ".init.f32", std::ios::binary);
        const ParameterArena& arena = network.parameters();
        for (const ParameterSlot& slot : arena.slots()) {
            names << slot.name << " " << slot.shape.elements() << "\n";
            values.write(reinterpret_cast<const char*>(arena.values() + slot.offset),
                         static_cast<std::streamsize>(slot.shape.elements() * sizeof(float)));
        }
        std::vector<int> labels;
        for (const LabelledImage& image : split.train) labels.push_back(image.label);
        std::ofstream orders(prefix + ".orders.txt");
        for (int epoch = 1; epoch <= epochs; ++epoch) {
            const std::vector<std::size_t> order = epoch_order(labels, true, false, seed, epoch);
            for (std::size_t i = 0; i < order.size(); ++i) orders << order[i] << (i + 1 == order.size() ? "\n" : " ");
        }
        if (!names || !values || !orders) throw Error("cannot write the files at '" + prefix + "'");
        std::printf("wrote %zu tensors and %d epoch orders of %zu images to %s.*\n", arena.slots().size(), epochs,
                    labels.size(), prefix.c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "edgeqc_streams: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
