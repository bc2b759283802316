// The folder layering of the tree: engine/ (the inference runtime's core) includes nothing above it, and every
// folder includes only its own level and those below: engine < data < layers < optim < apps. A new include that
// breaks the order fails here, naming the file and the line.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>

namespace fs = std::filesystem;

namespace {

const std::map<std::string, int> kLevels = {{"engine", 0}, {"data", 1}, {"layers", 2}, {"optim", 3}, {"apps", 4}};

}  // namespace

TEST_CASE("no folder includes a folder above it") {
    const fs::path root = EDGEQC_SOURCE_DIR;
    const std::regex include_line(R"(^\s*#\s*include\s*"([a-z_]+)/)");
    int files = 0;
    for (const auto& [folder, level] : kLevels) {
        for (const auto& entry : fs::recursive_directory_iterator(root / folder)) {
            const std::string extension = entry.path().extension().string();
            if (extension != ".hpp" && extension != ".cpp") continue;
            ++files;
            std::ifstream in(entry.path());
            std::string line;
            for (int number = 1; std::getline(in, line); ++number) {
                std::smatch match;
                if (!std::regex_search(line, match, include_line)) continue;
                const auto included = kLevels.find(match[1].str());
                if (included == kLevels.end()) continue;
                INFO(fs::relative(entry.path(), root).string() << ":" << number << ": " << line);
                CHECK(included->second <= level);
            }
        }
    }
    CHECK(files > 50);  // the scan really looked at the tree
}
