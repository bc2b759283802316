// Atomic, durable writes that replace only regular files, and the up-front checks of output paths.
#include "engine/output_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "engine/error.hpp"

namespace edgeqc {

namespace fs = std::filesystem;

namespace {

// What is at path when it is something a write must not replace; empty when nothing is there or a regular file.
std::string not_a_regular_file(const std::string& path) {
    struct stat status {};
    if (::lstat(path.c_str(), &status) != 0) return {};
    if (S_ISREG(status.st_mode)) return {};
    if (S_ISDIR(status.st_mode)) return "it is a folder";
    if (S_ISLNK(status.st_mode)) return "it is a symbolic link (give the file it points to, or a new path)";
    if (S_ISFIFO(status.st_mode)) return "it is a FIFO";
    if (S_ISCHR(status.st_mode) || S_ISBLK(status.st_mode)) return "it is a device";
    return "it is not a regular file";
}

// path.tmp<PID> files of processes that are gone: what a kill -9 in the middle of a write leaves.
void remove_stale_temporaries(const std::string& path) {
    const fs::path target(path);
    const fs::path folder = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    const std::string prefix = target.filename().string() + ".tmp";
    std::error_code error;
    for (fs::directory_iterator it(folder, error), end; !error && it != end; it.increment(error)) {
        const std::string name = it->path().filename().string();
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string digits = name.substr(prefix.size());
        if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
        const pid_t pid = static_cast<pid_t>(std::stol(digits));
        if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) {
            std::error_code ignored;
            fs::remove(it->path(), ignored);
        }
    }
}

}  // namespace

void write_file_atomically(const std::string& path, const std::vector<unsigned char>& bytes) {
    if (const std::string what = not_a_regular_file(path); !what.empty())
        throw Error("cannot write '" + path + "': " + what + ", and only a regular file is replaced");
    remove_stale_temporaries(path);
    const std::string temporary = path + ".tmp" + std::to_string(::getpid());
    std::FILE* file = std::fopen(temporary.c_str(), "wb");
    if (!file) throw Error("cannot write '" + path + "': " + std::strerror(errno));
    const bool written = std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
    const int write_errno = errno;
    const bool flushed = std::fflush(file) == 0 && ::fsync(::fileno(file)) == 0;
    const bool closed = std::fclose(file) == 0;
    if (!written || !flushed || !closed) {
        std::remove(temporary.c_str());
        throw Error("cannot write '" + path + "': " + std::strerror(written ? errno : write_errno) +
                    " (the previous file, if any, is unchanged)");
    }
    std::error_code error;
    fs::rename(temporary, path, error);
    if (error) {
        std::remove(temporary.c_str());
        throw Error("cannot write '" + path + "': " + error.message());
    }
    // Make the rename itself durable: after a power cut next to the machine the new file must be the one there.
    const fs::path folder = fs::path(path).parent_path();
    const int folder_fd = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (folder_fd >= 0) {
        ::fsync(folder_fd);
        ::close(folder_fd);
    }
}

void check_output_writable(const std::string& output_path, const char* what) {
    const fs::path path(output_path);
    const fs::path folder = path.parent_path().empty() ? "." : path.parent_path();
    const std::string cannot = std::string("cannot write ") + what + " to '" + output_path + "': ";
    std::error_code error;
    if (!fs::is_directory(folder, error)) throw Error(cannot + "folder '" + folder.string() + "' does not exist");
    if (const std::string there = not_a_regular_file(output_path); !there.empty()) throw Error(cannot + there);
    const std::string probe = output_path + ".probe" + std::to_string(::getpid());
    std::FILE* file = std::fopen(probe.c_str(), "wb");
    if (!file) throw Error(cannot + std::strerror(errno));
    std::fclose(file);
    std::remove(probe.c_str());
}

void check_distinct_outputs(const std::vector<std::pair<std::string, std::string>>& outputs) {
    std::vector<std::pair<std::string, fs::path>> seen;
    for (const auto& [option, path] : outputs) {
        if (path.empty()) continue;
        std::error_code error;
        const fs::path resolved = fs::weakly_canonical(fs::absolute(path, error), error);
        for (const auto& [other_option, other] : seen)
            if (other == resolved)
                throw Error(option + " and " + other_option + " name the same file '" + path + "': give each its own path");
        seen.emplace_back(option, resolved);
    }
}

}  // namespace edgeqc
