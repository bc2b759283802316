// Model updates over the air for the edge node. A new model arrives in an envelope on the model topic, or as a new
// file at the model path (noticed by inotify, or re-read on a "reload" command); a thread of its own checks it (checksum, a model file edgeqc
// loads, the same input format and classes as the running one, a self-test on the canary image) and plans it, so
// inference goes on meanwhile. The inference thread then swaps it in between two frames, and only then is the model
// file on disk replaced (atomically, on that thread, as a rollback's files are), the previous one kept beside it as
// <model>.previous for a rollback; a model that fails a
// check is refused with the reason and the running one stays.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "data/image.hpp"
#include "edge/event_log.hpp"
#include "edge/inspection.hpp"

namespace edgeqc {

// Plans a model the way the node runs it (normal class, thresholds, threads, batch, tiles).
using InspectorFactory = std::function<std::unique_ptr<Inspector>(Model model, std::string model_id)>;
// What happened to an update: "installed", "refused" or "rolled back", the model id concerned, and why.
using UpdateReport = std::function<void(const std::string& result, const std::string& model_id, const std::string& reason)>;

class ModelUpdater {
public:
    // running: the inspector of the model at model_path. canary: the self-test image. watch_file: check the file
    // at model_path whenever it is replaced (written and closed, or renamed over).
    ModelUpdater(std::string model_path, std::shared_ptr<Inspector> running, Image canary, InspectorFactory factory,
                 UpdateReport report, const EventLog& log, bool watch_file);
    ~ModelUpdater();
    ModelUpdater(const ModelUpdater&) = delete;
    ModelUpdater& operator=(const ModelUpdater&) = delete;

    // From any thread: an envelope payload to check, or the model path to read again. A newer request replaces one
    // not yet started.
    void request_envelope(std::string payload);
    void request_reload();

    // The inference thread, between frames: the checked inspector to swap in, if one is ready (its file is already
    // in place on disk). The caller hands over the thresholds it runs with.
    std::shared_ptr<Inspector> take_ready();
    // The inference thread: the previous inspector back (files swapped back on disk), or null when there is none.
    std::shared_ptr<Inspector> roll_back(const std::shared_ptr<Inspector>& running);

private:
    enum class Source { Envelope, Reload, FileReplaced };
    struct Request {
        Source source = Source::Envelope;
        std::string payload;
    };
    void run();
    void watch_model_file();
    void close_watch();
    void stop_update_thread();
    void check_and_prepare(const Request& request);

    std::string model_path_;
    std::shared_ptr<Inspector> running_, previous_;  // as this updater knows them; the inference thread swaps
    Image canary_;
    InspectorFactory factory_;
    UpdateReport report_;
    const EventLog& log_;

    std::mutex mutex_;
    std::condition_variable wake_;
    std::optional<Request> request_;
    bool file_replaced_ = false;  // apart from request_: the updater's own renames must not displace an envelope
    std::shared_ptr<Inspector> ready_;
    std::string ready_incoming_;      // ready_'s file sent over the air, waiting beside the model; empty for a reload
    bool previous_has_file_ = false;  // <model>.previous holds previous_'s file
    std::uint64_t own_writes_ = 0;    // this updater's writes to the model path so far
    bool stopping_ = false;
    std::thread thread_;
    int model_events_ = -1;   // inotify on the model's folder
    int stop_watching_ = -1;  // an eventfd that ends watch_model_file
    std::thread watcher_;
};

}  // namespace edgeqc
