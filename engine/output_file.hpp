// Writing output files safely: atomically and durably (a temporary file beside the target, fsync, rename, fsync of
// the folder), never over something that is not a regular file, with the temporary files of dead processes cleaned
// up; and the checks a command makes on its output paths before any work is spent.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace edgeqc {

// Writes bytes to path via path.tmp<PID> and rename, so a crash, a power cut or a full disk never leaves a partial
// file; the previous file at path stays until the new one is complete. Refuses to replace anything at path that is
// not a regular file (a folder, a symbolic link, a FIFO, a device). Removes path.tmp<PID> files left by processes
// that no longer run (a kill -9 during a write). Throws edgeqc::Error.
void write_file_atomically(const std::string& path, const std::vector<unsigned char>& bytes);

// Fails before any work is spent when a file (a model, a report: `what`) could not be written at output_path: its
// folder is missing, something other than a regular file is there, or a probe file cannot be created beside it.
// Throws edgeqc::Error.
void check_output_writable(const std::string& output_path, const char* what = "the model");

// Fails when two of a command's outputs (option name, path; empty paths ignored) are the same file, which the second
// would overwrite: `--report X --out X`. Throws edgeqc::Error naming both options.
void check_distinct_outputs(const std::vector<std::pair<std::string, std::string>>& outputs);

}  // namespace edgeqc
