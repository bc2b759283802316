// The folder layering of the tree: engine/ (the inference runtime's core) includes nothing above it, and every
// folder includes only its own level and those below: engine < data < layers < optim < apps, with edge/ (the
// inspection node) beside the training side: engine < data < edge < apps, never layers/ or optim/. A new include
// that breaks the order fails here, naming the file and the line.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>

namespace fs = std::filesystem;

namespace {

// Each folder and the folders it may include.
const std::map<std::string, std::set<std::string>> kMayInclude = {
    {"engine", {"engine"}},
    {"data", {"engine", "data"}},
    {"edge", {"engine", "data", "edge"}},
    {"layers", {"engine", "data", "layers"}},
    {"optim", {"engine", "data", "layers", "optim"}},
    {"apps", {"engine", "data", "edge", "layers", "optim", "apps"}},
};

}  // namespace

TEST_CASE("no folder includes a folder above it") {
    const fs::path root = EDGEQC_SOURCE_DIR;
    const std::regex include_line(R"(^\s*#\s*include\s*"([a-z_]+)/)");
    int files = 0;
    for (const auto& [folder, allowed] : kMayInclude) {
        for (const auto& entry : fs::recursive_directory_iterator(root / folder)) {
            const std::string extension = entry.path().extension().string();
            if (extension != ".hpp" && extension != ".cpp") continue;
            ++files;
            std::ifstream in(entry.path());
            std::string line;
            for (int number = 1; std::getline(in, line); ++number) {
                std::smatch match;
                if (!std::regex_search(line, match, include_line)) continue;
                if (!kMayInclude.count(match[1].str())) continue;
                INFO(fs::relative(entry.path(), root).string() << ":" << number << ": " << line);
                CHECK(allowed.count(match[1].str()) == 1);
            }
        }
    }
    CHECK(files > 50);  // the scan really looked at the tree
}
