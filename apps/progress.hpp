// How the command-line tools show work in progress: a one-line progress bar with rate and ETA on stderr, and the
// observer that prints what training and evaluation report. On a terminal the bar redraws in place; when stderr is
// not a terminal (logs, CI) it stays silent so logs are not flooded, and summary lines say what happened instead.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "optim/progress_observer.hpp"

namespace edgeqc {

class ProgressBar {
public:
    ProgressBar(std::string label, std::size_t total, std::string unit);
    ~ProgressBar() { finish(); }  // an exception mid-epoch must not leave the bar glued to its error message
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;
    // done: items finished so far; detail: extra text such as the running loss.
    void update(std::size_t done, const std::string& detail = {});
    // For work whose size is known only once it has started (e.g. after a folder scan).
    void set_total(std::size_t total) { total_ = total; }
    // Clears the bar line (the caller prints its own summary).
    void finish();
    double seconds() const;

private:
    std::string label_, unit_;
    std::size_t total_;
    bool enabled_;
    bool drawn_ = false;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

// "1:05:03" or "4:07".
std::string format_duration(double seconds);

// Prints what a training run or an evaluation reports: facts on stdout, warnings on stderr, progress as a bar,
// each epoch as one line.
class ConsoleObserver : public ProgressObserver {
public:
    // info_to_stderr: information lines go to standard error, leaving standard output to a command's JSON.
    explicit ConsoleObserver(bool info_to_stderr = false) : info_stream_(info_to_stderr ? stderr : stdout) {}
    void info(const std::string& line) override;
    void warning(const std::string& line) override;
    void progress(const std::string& task, std::size_t done, std::size_t total, const std::string& detail) override;
    void progress_end() override;
    void epoch_end(const EpochReport& report) override;

private:
    std::FILE* info_stream_;
    std::mutex output_;  // warnings come from loader threads
    std::unique_ptr<ProgressBar> bar_;
    std::string task_;
};

}  // namespace edgeqc
