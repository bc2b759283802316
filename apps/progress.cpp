// Progress bar drawing and the console observer.
#include "progress.hpp"

#include <cstdio>
#include <sys/ioctl.h>
#include <unistd.h>

namespace edgeqc {

std::string format_duration(double seconds) {
    if (!(seconds >= 0) || seconds > 1e7) return "--:--";
    const long total = static_cast<long>(seconds + 0.5);
    char text[32];
    if (total >= 3600) std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", total / 3600, total / 60 % 60, total % 60);
    else std::snprintf(text, sizeof text, "%ld:%02ld", total / 60, total % 60);
    return text;
}

ProgressBar::ProgressBar(std::string label, std::size_t total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double ProgressBar::seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::update(std::size_t done, const std::string& detail) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    // Redrawing more than ~10 times a second only costs time.
    if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    constexpr int kWidth = 24;
    const double fraction = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
    const int filled = static_cast<int>(fraction * kWidth);
    const double elapsed = seconds();
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : -1.0;
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(kWidth, '.');
    char line[512];
    std::snprintf(line, sizeof line, "%s [%s] %3.0f%% %zu/%zu %s %.1f %s/s ETA %s", label_.c_str(), bar.c_str(),
                  100.0 * fraction, done, total_, detail.c_str(), rate, unit_.c_str(), format_duration(eta).c_str());
    // A line longer than the terminal wraps, and every redraw would then leave a stale line behind.
    winsize window{};
    std::string text = line;
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &window) == 0 && window.ws_col > 1 && text.size() >= window.ws_col)
        text.resize(window.ws_col - 1u);
    std::fprintf(stderr, "\r\033[K%s", text.c_str());
    std::fflush(stderr);
    drawn_ = true;
}

void ProgressBar::finish() {
    if (!drawn_) return;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    drawn_ = false;
}

void ConsoleObserver::info(const std::string& line) {
    const std::lock_guard<std::mutex> lock(output_);
    std::fprintf(info_stream_, "%s\n", line.c_str());
    std::fflush(info_stream_);
}

void ConsoleObserver::warning(const std::string& line) {
    const std::lock_guard<std::mutex> lock(output_);
    std::fprintf(stderr, "warning: %s\n", line.c_str());
    std::fflush(stderr);
}

void ConsoleObserver::progress(const std::string& task, std::size_t done, std::size_t total, const std::string& detail) {
    if (!bar_ || task != task_) {
        bar_ = std::make_unique<ProgressBar>(task, total, "img");
        task_ = task;
    }
    bar_->set_total(total);
    bar_->update(done, detail);
}

void ConsoleObserver::progress_end() { bar_.reset(); }

void ConsoleObserver::epoch_end(const EpochReport& r) {
    const EpochRecord& e = r.record;
    char part[256];
    std::snprintf(part, sizeof part, "epoch %3d/%d  loss %.4f  acc %.4f", e.epoch, r.total_epochs, e.train_loss,
                  e.train_accuracy);
    std::string line = part;
    if (r.validated) {
        std::snprintf(part, sizeof part, "  | val loss %.4f  acc %.4f  macro-F1 %.4f", e.validation_loss,
                      e.validation_accuracy, e.validation_macro_f1);
        line += part;
    }
    if (r.pseudo_labelling) {
        std::snprintf(part, sizeof part, "  | pseudo %zu (w %.2f)", e.pseudo_labelled, static_cast<double>(r.pseudo_weight));
        line += part;
    }
    std::snprintf(part, sizeof part, "  | lr %.2e  %.1f img/s  %.1fs  ETA %s%s%s", e.learning_rate, e.images_per_second,
                  e.seconds, format_duration(r.eta_seconds).c_str(), r.improved && r.validated ? "  *best" : "",
                  r.reduced_lr ? "  lr reduced" : "");
    line += part;
    // Under --json the epoch lines go with the information lines to standard error (standard output is the JSON),
    // whole, so that a loader thread's warning cannot cut into one.
    const std::lock_guard<std::mutex> lock(output_);
    std::fprintf(info_stream_, "%s\n", line.c_str());
    std::fflush(info_stream_);
}

}  // namespace edgeqc
