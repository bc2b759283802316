// The update thread: read, check, plan, self-test, put the file in place; the swaps happen on the inference thread.
#include "edge/model_updater.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "edge/model_envelope.hpp"
#include "edge/sha256.hpp"
#include "engine/error.hpp"
#include "engine/model_file.hpp"

namespace edgeqc {


ModelUpdater::ModelUpdater(std::string model_path, std::shared_ptr<Inspector> running, Image canary,
                           InspectorFactory factory, UpdateReport report, const EventLog& log, bool watch_file)
    : model_path_(std::move(model_path)),
      running_(std::move(running)),
      canary_(std::move(canary)),
      factory_(std::move(factory)),
      report_(std::move(report)),
      log_(log) {
    std::error_code error;  // a symbolic link: the updates go to (and the watch is on) the file it points to
    if (const std::filesystem::path target = std::filesystem::canonical(model_path_, error); !error)
        model_path_ = target.string();
    thread_ = std::thread([this] { run(); });
    if (!watch_file) return;
    // The folder, not the file: a file renamed over the model is a new inode. Without inotify (no instance left,
    // a folder that cannot be listed) the node runs on, with the reload command only.
    const std::string folder = std::filesystem::path(model_path_).parent_path().string();
    const std::string watched = folder.empty() ? "." : folder;
    model_events_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    const int watch_error = model_events_ < 0 ? errno : 0;
    stop_watching_ = ::eventfd(0, EFD_CLOEXEC);
    if (watch_error || stop_watching_ < 0 ||
        ::inotify_add_watch(model_events_, watched.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
        log_.warn("cannot watch '" + watched + "' for a new model file (" + std::strerror(watch_error ? watch_error : errno) +
                  "): a model replaced on disk needs the reload command");
        close_watch();
        return;
    }
    try {
        watcher_ = std::thread([this] { watch_model_file(); });
    } catch (...) {
        stop_update_thread();
        close_watch();
        throw;
    }
}

void ModelUpdater::stop_update_thread() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

ModelUpdater::~ModelUpdater() {
    stop_update_thread();
    if (watcher_.joinable()) {
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t written = ::write(stop_watching_, &one, sizeof one);
        watcher_.join();
    }
    close_watch();
}

void ModelUpdater::close_watch() {
    if (model_events_ >= 0) ::close(model_events_);
    if (stop_watching_ >= 0) ::close(stop_watching_);
    model_events_ = stop_watching_ = -1;
}

// Tells the update thread when a file is closed after writing, or renamed, at the model path. The updater's own
// renames come here too; the check finds them to be the running model and lets them pass in silence.
void ModelUpdater::watch_model_file() {
    const std::string name = std::filesystem::path(model_path_).filename().string();
    alignas(inotify_event) char buffer[16 * 1024];
    pollfd fds[2] = {{model_events_, POLLIN, 0}, {stop_watching_, POLLIN, 0}};
    while (true) {
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            log_.error(std::string("stopped watching the model file: ") + std::strerror(errno));
            return;
        }
        if (fds[1].revents) return;
        const ssize_t n = ::read(model_events_, buffer, sizeof buffer);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) {
            log_.error(std::string("stopped watching the model file: ") + (n < 0 ? std::strerror(errno) : "no events"));
            return;
        }
        bool replaced = false;
        for (ssize_t at = 0; at < n;) {
            const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
            at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
            if (event->mask & IN_IGNORED) {  // the folder was removed, or its file system unmounted
                log_.warn("the model's folder went away: a model replaced on disk needs the reload command");
                return;
            }
            replaced = replaced || (event->mask & IN_Q_OVERFLOW) || (event->len > 0 && name == event->name);
        }
        if (!replaced) continue;
        {
            std::lock_guard lock(mutex_);
            file_replaced_ = true;
        }
        wake_.notify_all();
    }
}

void ModelUpdater::request_envelope(std::string payload) {
    {
        std::lock_guard lock(mutex_);
        request_ = Request{Source::Envelope, std::move(payload)};
    }
    wake_.notify_all();
}

void ModelUpdater::request_reload() {
    {
        std::lock_guard lock(mutex_);
        request_ = Request{Source::Reload, {}};
    }
    wake_.notify_all();
}

void ModelUpdater::run() {
    std::unique_lock lock(mutex_);
    while (true) {
        wake_.wait(lock, [&] { return stopping_ || request_.has_value() || file_replaced_; });
        if (stopping_) return;
        Request request{Source::FileReplaced, {}};
        if (request_) {
            request = std::move(*request_);
            request_.reset();
        } else {
            file_replaced_ = false;
        }
        lock.unlock();
        check_and_prepare(request);
        lock.lock();
    }
}

void ModelUpdater::check_and_prepare(const Request& request) {
    std::string id = "?";
    std::string incoming;
    const bool from_disk = request.source != Source::Envelope;
    std::uint64_t writes_before = 0;  // a read of the model file taken before one of this updater's writes is stale
    {
        std::lock_guard lock(mutex_);
        writes_before = own_writes_;
    }
    try {
        std::vector<unsigned char> bytes;
        if (from_disk) {
            bytes = read_model_file(model_path_);
            id = sha256_hex(bytes);
        } else {
            ModelEnvelope envelope = open_model_envelope(request.payload);
            bytes = std::move(envelope.file);
            id = envelope.sha256;
            incoming = model_path_ + "." + id.substr(0, 12) + ".incoming";  // one per model: two may overlap
        }
        std::shared_ptr<Inspector> running;
        {
            std::lock_guard lock(mutex_);
            running = running_;
            if (from_disk && own_writes_ != writes_before) return;  // the event of that write brings a fresh read
            // A file put in place by this updater (an install, a rollback) or written twice: nothing new.
            if (request.source == Source::FileReplaced &&
                (id == running->model_id() || (ready_ && id == ready_->model_id())))
                return;
        }
        if (id == running->model_id()) throw Error("it is the model running already");
        log_.info("checking model " + id.substr(0, 12) + " (" + std::to_string(bytes.size()) + " bytes)");
        if (!incoming.empty()) write_file_atomically(incoming, bytes);
        Model model = load_model_bytes(bytes, incoming.empty() ? model_path_ : incoming);  // every field and the CRC
        const ModelDescription& now = running->description();
        if (!(model.description.input == now.input))
            throw Error("its input format differs from the running model's (a camera set up for one cannot feed the other)");
        if (model.description.class_names != now.class_names)
            throw Error("its classes (" + class_list(model.description.class_names) + ") differ from the running model's (" +
                        class_list(now.class_names) + ")");
        std::unique_ptr<Inspector> candidate = factory_(std::move(model), id);
        const Prediction canary = candidate->classify(canary_);
        float sum = 0;
        for (const float p : canary.probabilities) {
            if (!std::isfinite(p)) throw Error("the self-test on the canary image gave a probability that is not finite");
            sum += p;
        }
        if (std::abs(sum - 1.0f) > 1e-3f) throw Error("the self-test on the canary image gave probabilities that do not sum to 1");
        log_.info("model " + id.substr(0, 12) + " passed its checks; canary image: " +
                  candidate->description().class_names[static_cast<std::size_t>(canary.class_index)]);
        std::lock_guard lock(mutex_);
        if (from_disk && own_writes_ != writes_before) return;
        if (!ready_incoming_.empty() && ready_incoming_ != incoming) {  // a newer model replaces one not yet swapped in
            std::error_code ignored;
            std::filesystem::remove(ready_incoming_, ignored);
        }
        ready_ = std::move(candidate);
        ready_incoming_ = incoming;
    } catch (const std::exception& e) {
        std::error_code ignored;
        if (!incoming.empty()) std::filesystem::remove(incoming, ignored);
        report_("refused", id,
                std::string(e.what()) + (from_disk && id != "?" ? "; the model file '" + model_path_ +
                                                                    "' is not the model running: a restart would start from it"
                                                              : ""));
    }
}

std::shared_ptr<Inspector> ModelUpdater::take_ready() {
    std::shared_ptr<Inspector> installed;
    {
        std::lock_guard lock(mutex_);
        if (!ready_) return nullptr;
        std::shared_ptr<Inspector> candidate = std::move(ready_);
        bool kept_previous = false;  // a file replaced by hand leaves no copy of the one before
        try {  // the files change here, on the inference thread and under the lock, like a rollback's
            if (!ready_incoming_.empty()) {
                // The running model's file becomes the copy for a rollback, unless the file on disk is another (one
                // put there by hand and refused).
                const std::vector<unsigned char> on_disk = read_model_file(model_path_);
                kept_previous = sha256_hex(on_disk) == running_->model_id();
                if (kept_previous) write_file_atomically(model_path_ + ".previous", on_disk);
                std::filesystem::rename(ready_incoming_, model_path_);
                ++own_writes_;
            }
        } catch (const std::exception& e) {
            std::error_code ignored;
            std::filesystem::remove(ready_incoming_, ignored);
            ready_incoming_.clear();
            report_("refused", candidate->model_id(), std::string("cannot put the model file in place: ") + e.what());
            return nullptr;
        }
        ready_incoming_.clear();
        previous_has_file_ = kept_previous;
        previous_ = running_;
        running_ = std::move(candidate);
        installed = running_;
    }
    report_("installed", installed->model_id(), "");
    return installed;
}

std::shared_ptr<Inspector> ModelUpdater::roll_back(const std::shared_ptr<Inspector>& running) {
    std::shared_ptr<Inspector> restored;
    {
        std::lock_guard lock(mutex_);
        const char* refusal = ready_                   ? "a new model is being installed"
                              : !previous_             ? "no previous model to roll back to"
                              : !previous_has_file_    ? "the previous model's file was replaced by hand, so it is gone"
                              : running != running_    ? "the running model is not the one installed last"
                                                       : nullptr;
        try {
            if (!refusal) {
                const std::vector<unsigned char> previous_file = read_model_file(model_path_ + ".previous");
                const std::vector<unsigned char> running_file = read_model_file(model_path_);
                if (sha256_hex(running_file) != running_->model_id())
                    throw Error("the model file on disk is not the running model's (replaced by hand since)");
                write_file_atomically(model_path_ + ".previous", running_file);
                write_file_atomically(model_path_, previous_file);
                ++own_writes_;
                std::swap(previous_, running_);
                restored = running_;
            }
        } catch (const std::exception& e) {
            report_("refused", running->model_id(), std::string("rollback failed: ") + e.what());
            return nullptr;
        }
        if (refusal) {
            report_("refused", running->model_id(), std::string("rollback: ") + refusal);
            return nullptr;
        }
    }
    report_("rolled back", restored->model_id(), "");
    return restored;
}

}  // namespace edgeqc
