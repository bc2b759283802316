// `edgeqc-edge`: the inspection node beside the machine. Classifies image files, folders or an MJPEG camera stream
// on standard input, decides normal / re-inspect / defective for every frame, writes one JSON line per frame and,
// with --broker, publishes each result over MQTT through an on-disk spool that loses nothing. It links the
// inference runtime and edge/ only; float and int8 models alike.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "data/image.hpp"
#include "edge/bounded_queue.hpp"
#include "edge/event_log.hpp"
#include "edge/inspection.hpp"
#include "edge/mjpeg_splitter.hpp"
#include "edge/model_updater.hpp"
#include "edge/mqtt_publisher.hpp"
#include "edge/node_command.hpp"
#include "edge/sha256.hpp"
#include "edge/spool.hpp"
#include "edge/system_readings.hpp"
#include "engine/error.hpp"
#include "engine/json_output.hpp"
#include "engine/model_file.hpp"
#include "max_pixels_option.hpp"
#include "tool_errors.hpp"

using namespace edgeqc;
namespace fs = std::filesystem;

namespace {

struct Arguments {
    std::string model;
    std::vector<std::string> inputs;
    bool mjpeg_stdin = false;
    std::string watch;
    bool move_done = false;
    bool full_decode = false;
    std::size_t max_frame_bytes = std::size_t{16} << 20;
    std::string roi;
    std::string tile;
    int stride = 0;
    int batch = 1;
    double max_wait_ms = 10;
    int queue = 8;
    std::string output = "-";
    std::string normal_class;
    std::string thresholds = "0.5,0.8";
    std::vector<std::string> class_thresholds;
    std::string broker;
    std::string node;
    std::string prefix = "edgeqc";
    int qos = 1;
    std::string username;
    std::string password_file;
    std::string canary;
    std::string ca_file, cert_file, key_file;
    std::string spool = "edgeqc-spool";
    std::int64_t spool_max = 100000;
    double spool_max_mib = 0;
    double drain_timeout = 10;
    double reconnect_max = 30;
    double stats_interval = 5;
    int threads = 0;
    int lanes = 0;
    std::int64_t max_pixels = 0;
    std::string log_level = "info";
};

std::atomic<bool> g_stop{false};
int g_stop_pipe[2] = {-1, -1};  // the handler writes a byte, so a thread waiting in poll() wakes at once

extern "C" void request_stop(int) {
    g_stop = true;
    const char byte = 1;
    if (g_stop_pipe[1] >= 0) {
        [[maybe_unused]] const ssize_t written = ::write(g_stop_pipe[1], &byte, 1);  // a full pipe wakes them already
    }
}

// Waits until fd can be read (true) or a stop is requested (false). A signal between a check of g_stop and a
// blocking read() would otherwise be missed until the next frame.
bool wait_readable(int fd) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {g_stop_pipe[0], POLLIN, 0}};
    while (!g_stop) {
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            throw Error(std::string("cannot wait for input: ") + std::strerror(errno));
        }
        if (fds[1].revents) return false;
        if (fds[0].revents) return true;
    }
    return false;
}

void set_stop_signals_blocked(bool blocked) {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &signals, nullptr);
}

// SIGTERM and SIGINT end the run after the frame in progress.
void install_signal_handlers() {
    if (::pipe2(g_stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        throw Error(std::string("cannot create a pipe: ") + std::strerror(errno));
    struct sigaction action {};
    action.sa_handler = request_stop;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGINT, &action, nullptr);
    std::signal(SIGPIPE, SIG_IGN);  // a vanished reader of our output or a dropped socket is an error, not a kill
}

// MQTT topic levels the node builds from: no wildcards, no empty levels, no '$' start (reserved for brokers).
void check_topic_part(const std::string& value, const char* option, bool slashes_allowed) {
    const bool bad = value.empty() || value.front() == '$' || value.find_first_of("+#") != std::string::npos ||
                     value.find('\0') != std::string::npos || value.front() == '/' || value.back() == '/' ||
                     value.find("//") != std::string::npos || (!slashes_allowed && value.find('/') != std::string::npos);
    if (bad)
        throw Error(std::string(option) + " '" + value + "' cannot be part of an MQTT topic: it must be non-empty, " +
                    "without the wildcards + and #, without empty levels" + (slashes_allowed ? "" : " or '/'") +
                    ", and not start with $");
}

std::string host_name() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "edge";
    return name;
}

// The broker password: from --password-file (its first line), else from EDGEQC_MQTT_PASSWORD; never a flag, so it
// stays out of the process list and shell history.
std::string broker_password(const Arguments& a) {
    if (!a.password_file.empty()) {
        std::ifstream file(a.password_file);
        if (!file) throw Error("cannot read --password-file '" + a.password_file + "': " + std::strerror(errno));
        std::string line;
        std::getline(file, line);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
    }
    const char* from_environment = std::getenv("EDGEQC_MQTT_PASSWORD");
    return from_environment ? from_environment : "";
}

std::map<std::string, VerdictThresholds> class_thresholds(const std::vector<std::string>& entries) {
    std::map<std::string, VerdictThresholds> result;
    for (const std::string& entry : entries) {
        const std::size_t equals = entry.find('=');
        if (equals == std::string::npos || equals == 0)
            throw Error("--class-thresholds '" + entry + "' must look like CLASS=REINSPECT,DEFECTIVE, e.g. crack=0.3,0.6");
        result[entry.substr(0, equals)] = parse_thresholds(entry.substr(equals + 1));
    }
    return result;
}

// Every input as a list of image files: a folder gives its images (recursively, sorted by path).
std::vector<std::string> input_files(const std::vector<std::string>& inputs) {
    std::vector<std::string> files;
    for (const std::string& input : inputs) {
        std::error_code error;
        const fs::file_status status = fs::status(input, error);
        if (error || !fs::exists(status)) throw Error("input '" + input + "' does not exist");
        if (!fs::is_directory(status)) {
            files.push_back(input);
            continue;
        }
        std::vector<std::string> found;
        for (fs::recursive_directory_iterator it(input, fs::directory_options::skip_permission_denied, error), end;
             !error && it != end; it.increment(error)) {
            if (it->is_regular_file(error) && has_image_extension(it->path().string())) found.push_back(it->path().string());
        }
        if (error) throw Error("cannot read folder '" + input + "': " + error.message());
        std::sort(found.begin(), found.end());
        files.insert(files.end(), found.begin(), found.end());
    }
    return files;
}

// A stream frame between the reader thread and the inference thread.
struct PreparedFrame {
    InspectionResult result;
    std::vector<float> input;  // preprocessed, one image per tile, if ready
    bool ready = false;        // false: result.error says why it could not be decoded
};

bool is_stream(const Arguments& a) { return a.mjpeg_stdin || !a.watch.empty(); }

constexpr int kMaxLanes = 64;

// --lanes 0: a stream or a watched folder is classified a frame per core at a time, each on one thread (measured on
// 2 cores, bench/RESULTS.md: two one-thread plans side by side classify 1.4x (int8) and 1.25x (float) the frames of
// one plan on two threads, which waits for the slower half of every layer); files one at a time.
int inference_lanes(const Arguments& a) {
    if (!is_stream(a)) return 1;
    if (a.lanes > 0) return a.lanes;
    return std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, kMaxLanes);
}

// --threads 0: one per lane when there are several; with one lane, every core for files, and all cores but the
// reader's for a stream (no OpenMP wake-up delays in the latency tail).
int inference_threads(const Arguments& a) {
    if (a.threads > 0) return a.threads;
    if (inference_lanes(a) > 1) return 1;
    if (!is_stream(a)) return 0;
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()) - 1);
}

FrameLayout frame_layout(const Arguments& a) {
    FrameLayout layout;
    if (!a.roi.empty()) layout.roi = parse_roi(a.roi);
    if (a.stride < 0 || a.stride > kMaxImageSide)
        throw Error("--stride must be 1 to " + std::to_string(kMaxImageSide) + " pixels");
    if (a.stride > 0 && a.tile.empty()) throw Error("--stride goes with --tile");
    if (!a.tile.empty()) parse_tiling(a.tile, a.stride, layout);
    layout.scaled_decode = !a.full_decode;
    return layout;
}

// The running node: inspector, outputs, spool and publisher, and the counts it reports at the end.
class Node {
public:
    Node(const Arguments& a, const EventLog& log) : log_(log), node_(a.node.empty() ? host_name() : a.node) {
        check_topic_part(node_, "--node", false);
        check_topic_part(a.prefix, "--prefix", true);
        if (a.qos < 0 || a.qos > 1) throw Error("--qos must be 0 or 1");
        if (a.drain_timeout < 0) throw Error("--drain-timeout must be 0 seconds or more");
        if (!(a.reconnect_max >= 1)) throw Error("--reconnect-max must be 1 second or more");
        if (!(a.stats_interval == 0 || a.stats_interval >= 0.1))
            throw Error("--stats-interval must be 0 (no stats) or at least 0.1 seconds");
        if (a.threads < 0 || a.threads > 1024) throw Error("--threads must be 0 (automatic) to 1024");
        if (a.lanes < 0 || a.lanes > kMaxLanes) throw Error("--lanes must be 0 (automatic) to " + std::to_string(kMaxLanes));
        const std::vector<unsigned char> model_bytes = read_model_file(a.model);  // read once: the id is of what runs
        const std::string model_id = sha256_hex(model_bytes);
        const InspectorFactory make_inspector = [normal = a.normal_class, thresholds = parse_thresholds(a.thresholds),
                                                 per_class = class_thresholds(a.class_thresholds),
                                                 threads = inference_threads(a), batch = a.batch,
                                                 layout = frame_layout(a), lanes = inference_lanes(a)](Model model,
                                                                                                      std::string id) {
            return std::make_unique<Inspector>(std::move(model), std::move(id), normal, thresholds, per_class, threads,
                                               batch, layout, lanes);
        };
        inspector_.store(make_inspector(load_model_bytes(model_bytes, a.model), model_id));
        if (a.output != "-" && a.output != "none") {
            file_output_.open(a.output, std::ios::app);
            if (!file_output_) throw Error("cannot open --output '" + a.output + "': " + std::strerror(errno));
        }
        output_ = a.output == "none" ? nullptr : a.output == "-" ? &std::cout : &file_output_;
        if (a.move_done) {
            if (a.watch.empty()) throw Error("--move-done goes with --watch");
            done_folder_ = (fs::path(a.watch) / "done").string();
            std::error_code error;
            fs::create_directories(done_folder_, error);
            if (error) throw Error("cannot create '" + done_folder_ + "': " + error.message());
        }
        if (!a.broker.empty()) {
            MqttSettings settings;
            parse_broker_url(a.broker, settings);
            settings.qos = a.qos;
            settings.username = a.username;
            settings.password = broker_password(a);
            settings.ca_file = a.ca_file;
            settings.cert_file = a.cert_file;
            settings.key_file = a.key_file;
            settings.client_id = "edgeqc-" + node_;
            settings.max_backoff = std::chrono::milliseconds(static_cast<long long>(a.reconnect_max * 1000));
            const std::string topic = a.prefix + "/" + node_;
            result_topic_ = topic + "/result";
            stats_topic_ = topic + "/stats";
            settings.status_topic = topic + "/status";
            event_topic_ = topic + "/event";
            settings.subscriptions = {topic + "/cmd", topic + "/model"};
            settings.online_payload = status_payload("online");
            settings.offline_payload = status_payload("offline");
            if (!(a.spool_max_mib >= 0)) throw Error("--spool-max-mib must be 0 (no cap) or more");
            spool_.emplace(a.spool, a.spool_max, static_cast<std::int64_t>(a.spool_max_mib * 1048576.0));
            next_frame_ = spool_->last_frame() + 1;
            log_.info("spool " + spool_->path() + ": " + std::to_string(spool_->size()) +
                      " results waiting; next frame " + std::to_string(next_frame_));
            publisher_ = std::make_unique<MqttPublisher>(settings, *spool_, log_);
            start_updater(a, make_inspector);  // it reports through the publisher; the model topic's handler calls it
            publisher_->set_message_handler([this, model_topic = topic + "/model"](const std::string& from,
                                                                                   std::string&& payload) {
                if (from == model_topic) {
                    if (payload.size() > kMaxModelMessage)
                        report_update("refused", "?", "a model message of " + std::to_string(payload.size()) +
                                                          " bytes (at most " + std::to_string(kMaxModelMessage) + ")");
                    else updater_->request_envelope(std::move(payload));
                    return;
                }
                std::lock_guard lock(commands_mutex_);
                if (commands_.size() < 64) commands_.push_back(std::move(payload));  // a flood is not queued forever
            });
            drain_timeout_ = std::chrono::milliseconds(static_cast<long long>(a.drain_timeout * 1000));
            if (a.stats_interval > 0)
                stats_thread_ = std::thread([this, interval = a.stats_interval] { publish_stats_every(interval); });
        }
        if (!updater_ && (a.mjpeg_stdin || !a.watch.empty())) start_updater(a, make_inspector);  // a model replaced on disk
        const ModelDescription& d = inspector()->description();
        log_.info("model " + a.model + " (" + model_id.substr(0, 12) + "): " + std::to_string(d.class_names.size()) +
                  " classes, normal class '" + d.class_names[static_cast<std::size_t>(inspector()->rule().normal_class())] +
                  "', node '" + node_ + "'");
    }

    void inspect_file(const std::string& path) {
        if (!ready_for_frame()) return;
        InspectionResult r = start(path);
        const std::shared_ptr<Inspector> current = inspector();
        current->inspect_file(path, r);
        emit({&r}, *current);
    }

    // The reader thread's half of a stream frame: id, time, decoding and preprocessing.
    PreparedFrame prepare_frame(const std::vector<unsigned char>& encoded) {
        PreparedFrame f{start("stdin"), {}, false};
        f.ready = inspector()->prepare_encoded(encoded.data(), encoded.size(), f.result, f.input);
        return f;
    }

    // The same for a file of a watched folder.
    PreparedFrame prepare_file_frame(const std::string& path) {
        PreparedFrame f{start(path), {}, false};
        f.ready = inspector()->prepare_file(path, f.result, f.input);
        return f;
    }

    // A micro-batch of stream frames, from its start to its results.
    struct Batch {
        std::vector<PreparedFrame> frames;
        std::shared_ptr<Inspector> inspector;  // the model and the rule in force when the batch started
        std::optional<DecisionRule> rule;
        std::vector<InspectionResult*> classify, done;
        std::vector<float> inputs;
    };

    // The start of a batch (batches start one after another, in frame order): the commands that arrived before each
    // frame, a model swap, pause; then the model that will classify it.
    void start_batch(Batch& b, std::size_t queue_depth) {
        queue_depth_ = queue_depth;
        b.classify.clear();
        b.done.clear();
        b.inputs.clear();
        for (PreparedFrame& f : b.frames) {
            if (!ready_for_frame()) continue;
            b.done.push_back(&f.result);
            if (!f.ready) continue;
            b.classify.push_back(&f.result);
            b.inputs.insert(b.inputs.end(), f.input.begin(), f.input.end());
        }
        b.inspector = inspector();
        b.rule = b.inspector->rule();
    }
    // Its inference and decisions, on an inference lane: batches on different lanes run at once.
    static void classify_batch(Batch& b, int lane) {
        if (!b.classify.empty()) b.inspector->inspect_prepared(b.inputs.data(), b.classify, *b.rule, lane);
    }
    // Its outputs (batches finish one after another, in frame order).
    void finish_batch(const Batch& b) { emit(b.done, *b.inspector); }

    // Logs the counts and, with a broker, waits for the spool to drain (then disconnects with the offline status).
    void close(const std::string& extra) {
        {
            std::lock_guard lock(counters_mutex_);
            const double seconds = first_read_at_ ? std::chrono::duration<double>(last_result_at_ - *first_read_at_).count() : 0;
            char pace[128];
            std::snprintf(pace, sizeof pace, " in %.2f s (%.1f frames/s), peak memory %.1f MiB", seconds,
                          seconds > 0 ? static_cast<double>(frames_) / seconds : 0.0, peak_resident_set_mib());
            log_.info("processed " + std::to_string(frames_) + " frames: " + std::to_string(verdicts_[0]) + " normal, " +
                      std::to_string(verdicts_[1]) + " re-inspect, " + std::to_string(verdicts_[2]) + " defective, " +
                      std::to_string(failed_) + " unreadable, " + std::to_string(paused_frames_) +
                      " skipped while paused" + pace + extra);
        }
        stop_stats();
        if (publisher_) publisher_->set_message_handler({});
        updater_.reset();
        if (publisher_) {
            // Results still in memory go into the spool as the broker's acknowledgements make room in it; one
            // deadline for that and the delivery of the rest.
            const auto deadline = std::chrono::steady_clock::now() + drain_timeout_;
            const auto left = [&] {
                return std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                  deadline - std::chrono::steady_clock::now()));
            };
            while (!flush_backlog() && left().count() > 0)
                publisher_->wait_until_delivered(std::min(left(), std::chrono::milliseconds(200)));
            if (!backlog_.empty())
                log_.error(std::to_string(backlog_.size()) + " results never found room in the spool and are lost");
            if (!publisher_->wait_until_delivered(left()))
                log_.warn(std::to_string(spool_->size()) + " results not yet acknowledged by the broker stay in " +
                          spool_->path() + " and are sent on the next start");
            publisher_.reset();
        }
    }

    // The network thread calls into the updater and the command queue: it stops delivering before they go.
    ~Node() {
        stop_stats();
        if (publisher_) publisher_->set_message_handler({});
        updater_.reset();
        publisher_.reset();
    }
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    int lanes() const { return inspector()->lanes(); }

    std::uint64_t failed() {
        std::lock_guard lock(counters_mutex_);
        return failed_;
    }

private:
    void stop_stats() {
        if (!stats_thread_.joinable()) return;
        {
            std::lock_guard lock(counters_mutex_);
            closing_ = true;
        }
        stats_wake_.notify_all();
        stats_thread_.join();
    }

    // Applies the commands that arrived since the last frame; false while paused (the frame is counted and skipped).
    bool ready_for_frame() {
        std::vector<std::string> commands;
        {
            std::lock_guard lock(commands_mutex_);
            commands.swap(commands_);
        }
        for (const std::string& payload : commands) {
            try {
                const NodeCommand command = parse_node_command(payload);
                switch (command.kind) {
                    case NodeCommand::Kind::Pause: paused_ = true; break;
                    case NodeCommand::Kind::Resume: paused_ = false; break;
                    case NodeCommand::Kind::Thresholds: inspector()->set_thresholds(command.thresholds); break;
                    case NodeCommand::Kind::Reload: updater_->request_reload(); break;
                    case NodeCommand::Kind::Rollback: swap_in(updater_->roll_back(inspector())); break;
                }
                log_.info("command: " + json_text(nlohmann::json::parse(payload)));
            } catch (const Error& e) {
                log_.warn(std::string("command refused: ") + e.what());
            }
        }
        if (updater_) swap_in(updater_->take_ready());
        if (!paused_) return true;
        std::lock_guard lock(counters_mutex_);
        ++paused_frames_;
        return false;
    }

    InspectionResult start(const std::string& source) {
        InspectionResult r;
        if (!first_read_at_) first_read_at_ = r.read_at;
        r.frame = next_frame_++;
        r.source = source;
        r.time = utc_timestamp();
        return r;
    }

    // Counts the results, spools them in one transaction (one group commit per batch), then writes their lines: a
    // line in the output is then a result the broker will get, even after a kill -9 between the two.
    void emit(const std::vector<InspectionResult*>& results, const Inspector& made_by) {
        if (results.empty()) return;
        std::vector<std::string> lines;
        {
            std::lock_guard lock(counters_mutex_);
            last_result_at_ = std::chrono::steady_clock::now();
            for (const InspectionResult* r : results) {
                ++frames_;
                if (r->error.empty()) {
                    ++verdicts_[static_cast<int>(r->decision.verdict)];
                    latencies_.push_back(r->latency_ms);
                } else {
                    ++failed_;
                }
            }
        }
        for (const InspectionResult* r : results) {
            if (!r->error.empty()) log_.warn("frame " + std::to_string(r->frame) + " skipped: " + r->error);
            lines.push_back(json_text(made_by.to_json(*r, node_)));
        }
        if (spool_) {
            for (const std::string& line : lines) backlog_.push_back({0, result_topic_, line});
            backlog_last_frame_ = results.back()->frame;
            flush_backlog();
        }
        if (output_) {
            for (const std::string& line : lines) *output_ << line << '\n';
            output_->flush();
        }
        if (done_folder_.empty()) return;
        for (const InspectionResult* r : results) {  // only now that the result is out: a crash before leaves it
            std::error_code error;
            fs::rename(r->source, fs::path(done_folder_) / fs::path(r->source).filename(), error);
            if (error) log_.warn("cannot move '" + r->source + "' to " + done_folder_ + ": " + error.message());
        }
    }

    // Moves the results not yet in the spool into it, oldest first, a transaction per 64. When the spool cannot take
    // them (a full disk, its size cap) they wait in memory, the oldest dropped and counted beyond kMaxBacklog, and
    // go in with the next results or while the node drains at the end. True when nothing is left in memory.
    bool flush_backlog() {
        const std::size_t before = backlog_.size();
        try {
            while (!backlog_.empty()) {
                const auto end = backlog_.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(64, backlog_.size()));
                spool_->append(std::vector<SpooledMessage>(backlog_.begin(), end), backlog_last_frame_);
                backlog_.erase(backlog_.begin(), end);
                publisher_->notify();
            }
            if (backlog_full_) log_.info("the spool has room again: " + std::to_string(before) + " results moved in from memory");
            backlog_full_ = false;
        } catch (const Error& e) {
            if (!backlog_full_) log_.error(std::string(e.what()) + "; results wait in memory (at most " +
                                           std::to_string(kMaxBacklog) + ") until it has room");
            backlog_full_ = true;
            while (backlog_.size() > kMaxBacklog) {
                backlog_.pop_front();
                ++backlog_dropped_;
            }
        }
        unspooled_ = backlog_.size();
        return backlog_.empty();
    }

    // The stats thread: every interval, the figures of the frames since the last report on PREFIX/NODE/stats.
    void publish_stats_every(double interval_seconds) {
        const auto interval = std::chrono::duration<double>(interval_seconds);
        auto last = std::chrono::steady_clock::now();
        std::unique_lock lock(counters_mutex_);
        while (!stats_wake_.wait_for(lock, interval, [&] { return closing_; })) {
            const auto now = std::chrono::steady_clock::now();
            const double seconds = std::chrono::duration<double>(now - last).count();
            last = now;
            std::vector<double> latencies;
            latencies.swap(latencies_);
            nlohmann::ordered_json stats = {
                {"node", node_},
                {"time", utc_timestamp()},
                {"model", inspector()->model_id()},
                {"frames", frames_},
                {"fps", static_cast<double>(latencies.size()) / seconds},
                {"latency_ms",
                 {{"p50", percentile(latencies, 0.50)}, {"p95", percentile(latencies, 0.95)}, {"p99", percentile(latencies, 0.99)}}},
                {"verdicts", {{"normal", verdicts_[0]}, {"re-inspect", verdicts_[1]}, {"defective", verdicts_[2]}}},
                {"unreadable", failed_},
                {"queue", queue_depth_.load()},
                {"paused", paused_.load()},
                {"paused_frames", paused_frames_},
                {"spool", spool_->size()},
                {"spool_dropped", spool_->dropped()},
                {"unspooled", unspooled_.load()},
                {"unspooled_dropped", backlog_dropped_.load()},
                {"rss_mib", resident_set_mib()},
            };
            if (const auto temperature = cpu_temperature_celsius()) stats["cpu_temp_c"] = *temperature;
            lock.unlock();
            publisher_->publish_ephemeral(stats_topic_, json_text(stats));
            lock.lock();
        }
    }

    std::string status_payload(const char* state) const {
        return json_text({{"state", state}, {"node", node_}, {"model", inspector()->model_id()}, {"since", utc_timestamp()}});
    }

    std::shared_ptr<Inspector> inspector() const { return inspector_.load(); }

    // Between frames, on the inference thread: a new (or the previous) model takes over with the thresholds in force.
    void swap_in(const std::shared_ptr<Inspector>& next) {
        if (!next) return;
        next->set_thresholds(inspector()->rule().thresholds());
        inspector_.store(next);
        if (publisher_) publisher_->update_status(status_payload("online"), status_payload("offline"));
    }

    // An update's outcome: one log line, and an event on PREFIX/NODE/event for the twin.
    void report_update(const std::string& result, const std::string& id, const std::string& reason) {
        const std::string line = "model " + id.substr(0, 12) + " " + result + (reason.empty() ? "" : ": " + reason);
        if (result == "refused") log_.error(line);
        else log_.info(line);
        if (!publisher_) return;
        publisher_->publish_ephemeral(event_topic_,
                                      json_text({{"event", "model"}, {"result", result}, {"model", id}, {"reason", reason},
                                                 {"time", utc_timestamp()}}),
                                      1);
    }

    // Checks and installs new models: from the model topic, and whenever the model file is replaced.
    void start_updater(const Arguments& a, const InspectorFactory& make_inspector) {
        updater_ = std::make_unique<ModelUpdater>(
            a.model, inspector_.load(), canary_image(a), make_inspector,
            [this](const std::string& result, const std::string& id, const std::string& reason) {
                report_update(result, id, reason);
            },
            log_, true);
    }

    // The self-test image of new models: --canary, or a plain mid-grey frame of the model's input size.
    Image canary_image(const Arguments& a) const {
        if (!a.canary.empty()) return decode_image_file(a.canary);
        const InputFormat& input = inspector()->description().input;
        return Image{input.width, input.height, input.channels,
                     std::vector<float>(static_cast<std::size_t>(input.width * input.height * input.channels), 0.5f)};
    }

    const EventLog& log_;
    std::string node_;
    std::atomic<std::shared_ptr<Inspector>> inspector_;  // swapped by the inference thread, read by the reader too
    std::ofstream file_output_;
    std::ostream* output_ = nullptr;
    std::string result_topic_;
    std::string done_folder_;  // --move-done: inspected files of the watched folder go here
    std::optional<Spool> spool_;
    std::unique_ptr<MqttPublisher> publisher_;
    std::unique_ptr<ModelUpdater> updater_;  // after the publisher: it reports through it, so it goes first
    static constexpr std::size_t kMaxBacklog = 10000;
    static constexpr std::size_t kMaxModelMessage = std::size_t{256} << 20;
    std::deque<SpooledMessage> backlog_;  // results the spool could not take yet
    std::int64_t backlog_last_frame_ = 0;
    bool backlog_full_ = false;
    std::atomic<std::size_t> unspooled_{0};
    std::atomic<std::uint64_t> backlog_dropped_{0};
    std::string event_topic_;
    std::chrono::milliseconds drain_timeout_{0};
    std::int64_t next_frame_ = 1;  // the reader's: ids are given as frames are read
    std::optional<std::chrono::steady_clock::time_point> first_read_at_;  // the reader's, read at the end
    std::atomic<bool> paused_{false};
    std::atomic<std::size_t> queue_depth_{0};  // decoded frames waiting for inference

    std::mutex commands_mutex_;
    std::vector<std::string> commands_;  // payloads from the network thread, applied before the next frame

    std::mutex counters_mutex_;  // the counters are read by the stats thread
    std::uint64_t frames_ = 0, failed_ = 0, paused_frames_ = 0;
    std::uint64_t verdicts_[3] = {0, 0, 0};
    std::vector<double> latencies_;  // of the frames since the last stats
    std::chrono::steady_clock::time_point last_result_at_;
    bool closing_ = false;
    std::condition_variable stats_wake_;
    std::string stats_topic_;
    std::thread stats_thread_;
};

std::string stream_counts(const MjpegCounts& c) {
    return "; stream: " + std::to_string(c.frames) + " frames, " + std::to_string(c.skipped_bytes) +
           " bytes of garbage skipped, " + std::to_string(c.truncated_frames) + " truncated, " +
           std::to_string(c.malformed_frames) + " malformed, " + std::to_string(c.oversized_frames) + " oversized";
}

// Runs produce on a reader thread (the stop signals go there) that queues prepared frames, while the node's
// inference lanes, a thread each, classify them in micro-batches: a batch starts and finishes in frame order, and its
// inference runs beside the other lanes'. Returns the reader's error, empty if none.
std::string run_pipeline(Node& node, const Arguments& a, const EventLog& log,
                         const std::function<void(BoundedQueue<PreparedFrame>&)>& produce) {
    BoundedQueue<PreparedFrame> queue(static_cast<std::size_t>(a.queue));
    std::string reader_error;
    std::thread reader([&] {
        set_stop_signals_blocked(false);
        try {
            produce(queue);
        } catch (const std::exception& e) {
            reader_error = e.what();
        }
        queue.close();
    });
    const auto max_wait = std::chrono::microseconds(static_cast<long long>(a.max_wait_ms * 1000));
    std::mutex start_mutex;  // one lane takes and starts a batch at a time
    std::mutex finish_mutex;
    std::uint64_t started = 0, finished = 0;  // batches
    std::map<std::uint64_t, Node::Batch> classified;  // batches done before one started earlier: they wait here
    std::exception_ptr failure;  // the first lane's that failed
    std::atomic<bool> failed{false};  // the others stop
    const auto lane = [&](int index) {
        try {
            while (true) {
                Node::Batch batch;
                std::uint64_t ticket = 0;
                {
                    std::lock_guard lock(start_mutex);
                    if (failed || !queue.pop_batch(batch.frames, static_cast<std::size_t>(a.batch), max_wait)) return;
                    node.start_batch(batch, queue.size());
                    ticket = started++;
                }
                Node::classify_batch(batch, index);
                // The lane that classified the oldest batch still out writes it, and those after it that are done: no
                // lane waits for another, and results go out in frame order.
                std::lock_guard lock(finish_mutex);
                if (failed) return;
                classified.emplace(ticket, std::move(batch));
                for (auto next = classified.begin(); next != classified.end() && next->first == finished;
                     next = classified.erase(next), ++finished)
                    node.finish_batch(next->second);
            }
        } catch (...) {
            request_stop(0);  // the reader stops, so lanes waiting for frames return
            std::lock_guard lock(finish_mutex);
            if (!failure) failure = std::current_exception();
            failed = true;
        }
    };
    std::vector<std::thread> lanes;
    try {
        for (int index = 1; index < node.lanes(); ++index) lanes.emplace_back(lane, index);
    } catch (...) {  // no thread left for a lane (a process limit): the node runs on the lanes it has
        log.warn("could only start " + std::to_string(lanes.size() + 1) + " of " + std::to_string(node.lanes()) +
                 " inference lanes");
    }
    lane(0);
    for (std::thread& t : lanes) t.join();
    if (failure) {  // the reader ends on the stop request once it can put down what it holds
        std::vector<PreparedFrame> rest;
        while (queue.pop_batch(rest, 64, std::chrono::microseconds(0))) {
        }
        reader.join();
        std::rethrow_exception(failure);
    }
    reader.join();
    return reader_error;
}

// The MJPEG stream on standard input, frame by frame, until its end or a stop signal.
void read_stream(Node& node, const Arguments& a, BoundedQueue<PreparedFrame>& queue, MjpegCounts& counts) {
    MjpegSplitter splitter(a.max_frame_bytes);
    std::vector<unsigned char> buffer(std::size_t{1} << 16);
    while (wait_readable(STDIN_FILENO)) {
        const ssize_t n = ::read(STDIN_FILENO, buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(std::string("cannot read the stream on standard input: ") + std::strerror(errno));
        if (n == 0) break;
        splitter.feed(buffer.data(), static_cast<std::size_t>(n),
                      [&](std::vector<unsigned char>&& frame) { queue.push(node.prepare_frame(frame)); });
    }
    splitter.finish();
    counts = splitter.counts();
}

// The images of the watched folder itself (not its subfolders), sorted.
std::vector<std::string> folder_images(const std::string& folder) {
    std::vector<std::string> images;
    std::error_code error;
    for (fs::directory_iterator it(folder, error), end; !error && it != end; it.increment(error))
        if (it->is_regular_file(error) && has_image_extension(it->path().string())) images.push_back(it->path().string());
    std::sort(images.begin(), images.end());
    return images;
}

// Images that appear in the watched folder, each once it is complete: closed after writing, or renamed into it
// (how careful writers deliver a file). With --move-done the images already there are pending work, done first.
void watch_folder(Node& node, const Arguments& a, const EventLog& log, BoundedQueue<PreparedFrame>& queue) {
    struct Descriptor {
        int fd;
        ~Descriptor() { ::close(fd); }
    };
    const Descriptor events{::inotify_init1(IN_CLOEXEC)};
    const int fd = events.fd;
    if (fd < 0) throw Error(std::string("cannot watch folders (inotify): ") + std::strerror(errno));
    if (::inotify_add_watch(fd, a.watch.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF) < 0)
        throw Error("cannot watch '" + a.watch + "': " + std::strerror(errno));
    log.info("watching " + a.watch + " for images");
    if (a.move_done)
        for (const std::string& path : folder_images(a.watch)) queue.push(node.prepare_file_frame(path));
    alignas(inotify_event) char buffer[64 * 1024];
    while (wait_readable(fd)) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw Error(std::string("cannot read folder events: ") + std::strerror(errno));
        for (ssize_t at = 0; at < n;) {
            const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
            at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
            if (event->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
                throw Error("the watched folder '" + a.watch + "' was removed or moved");
            if (event->mask & IN_Q_OVERFLOW) {
                log.warn("too many folder events at once: some images of " + a.watch + " were missed" +
                         (a.move_done ? "; inspecting what is left in it" : ""));
                if (a.move_done)
                    for (const std::string& path : folder_images(a.watch)) queue.push(node.prepare_file_frame(path));
                continue;
            }
            if (event->len == 0 || (event->mask & IN_ISDIR)) continue;
            const std::string path = (fs::path(a.watch) / event->name).string();
            if (has_image_extension(path)) queue.push(node.prepare_file_frame(path));
        }
    }
}

int run(const Arguments& a) {
    const int inputs = (a.inputs.empty() ? 0 : 1) + (a.mjpeg_stdin ? 1 : 0) + (a.watch.empty() ? 0 : 1);
    if (inputs != 1)
        throw Error(inputs == 0 ? "nothing to inspect: give image files or folders, --mjpeg-stdin or --watch FOLDER"
                                : "give one kind of input: image files and folders, --mjpeg-stdin, or --watch FOLDER");
    if (a.max_frame_bytes < 1024) throw Error("--max-frame-bytes must be at least 1024");
    if (a.batch < 1 || a.batch > 256) throw Error("--batch must be 1 to 256");
    if (a.queue < 1 || a.queue > 1024) throw Error("--queue must be 1 to 1024 frames");
    if (!(a.max_wait_ms >= 0 && a.max_wait_ms <= 10000)) throw Error("--max-wait must be 0 to 10000 ms");
    if (!a.watch.empty() && !fs::is_directory(a.watch)) throw Error("--watch '" + a.watch + "' is not a folder");
    const EventLog log(parse_log_level(a.log_level));
    const std::vector<std::string> files = input_files(a.inputs);
    install_signal_handlers();
    // The stop signals go to one thread that expects them (the reader, or here for files): the network and stats
    // threads, created by Node, inherit the blocked mask.
    set_stop_signals_blocked(true);
    Node node(a, log);
    const char* stopped = " (stopped by a signal)";
    if (!a.watch.empty()) {
        const std::string error = run_pipeline(node, a, log, [&](auto& queue) { watch_folder(node, a, log, queue); });
        if (!error.empty()) log.error(error);
        node.close(g_stop ? stopped : "");
        return error.empty() ? 0 : 1;
    }
    if (a.mjpeg_stdin) {
        MjpegCounts counts;
        const std::string error = run_pipeline(node, a, log, [&](auto& queue) { read_stream(node, a, queue, counts); });
        if (!error.empty()) log.error(error);
        node.close(stream_counts(counts) + (g_stop ? stopped : " (end of stream)"));
        return error.empty() ? 0 : 1;
    }
    set_stop_signals_blocked(false);
    for (const std::string& file : files) {
        if (g_stop) break;
        node.inspect_file(file);
    }
    node.close(g_stop ? stopped : "");
    return node.failed() ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"edgeqc-edge: the inspection node. Classifies images, folders, a watched folder or an MJPEG stream, "
                 "decides normal / re-inspect / defective per frame, writes JSON lines and publishes them over MQTT."};
    Arguments a;
    app.set_config("--config", "", "Read settings from a TOML or INI file (keys are the long option names)");
    app.allow_config_extras(CLI::config_extras_mode::error);  // a misspelt key is an error, not a silent default
    app.add_option("model", a.model, "Model file (.eqc, float or int8)")->required();
    app.add_option("inputs", a.inputs, "Image files and folders (searched recursively) to inspect once");
    app.add_flag("--mjpeg-stdin", a.mjpeg_stdin,
                 "Inspect an MJPEG stream on standard input (rpicam-vid --codec mjpeg -o -, ffmpeg -f mjpeg -)");
    app.add_option("--watch", a.watch,
                   "Inspect each image that appears in this folder (closed after writing, or renamed into it) until stopped");
    app.add_flag("--move-done", a.move_done,
                 "With --watch: move each inspected image to FOLDER/done once its result is out; images already in the "
                 "folder at the start are inspected first");
    app.add_option("--max-frame-bytes", a.max_frame_bytes, "Larger stream frames are dropped and counted")
        ->capture_default_str();
    app.add_option("--roi", a.roi, "Look only at this region of each frame: x,y,width,height in pixels");
    app.add_option("--tile", a.tile,
                   "Classify the frame (or region) in tiles of HEIGHTxWIDTH pixels; its verdict is its worst tile's");
    app.add_option("--stride", a.stride, "With --tile: pixels from one tile to the next (default: the tile's shorter side)");
    app.add_flag("--full-decode", a.full_decode,
                 "Decode JPEG frames at full size always (default: a whole frame of 4x the model's input or more decodes "
                 "at a DCT scale, about twice as fast; results as `edgeqc predict` gives them need this flag)");
    app.add_option("--batch", a.batch,
                   "Classify up to this many frames (or tiles) at once; a stream waits --max-wait for them")
        ->capture_default_str();
    app.add_option("--max-wait", a.max_wait_ms,
                   "Stream: milliseconds to wait after a frame for more to fill a batch (a slow camera keeps its latency)")
        ->capture_default_str();
    app.add_option("--queue", a.queue,
                   "Stream: decoded frames waiting for inference; when full, reading pauses (the camera is held back)")
        ->capture_default_str();
    app.add_option("--output", a.output, "JSON lines to this file (appended), - for standard output, or none")
        ->capture_default_str();
    app.add_option("--normal-class", a.normal_class,
                   "The defect-free class (default: the class named normal, good, ok, free or no_defect)");
    app.add_option("--thresholds", a.thresholds, "Defect probability from which a frame is re-inspect, then defective")
        ->capture_default_str();
    app.add_option("--class-thresholds", a.class_thresholds,
                   "Thresholds for one defect class, CLASS=REINSPECT,DEFECTIVE (repeatable)");
    app.add_option("--broker", a.broker, "Publish results to mqtt://host[:port] or mqtts://host[:port] (TLS)");
    app.add_option("--node", a.node, "This node's name in topics and results (default: the host name)");
    app.add_option("--prefix", a.prefix, "Topic prefix: results go to PREFIX/NODE/result, status to PREFIX/NODE/status")
        ->capture_default_str();
    app.add_option("--qos", a.qos, "MQTT quality of service of results (0 or 1)")->capture_default_str();
    app.add_option("--username", a.username, "Broker user name");
    app.add_option("--password-file", a.password_file,
                   "File whose first line is the broker password (default: the EDGEQC_MQTT_PASSWORD variable)");
    app.add_option("--cafile", a.ca_file, "TLS: the CA certificate that signed the broker's certificate");
    app.add_option("--cert", a.cert_file, "TLS: this node's client certificate, if the broker asks for one");
    app.add_option("--key", a.key_file, "TLS: the client certificate's private key");
    app.add_option("--canary", a.canary,
                   "Image each new model (sent over the air or put at the model path) must classify sanely before it "
                   "replaces the running one (default: a mid-grey frame)");
    app.add_option("--spool", a.spool, "Folder of the on-disk spool that keeps results until the broker has them")
        ->capture_default_str();
    app.add_option("--spool-max", a.spool_max, "Most results the spool keeps; beyond, the oldest are dropped and counted")
        ->capture_default_str();
    app.add_option("--spool-max-mib", a.spool_max_mib,
                   "Cap on the spool's size in MiB (0: none); when it (or the disk) is full, results wait in memory")
        ->capture_default_str();
    app.add_option("--drain-timeout", a.drain_timeout,
                   "Seconds to wait at the end for the broker to acknowledge what is left in the spool")
        ->capture_default_str();
    app.add_option("--reconnect-max", a.reconnect_max,
                   "Longest wait in seconds between reconnection attempts (the wait doubles from 1 s up to it)")
        ->capture_default_str();
    app.add_option("--stats-interval", a.stats_interval,
                   "Seconds between stats on PREFIX/NODE/stats (frames/s, latency percentiles, spool, memory); 0: none")
        ->capture_default_str();
    app.add_option("--lanes", a.lanes,
                   "Stream or watched folder: frames classified at once, each on a plan of its own (0: one per core, the "
                   "fastest way through on a small CPU); files go one at a time")
        ->capture_default_str();
    app.add_option("--threads", a.threads,
                   "Inference threads per lane (0: 1 with several lanes; with one, all cores, or all but one for a "
                   "stream, whose reader thread decodes)")
        ->capture_default_str();
    app.add_option("--log-level", a.log_level, "debug, info, warn or error (the log goes to standard error)")
        ->capture_default_str();
    add_max_pixels_option(app, a.max_pixels);
    app.set_version_flag("--version", std::string("edgeqc-edge ") + EDGEQC_VERSION);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);
        std::fprintf(stderr, "edgeqc-edge: error: %s\nRun with --help for more information.\n", e.what());
        return 1;
    }
    return exit_status_of("edgeqc-edge", "", [&] {
        set_max_image_pixels(a.max_pixels);
        return run(a);
    });
}
