// How `edgeqc predict` and `edgeqc-infer` print a prediction or a failure: one line per image, as text or JSON,
// so the two tools' outputs can be compared line for line.
#pragma once

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "data/classifier.hpp"
#include "engine/json_output.hpp"

namespace edgeqc {

inline void print_prediction(const std::string& path, const Prediction& p, const std::vector<std::string>& classes,
                             bool json) {
    const auto k = static_cast<std::size_t>(p.class_index);
    if (json) {
        nlohmann::json probabilities;
        for (std::size_t c = 0; c < classes.size(); ++c) probabilities[classes[c]] = p.probabilities[c];
        std::cout << json_text({{"image", path}, {"class", classes[k]}, {"confidence", p.probabilities[k]},
                                {"probabilities", probabilities}})
                  << std::endl;
        return;
    }
    std::printf("%s: %s (%.4f)  [", path.c_str(), classes[k].c_str(), p.probabilities[k]);
    for (std::size_t c = 0; c < classes.size(); ++c)
        std::printf("%s%s %.4f", c ? ", " : "", classes[c].c_str(), p.probabilities[c]);
    std::printf("]\n");
    std::fflush(stdout);
}

inline void print_prediction_error(const std::string& path, const std::string& message, bool json) {
    if (json) std::cout << json_text({{"image", path}, {"error", message}}) << std::endl;
    else std::fprintf(stderr, "%s: error: %s\n", path.c_str(), message.c_str());
}

}  // namespace edgeqc
