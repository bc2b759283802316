// Fixtures shared by the test files: a self-deleting temporary folder, raw file I/O, a tiny synthetic
// dataset, and running the edgeqc binary. Test data is always generated here, never committed.
#pragma once

// Whether this build carries AddressSanitizer (GCC defines __SANITIZE_ADDRESS__, clang has the feature test).
#if defined(__SANITIZE_ADDRESS__)
#define EDGEQC_ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EDGEQC_ADDRESS_SANITIZER 1
#endif
#endif
#ifndef EDGEQC_ADDRESS_SANITIZER
#define EDGEQC_ADDRESS_SANITIZER 0
#endif

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/wait.h>
#include <utility>
#include <vector>

#include "data/synth.hpp"
#include "layers/network.hpp"
#include "optim/trainer.hpp"
#include "optim/training_kernels.hpp"

namespace edgeqc::testing {

namespace fs = std::filesystem;

class TempFolder {
public:
    TempFolder() {
        static std::atomic<int> counter{0};
        path_ = fs::temp_directory_path() /
                ("edgeqc_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        fs::remove_all(path_);
        fs::create_directories(path_);
    }
    ~TempFolder() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    TempFolder(const TempFolder&) = delete;
    TempFolder& operator=(const TempFolder&) = delete;

    // The path of name inside the folder, with its parent folders created.
    std::string file(const std::string& name) const {
        const fs::path path = path_ / name;
        fs::create_directories(path.parent_path());
        return path.string();
    }
    std::string str() const { return path_.string(); }

private:
    fs::path path_;
};

inline void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
    std::ofstream file(path, std::ios::binary);
    file.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(file.good());
}

inline std::vector<unsigned char> read_bytes(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

inline std::string read_text(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

// A small synthetic dataset (5 classes) at folder, 16 x 20 pixels unless asked: enough to train a tiny net in a second.
inline void write_tiny_dataset(const std::string& folder, int per_class, int height = 16, int width = 20) {
    SynthOptions options;
    options.per_class = per_class;
    options.height = height;
    options.width = width;
    options.seed = 7;
    write_synthetic_dataset(folder, options);
}

// Training options for write_tiny_dataset's images: a two-block net (conv + batch norm, conv) at 16 x 20,
// 2 epochs of batch 8, seed 5: a full run takes a fraction of a second.
inline TrainOptions tiny_train_options(const std::string& data, const std::string& out) {
    TrainOptions o;
    o.data_dir = data;
    o.output_path = out;
    o.architecture = "c4bn-p-c6-p-fc";
    o.input.height = 16;
    o.input.width = 20;
    o.epochs = 2;
    o.batch_size = 8;
    o.learning_rate = 3e-3f;
    o.seed = 5;
    return o;
}

// The description of a model of `spec` on channels x height x width inputs, with four classes.
inline ModelDescription model_description(const std::string& spec, int channels, int height, int width) {
    ModelDescription d;
    d.architecture = spec;
    d.class_names = {"crack", "hole", "normal", "pinhole"};
    d.input.channels = channels;
    d.input.height = height;
    d.input.width = width;
    return d;
}

// A trained-looking model of `description`: PyTorch-style random weights from `seed`, and batch-norm running
// statistics away from their initial values (uniform in [0.5, 1.5)), so that folding them has work to do.
inline Model random_model(const ModelDescription& description, std::uint64_t seed) {
    auto network = build_network(description);
    network->initialize(InitScheme::Torch, seed);
    Rng rng(seed + 1);
    for (std::size_t i = 0; i < network->buffers().slots().size(); ++i) {
        const TensorView v = network->buffers().value(i);
        for (std::size_t k = 0; k < v.size(); ++k) v[k] = 0.5f + rng.uniform();
    }
    return network->to_model(description);
}

// A path as one shell word.
// Whether this CPU has a bf16 GEMM of its own (AVX-512 BF16), rather than only the scalar reference, which bf16
// training refuses unless the scalar arch is chosen on purpose.
inline bool cpu_runs_bf16_products() {
    const auto& tables = available_training_kernel_tables();
    return std::any_of(tables.begin(), tables.end(), [](const TrainingKernelTable* table) {
        return table->gemm_bf16 != reference_training_kernels().gemm_bf16;
    });
}

inline std::string shell_quoted(const std::string& path) { return "'" + path + "'"; }

struct CommandResult {
    int exit_code = -1;
    std::string output;  // stdout and stderr together
};

// The shell command that starts the edgeqc binary built beside the tests (under the emulator in cross builds).
inline std::string edgeqc_command() { return EDGEQC_CLI_LAUNCHER " " EDGEQC_CLI_PATH; }

// Runs a command line with its stderr merged into its stdout (after the line's own redirections, so that
// "... --json 2>/dev/null" keeps only the JSON).
inline CommandResult run_command(const std::string& command_line) {
    const std::string command = "{ " + command_line + "; } 2>&1";
    CommandResult result;
    std::FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    char buffer[4096];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
    const int status = ::pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

// Runs the edgeqc binary built beside the tests with the given argument string (shell-quoted by the caller).
inline CommandResult run_edgeqc(const std::string& arguments) { return run_command(edgeqc_command() + " " + arguments); }

// `edgeqc ARGUMENTS` started in the background, its output (stdout and stderr) on the returned pipe; exec, so that a
// signal reaches edgeqc (or the emulator running it), not an intermediate shell.
inline std::pair<pid_t, int> start_edgeqc(const std::string& arguments) {
    int output_pipe[2];
    REQUIRE(::pipe(output_pipe) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::dup2(output_pipe[1], STDOUT_FILENO);
        ::dup2(output_pipe[1], STDERR_FILENO);
        ::close(output_pipe[0]);
        const std::string command = "exec " + edgeqc_command() + " " + arguments;
        ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(output_pipe[1]);
    return {child, output_pipe[0]};
}

// The same for edgeqc-infer, the runtime-only binary.
// What `edgeqc ARGUMENTS` printed and how it ended, after a SIGINT sent when its output first showed `cue` (as
// Ctrl-C would); interrupted is false when the cue never came and the command ended by itself.
struct InterruptedRun {
    std::string output;
    int status = 0;  // as waitpid() reports it
    bool interrupted = false;
};
inline InterruptedRun interrupt_edgeqc(const std::string& arguments, const std::string& cue) {
    const auto [child, output_fd] = start_edgeqc(arguments);
    InterruptedRun run;
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(output_fd, buffer, sizeof buffer)) > 0) {
        run.output.append(buffer, static_cast<std::size_t>(n));
        if (!run.interrupted && run.output.find(cue) != std::string::npos) {
            ::kill(child, SIGINT);
            run.interrupted = true;
        }
    }
    ::close(output_fd);
    ::waitpid(child, &run.status, 0);
    return run;
}

inline CommandResult run_edgeqc_infer(const std::string& arguments) {
    return run_command(EDGEQC_CLI_LAUNCHER " " EDGEQC_INFER_PATH " " + arguments);
}

}  // namespace edgeqc::testing
