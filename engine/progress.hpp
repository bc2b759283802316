// A one-line progress bar with rate and ETA on stderr. On a terminal it redraws in place; when stderr is
// not a terminal (logs, CI) it stays silent so logs are not flooded, and callers print summary lines instead.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

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

}  // namespace edgeqc
