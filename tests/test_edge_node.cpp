// edgeqc-edge end to end against a real broker: Debian's mosquitto started by the test on a free loopback port, a
// libmosquitto subscriber, the edge binary fed an MJPEG stream through a pipe. Results arrive with the documented
// schema and the right verdicts; a 10 s broker outage and a kill -9 of the node lose nothing; a broker that is not
// there and bad flags give clear messages.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "data/image.hpp"
#include "edge/inspection.hpp"
#include "edge/model_envelope.hpp"
#include "edge/sha256.hpp"
#include "edge/spool.hpp"
#include "engine/model_file.hpp"
#include "engine/rng.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using namespace edgeqc::testing;
using namespace std::chrono_literals;

namespace {

using Bytes = std::vector<unsigned char>;

int free_port() {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    socklen_t length = sizeof address;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&address), &length);
    ::close(s);
    return ntohs(address.sin_port);
}

bool port_accepts(int port) {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    ::close(s);
    return ok;
}

// A child process running `command` through /bin/sh (exec'd, so the pid is the program's), stdin from a pipe,
// stdout and stderr to files (appended).
class Child {
public:
    Child(const std::string& command, const std::string& stdout_path, const std::string& stderr_path) {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);  // no later child (a restarted broker) may hold this pipe open
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::dup2(fds[0], 0);
            ::close(fds[0]);
            ::close(fds[1]);
            const int out = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            const int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            ::dup2(out, 1);
            ::dup2(err, 2);
            const std::string line = "exec " + command;
            ::execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(fds[0]);
        input_ = fds[1];
    }
    ~Child() {
        close_input();
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    void write(const Bytes& bytes) {
        std::size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::write(input_, bytes.data() + done, bytes.size() - done);
            REQUIRE(n > 0);
            done += static_cast<std::size_t>(n);
        }
    }
    void close_input() {
        if (input_ >= 0) ::close(input_);
        input_ = -1;
    }
    void signal(int number) { ::kill(pid_, number); }
    // The exit status, or -1 if it did not exit by itself within the timeout (it is killed then).
    int wait(std::chrono::seconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        int status = 0;
        while (::waitpid(pid_, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > deadline) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                pid_ = -1;
                return -1;
            }
            std::this_thread::sleep_for(20ms);
        }
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

private:
    pid_t pid_ = -1;
    int input_ = -1;
};

// Debian's mosquitto on a free loopback port (anonymous, plain), with persistence so sessions survive a restart;
// more listeners (TLS, passwords) can follow in more_listeners, each with its own settings.
class Broker {
public:
    explicit Broker(const TempFolder& folder, const std::string& more_listeners = "")
        : folder_(folder), port_(free_port()) {
        // Run as this user: as root, mosquitto would switch to user mosquitto, who cannot write the test's folder.
        const passwd* user = ::getpwuid(::geteuid());
        REQUIRE(user != nullptr);
        std::ofstream(folder.file("broker/mosquitto.conf"))
            << "per_listener_settings true\npersistence true\npersistence_location " << folder.str()
            << "/broker/\nuser " << user->pw_name << "\nlistener " << port_ << " 127.0.0.1\nallow_anonymous true\n"
            << more_listeners;
        start();
    }
    ~Broker() { stop(); }
    void start() {
        const std::string binary = fs::exists("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : "mosquitto";
        process_ = std::make_unique<Child>(binary + " -c " + folder_.str() + "/broker/mosquitto.conf",
                                           folder_.file("broker/out.log"), folder_.file("broker/err.log"));
        wait_for_port(port_);
    }
    void wait_for_port(int port) const {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!port_accepts(port)) {
            INFO("broker log: ", read_text(folder_.str() + "/broker/err.log"));
            REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "mosquitto did not listen on port ", port);
            std::this_thread::sleep_for(20ms);
        }
    }
    void stop() {
        if (!process_) return;
        process_->signal(SIGTERM);
        CHECK(process_->wait(10s) == 0);
        process_.reset();
    }
    int port() const { return port_; }
    std::string url() const { return "mqtt://127.0.0.1:" + std::to_string(port_); }

private:
    const TempFolder& folder_;
    int port_;
    std::unique_ptr<Child> process_;
};

struct Message {
    std::string topic;
    std::string payload;
    bool retained = false;
};

// A libmosquitto subscriber with a persistent session (QoS 1), reconnecting every second while the broker is away.
class Subscriber {
public:
    Subscriber(int port, std::string topic) : topic_(std::move(topic)) {
        mosquitto_lib_init();
        client_ = mosquitto_new("edgeqc-test-subscriber", false, this);
        REQUIRE(client_ != nullptr);
        mosquitto_connect_callback_set(client_, [](mosquitto* m, void* self, int rc) {
            if (rc == 0) mosquitto_subscribe(m, nullptr, static_cast<Subscriber*>(self)->topic_.c_str(), 1);
        });
        mosquitto_subscribe_callback_set(client_, [](mosquitto*, void* self, int, int, const int*) {
            auto& s = *static_cast<Subscriber*>(self);
            std::lock_guard lock(s.mutex_);
            s.subscribed_ = true;
            s.changed_.notify_all();
        });
        mosquitto_message_callback_set(client_, [](mosquitto*, void* self, const mosquitto_message* m) {
            auto& s = *static_cast<Subscriber*>(self);
            std::lock_guard lock(s.mutex_);
            s.messages_.push_back({m->topic, std::string(static_cast<const char*>(m->payload),
                                                         static_cast<std::size_t>(m->payloadlen)),
                                   m->retain});
            s.changed_.notify_all();
        });
        mosquitto_reconnect_delay_set(client_, 1, 1, false);
        REQUIRE(mosquitto_connect(client_, "127.0.0.1", port, 30) == MOSQ_ERR_SUCCESS);
        REQUIRE(mosquitto_loop_start(client_) == MOSQ_ERR_SUCCESS);
        std::unique_lock lock(mutex_);
        REQUIRE(changed_.wait_for(lock, 10s, [&] { return subscribed_; }));
    }
    ~Subscriber() {
        mosquitto_disconnect(client_);
        mosquitto_loop_stop(client_, true);
        mosquitto_destroy(client_);
    }
    void publish(const std::string& topic, const std::string& payload) {
        REQUIRE(mosquitto_publish(client_, nullptr, topic.c_str(), static_cast<int>(payload.size()), payload.data(), 1,
                                  false) == MOSQ_ERR_SUCCESS);
    }
    // Waits until done(messages) holds or the timeout passes; returns the messages so far either way.
    std::vector<Message> wait_until(const std::function<bool(const std::vector<Message>&)>& done,
                                    std::chrono::seconds timeout) {
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, timeout, [&] { return done(messages_); });
        return messages_;
    }

private:
    std::string topic_;
    mosquitto* client_ = nullptr;
    std::mutex mutex_;
    std::condition_variable changed_;
    bool subscribed_ = false;
    std::vector<Message> messages_;
};

std::vector<Message> with_topic_suffix(const std::vector<Message>& messages, const std::string& suffix) {
    std::vector<Message> found;
    for (const Message& m : messages)
        if (m.topic.size() >= suffix.size() && m.topic.compare(m.topic.size() - suffix.size(), suffix.size(), suffix) == 0)
            found.push_back(m);
    return found;
}

// Frame ids of result messages in arrival order.
std::vector<std::int64_t> frame_ids(const std::vector<Message>& messages) {
    std::vector<std::int64_t> ids;
    for (const Message& m : with_topic_suffix(messages, "/result")) ids.push_back(nlohmann::json::parse(m.payload)["frame"]);
    return ids;
}

// Each of 1..count arrived, and first arrivals come in increasing order (re-sent duplicates may repeat earlier ids).
void check_all_in_order(const std::vector<std::int64_t>& ids, std::int64_t count) {
    std::set<std::int64_t> seen;
    std::int64_t last_new = 0;
    for (const std::int64_t id : ids) {
        if (seen.insert(id).second) {
            CHECK(id == last_new + 1);
            last_new = id;
        }
    }
    CHECK(static_cast<std::int64_t>(seen.size()) == count);
    if (!seen.empty()) CHECK(*seen.rbegin() == count);
}

std::size_t count_lines(const std::string& path) {
    std::ifstream file(path);
    return static_cast<std::size_t>(std::count(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>(), '\n'));
}

void wait_for_lines(const std::string& path, std::size_t lines, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (count_lines(path) < lines) {
        REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, path, " has ", count_lines(path), " lines, not ", lines);
        std::this_thread::sleep_for(20ms);
    }
}

// A tiny model trained for a second on synthetic surfaces (classes crack, hole, normal, pinhole, spatter), and
// camera frames of such surfaces.
struct Fixture {
    TempFolder folder;
    std::string model_path = folder.file("model.eqc");
    std::string output = folder.file("results.jsonl");
    std::string log = folder.file("edge.log");
    std::string spool = folder.file("spool");
    Fixture() {
        write_tiny_dataset(folder.file("data"), 12);
        train(tiny_train_options(folder.file("data"), model_path));
    }

    static std::vector<Bytes> frames(int count, std::uint64_t seed) {
        std::vector<Bytes> frames;
        Rng rng(seed);
        for (int i = 0; i < count; ++i) {
            const int defect = i % static_cast<int>(kSynthClasses.size());
            frames.push_back(encode_jpeg(render_synthetic_surface(defect, 40, 32, rng), 85, "frame"));
        }
        return frames;
    }

    std::string edge_command(const std::string& arguments) const {
        return EDGEQC_CLI_LAUNCHER " " EDGEQC_EDGE_PATH " " + shell_quoted(model_path) + " --threads 1 --spool " +
               shell_quoted(spool) + " " + arguments;
    }
};

// The node acts on messages (and model files) between frames: one frame at a time until its log holds text.
void send_until_logged(const std::string& log, const std::string& text, const std::function<void()>& send_frame) {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (read_text(log).find(text) == std::string::npos) {
        REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the node never logged ", text, "; its log:\n",
                        read_text(log));
        send_frame();
        std::this_thread::sleep_for(100ms);
    }
}

// The models that made the results of a JSON lines file, each once per run of frames; checks that the frames are
// numbered 1, 2, ... with none missing, and returns how many there were.
std::int64_t models_in_order(const std::string& output, std::vector<std::string>& models) {
    std::ifstream lines(output);
    std::int64_t expected_frame = 1;
    for (std::string line; std::getline(lines, line);) {
        const nlohmann::json r = nlohmann::json::parse(line);
        CHECK(r["frame"] == expected_frame++);
        if (models.empty() || models.back() != r["model"]) models.push_back(r["model"]);
    }
    return expected_frame - 1;
}

// A node on an MJPEG stream fed by the test, with its own broker and a subscriber to everything under edgeqc/.
struct LiveNode {
    const Fixture& fixture;
    Broker broker;
    Subscriber subscriber;
    Child edge;
    std::vector<Bytes> frames;
    std::size_t sent = 0;

    LiveNode(const Fixture& f, const std::string& options, std::uint64_t seed)
        : fixture(f),
          broker(f.folder),
          subscriber(broker.port(), "edgeqc/#"),
          edge(f.edge_command("--mjpeg-stdin --broker " + broker.url() + " " + options + " --output " +
                              shell_quoted(f.output)),
               f.folder.file("stdout.txt"), f.log),
          frames(Fixture::frames(5, seed)) {}

    void send(std::size_t count) {
        for (std::size_t i = 0; i < count; ++i) edge.write(frames[sent++ % frames.size()]);
    }
    void send_until_logged(const std::string& text) {
        ::send_until_logged(fixture.log, text, [&] { send(1); });
    }
    // Until the broker has acknowledged the node's subscriptions (its network thread logs that, frames or not): a
    // message published before then would not reach the node, as a command once did not in CI.
    void wait_until_subscribed() {
        ::send_until_logged(fixture.log, "subscribed to edgeqc/", [] {});
    }
};

// Ends the node's input and expects a clean exit, then every result 1..total at the subscriber, first arrivals in
// order.
void expect_every_result(Child& edge, Subscriber& subscriber, const Fixture& f, std::int64_t total) {
    edge.close_input();
    const int status = edge.wait(90s);
    INFO("edge log:\n", read_text(f.log));
    CHECK(status == 0);
    const std::vector<Message> messages = subscriber.wait_until(
        [&](const std::vector<Message>& m) {
            const std::vector<std::int64_t> ids = frame_ids(m);
            return static_cast<std::int64_t>(std::set<std::int64_t>(ids.begin(), ids.end()).size()) >= total;
        },
        60s);
    check_all_in_order(frame_ids(messages), total);
}

}  // namespace

TEST_CASE("results of an MJPEG stream arrive over MQTT with the documented schema and the right verdicts") {
    Fixture f;
    Broker broker(f.folder);
    Subscriber subscriber(broker.port(), "edgeqc/#");
    std::vector<Bytes> frames = Fixture::frames(40, 21);
    frames.insert(frames.begin() + 7, Bytes{0xFF, 0xD8, 0xFF, 0xD9});  // a frame with no image in it

    // The expected decisions, from the same model in this process, with thresholds that split the frames in three.
    Inspector reference(load_model(f.model_path), "", "", VerdictThresholds{}, {}, 1);
    std::vector<float> p;
    std::vector<InspectionResult> expected(frames.size());
    for (std::size_t i = 0; i < frames.size(); ++i) {
        reference.inspect_encoded(frames[i].data(), frames[i].size(), expected[i]);
        if (expected[i].error.empty()) p.push_back(expected[i].decision.defect_probability);
    }
    std::sort(p.begin(), p.end());
    const float reinspect = (p[12] + p[13]) / 2, defective = (p[26] + p[27]) / 2;
    char thresholds[64];
    std::snprintf(thresholds, sizeof thresholds, "%.9g,%.9g", static_cast<double>(reinspect), static_cast<double>(defective));
    const DecisionRule rule(kSynthClasses, "", parse_thresholds(thresholds));

    Child edge(f.edge_command("--mjpeg-stdin --broker " + broker.url() + " --node cell-7 --thresholds " + thresholds +
                              " --output " + shell_quoted(f.output)),
               f.folder.file("stdout.txt"), f.log);
    for (const Bytes& frame : frames) edge.write(frame);
    wait_for_lines(f.output, frames.size(), 60s);
    edge.signal(SIGTERM);  // a service's stop: the last results are delivered, the status goes offline
    CHECK(edge.wait(30s) == 0);

    const std::vector<Message> messages = subscriber.wait_until(
        [&](const std::vector<Message>& m) {
            const auto status = with_topic_suffix(m, "/status");
            return frame_ids(m).size() >= frames.size() && !status.empty() &&
                   nlohmann::json::parse(status.back().payload)["state"] == "offline";
        },
        30s);
    const std::vector<Message> results = with_topic_suffix(messages, "edgeqc/cell-7/result");
    REQUIRE(results.size() == frames.size());
    const std::string model_id = sha256_hex(read_bytes(f.model_path));
    int verdicts[3] = {0, 0, 0};
    for (std::size_t i = 0; i < results.size(); ++i) {
        const nlohmann::json r = nlohmann::json::parse(results[i].payload);
        CAPTURE(results[i].payload);
        CHECK(r["node"] == "cell-7");
        CHECK(r["frame"] == static_cast<std::int64_t>(i + 1));
        CHECK(r["source"] == "stdin");
        CHECK(r["model"] == model_id);
        CHECK(r["time"].get<std::string>().size() == 24);
        if (i == 7) {
            CHECK(r.contains("error"));
            CHECK_FALSE(r.contains("verdict"));
            continue;
        }
        const Decision d = rule.decide(expected[i].prediction.probabilities);
        CHECK(r["class"] == reference.description().class_names[static_cast<std::size_t>(expected[i].prediction.class_index)]);
        CHECK(r["p_defect"].get<double>() == doctest::Approx(d.defect_probability).epsilon(1e-5));
        CHECK(r["verdict"] == verdict_name(d.verdict));
        CHECK(r["probabilities"].size() == kSynthClasses.size());
        CHECK(r["latency_ms"].get<double>() > 0);
        ++verdicts[static_cast<int>(d.verdict)];
    }
    std::string listed;
    for (const float v : p) listed += std::to_string(v) + " ";
    INFO("defect probabilities: ", listed);
    CHECK(verdicts[0] > 5);  // all three verdicts occur
    CHECK(verdicts[1] > 5);
    CHECK(verdicts[2] > 5);
    const std::vector<Message> status = with_topic_suffix(messages, "edgeqc/cell-7/status");
    REQUIRE(status.size() >= 2);
    CHECK(nlohmann::json::parse(status.front().payload)["state"] == "online");
    CHECK(nlohmann::json::parse(status.back().payload)["model"] == model_id);
    // The same results as JSON lines on the output file.
    std::ifstream lines(f.output);
    std::string line;
    std::size_t n = 0;
    while (std::getline(lines, line)) CHECK(line == results[n++].payload);
    const std::string log = read_text(f.log);
    CHECK(log.find("stopped by a signal") != std::string::npos);
    CHECK(log.find("1 unreadable") != std::string::npos);
}

TEST_CASE("a 10 s broker outage in the middle of a 500-frame stream loses no result, and order is kept") {
    Fixture f;
    Broker broker(f.folder);
    Subscriber subscriber(broker.port(), "edgeqc/+/result");
    const std::vector<Bytes> frames = Fixture::frames(25, 31);
    Child edge(f.edge_command("--mjpeg-stdin --broker " + broker.url() + " --node line-2 --reconnect-max 2 " +
                              "--drain-timeout 30 --output " + shell_quoted(f.output)),
               f.folder.file("stdout.txt"), f.log);
    const int total = 500;
    for (int i = 0; i < total; ++i) {
        if (i == 150) {
            wait_for_lines(f.output, 150, 60s);
            broker.stop();
        }
        edge.write(frames[static_cast<std::size_t>(i) % frames.size()]);
        std::this_thread::sleep_for(std::chrono::milliseconds(i >= 150 && i < 400 ? 40 : 2));  // 250 frames in 10 s
        if (i == 400) broker.start();
    }
    expect_every_result(edge, subscriber, f, total);
    const std::string log = read_text(f.log);
    CHECK(log.find("lost the connection") != std::string::npos);
    CHECK(log.find("retrying in") != std::string::npos);
}

TEST_CASE("results spooled before a kill -9 are delivered by the next start, and frame ids go on") {
    Fixture f;
    const int port = free_port();  // no broker yet: everything stays in the spool
    {
        Child edge(f.edge_command("--mjpeg-stdin --broker mqtt://127.0.0.1:" + std::to_string(port) +
                                  " --node press-1 --output " + shell_quoted(f.output)),
                   f.folder.file("stdout.txt"), f.log);
        for (const Bytes& frame : Fixture::frames(60, 41)) edge.write(frame);
        wait_for_lines(f.output, 60, 60s);
        edge.signal(SIGKILL);
        CHECK(edge.wait(10s) == -1);
    }
    TempFolder broker_folder;
    Broker broker(broker_folder);
    Subscriber subscriber(broker.port(), "edgeqc/press-1/result");
    Child edge(f.edge_command("--mjpeg-stdin --broker " + broker.url() + " --node press-1 --output " +
                              shell_quoted(f.output)),
               f.folder.file("stdout.txt"), f.log);
    for (const Bytes& frame : Fixture::frames(5, 42)) edge.write(frame);
    edge.close_input();
    CHECK(edge.wait(60s) == 0);
    const std::vector<Message> messages =
        subscriber.wait_until([&](const std::vector<Message>& m) { return frame_ids(m).size() >= 65; }, 30s);
    check_all_in_order(frame_ids(messages), 65);
    CHECK(read_text(f.log).find("60 results waiting; next frame 61") != std::string::npos);
}

TEST_CASE("no broker, bad flags and a file that is not a model: one clear message each") {
    Fixture f;
    const std::string image = f.folder.file("images/a.jpg");
    write_bytes(image, Fixture::frames(1, 5)[0]);
    // Nobody listens on the port: the images are still classified, the results wait in the spool.
    CommandResult r = run_command(f.edge_command(shell_quoted(image) + " --broker mqtt://127.0.0.1:" +
                                                 std::to_string(free_port()) + " --drain-timeout 2 --output none"));
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("cannot connect to mqtt://127.0.0.1") != std::string::npos);
    CHECK(r.output.find("retrying in 1 s") != std::string::npos);
    CHECK(r.output.find("1 results not yet acknowledged") != std::string::npos);

    const auto refused = [&](const std::string& arguments, const std::string& message) {
        const CommandResult bad = run_command(f.edge_command(arguments));
        CAPTURE(arguments);
        CHECK(bad.exit_code == 1);
        CHECK(bad.output.find(message) != std::string::npos);
    };
    refused(shell_quoted(image) + " --broker mqtt://127.0.0.1:1 --prefix 'plant/#'", "wildcards");
    refused(shell_quoted(image) + " --broker mqtt://127.0.0.1:1 --node a/b", "--node 'a/b'");
    refused(shell_quoted(image) + " --broker tcp://x", "mqtt://");
    refused(shell_quoted(image) + " --qos 3", "--qos");
    refused(shell_quoted(image) + " --thresholds 0.9,0.1", "must not exceed");
    refused(shell_quoted(image) + " --normal-class grass", "crack, hole, normal, pinhole, spatter");
    refused(f.folder.file("missing.jpg"), "does not exist");
    refused("--mjpeg-stdin " + shell_quoted(image), "one kind of input");
    write_bytes(f.model_path, Bytes(300, 7));
    refused(shell_quoted(image), "model");
}

TEST_CASE("TLS with a password: a wrong password or CA gets a clear message and retries; the right ones deliver all") {
    Fixture f;
    const std::string tls = f.folder.str() + "/tls/";
    fs::create_directories(tls);
    // A test CA signs the broker's certificate for 127.0.0.1; a second CA has nothing to do with it.
    const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2";
    const std::string certificates =
        "cd " + shell_quoted(tls) + " && openssl req -x509" + key + " -keyout ca.key -out ca.crt -subj /CN=edgeqc-test-ca" +
        " && openssl req -x509" + key + " -keyout other.key -out other.crt -subj /CN=other-ca" +
        " && openssl req" + key + " -keyout server.key -out server.csr -subj /CN=127.0.0.1" +
        " && printf 'subjectAltName=IP:127.0.0.1\\n' > san.txt" +
        " && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.txt" +
        " -out server.crt && mosquitto_passwd -b -c passwords node-7 correct-horse";
    const CommandResult made = run_command(certificates);
    INFO(made.output);
    REQUIRE(made.exit_code == 0);
    const int secure_port = free_port();
    Broker broker(f.folder, "listener " + std::to_string(secure_port) + " 127.0.0.1\ncafile " + tls + "ca.crt\ncertfile " +
                                tls + "server.crt\nkeyfile " + tls + "server.key\nallow_anonymous false\npassword_file " +
                                tls + "passwords\n");
    broker.wait_for_port(secure_port);
    Subscriber subscriber(broker.port(), "edgeqc/+/result");
    const std::string image = f.folder.file("images/a.jpg");
    write_bytes(image, Fixture::frames(1, 5)[0]);
    std::ofstream(f.folder.file("password.txt")) << "correct-horse\n";
    const std::string secure = shell_quoted(image) + " --node node-7 --output none --broker mqtts://127.0.0.1:" +
                               std::to_string(secure_port) + " --username node-7 ";

    const CommandResult wrong_password =
        run_command("EDGEQC_MQTT_PASSWORD=wrong " + f.edge_command(secure + "--cafile " + tls + "ca.crt --drain-timeout 3"));
    CHECK(wrong_password.exit_code == 0);
    CHECK(wrong_password.output.find("refused the connection: Connection Refused: not authorised") != std::string::npos);
    CHECK(wrong_password.output.find("retrying in 2 s") != std::string::npos);  // it tried again, with back-off
    CHECK(wrong_password.output.find("1 results not yet acknowledged") != std::string::npos);

    const CommandResult wrong_ca = run_command(
        f.edge_command(secure + "--cafile " + tls + "other.crt --password-file " + f.folder.file("password.txt") +
                       " --drain-timeout 3"));
    CHECK(wrong_ca.exit_code == 0);
    CHECK(wrong_ca.output.find("cannot connect to mqtts://127.0.0.1") != std::string::npos);
    CHECK(wrong_ca.output.find("TLS") != std::string::npos);
    CHECK(wrong_ca.output.find("2 results not yet acknowledged") != std::string::npos);

    const CommandResult right = run_command(
        f.edge_command(secure + "--cafile " + tls + "ca.crt --password-file " + f.folder.file("password.txt")));
    INFO(right.output);
    CHECK(right.exit_code == 0);
    CHECK(right.output.find("2 results waiting") != std::string::npos);
    const std::vector<Message> messages =
        subscriber.wait_until([&](const std::vector<Message>& m) { return frame_ids(m).size() >= 3; }, 30s);
    check_all_in_order(frame_ids(messages), 3);  // the two spooled by the failed runs, then this run's
}

TEST_CASE("commands over MQTT pause, resume and re-threshold the node between frames; stats arrive every interval") {
    Fixture f;
    LiveNode node(f, "--node cell-3 --stats-interval 0.3", 61);
    Subscriber& subscriber = node.subscriber;
    std::size_t& sent = node.sent;
    const auto send = [&](std::size_t count) { node.send(count); };
    const auto command = [&](const std::string& payload, const std::string& applied) {
        subscriber.publish("edgeqc/cell-3/cmd", payload);
        node.send_until_logged(applied);
    };
    node.wait_until_subscribed();
    send(5);
    wait_for_lines(f.output, 5, 60s);
    command(R"({"cmd":"pause"})", R"(command: {"cmd":"pause"})");
    const std::size_t before_pause = count_lines(f.output);
    const std::size_t sent_before_pause = sent;
    send(4);
    // The node takes commands between frames: resume only once its stats show all five paused frames handled.
    subscriber.wait_until(
        [&](const std::vector<Message>& m) {
            const std::vector<Message> stats = with_topic_suffix(m, "/stats");
            return !stats.empty() && nlohmann::json::parse(stats.back().payload)["paused_frames"].get<int>() >= 5;
        },
        30s);
    command(R"({"cmd":"resume"})", R"(command: {"cmd":"resume"})");
    wait_for_lines(f.output, before_pause + 1, 30s);  // the frame that carried the resume
    const std::size_t skipped = sent - sent_before_pause + 1 - (count_lines(f.output) - before_pause);
    CHECK(skipped >= 4);
    command(R"({"cmd":"thresholds","reinspect":0,"defective":0})", R"(command: {"cmd":"thresholds")");
    command(R"({"cmd":"self-destruct"})", "command refused: unknown command 'self-destruct'");
    const std::size_t lines = count_lines(f.output);
    send(5);
    wait_for_lines(f.output, lines + 5, 30s);
    const std::vector<Message> stats = subscriber.wait_until(
        [&](const std::vector<Message>& m) { return with_topic_suffix(m, "/stats").size() >= 2; }, 30s);
    node.edge.close_input();
    CHECK(node.edge.wait(30s) == 0);

    std::ifstream output(f.output);
    std::vector<nlohmann::json> results;
    for (std::string line; std::getline(output, line);) results.push_back(nlohmann::json::parse(line));
    for (std::size_t i = results.size() - 5; i < results.size(); ++i) CHECK(results[i]["verdict"] == "defective");
    CHECK(read_text(f.log).find(std::to_string(skipped) + " skipped while paused") != std::string::npos);

    const nlohmann::json last = nlohmann::json::parse(with_topic_suffix(stats, "edgeqc/cell-3/stats").back().payload);
    CAPTURE(last.dump());
    CHECK(last["node"] == "cell-3");
    CHECK(last["frames"].get<int>() >= 5);
    CHECK(last["fps"].get<double>() >= 0);
    CHECK(last["latency_ms"]["p99"].get<double>() >= last["latency_ms"]["p50"].get<double>());
    CHECK(last["spool"].get<int>() >= 0);
    CHECK(last["rss_mib"].get<double>() > 1);
    CHECK(last.contains("paused"));
    CHECK(last["verdicts"].size() == 3);
}

TEST_CASE("micro-batches and parallel lanes give the results of single frames, in order; a malformed stream is "
          "skipped, counted and bounded") {
    Fixture f;
    const std::vector<Bytes> frames = Fixture::frames(30, 71);
    Bytes stream;
    for (std::size_t i = 0; i < frames.size(); ++i) {
        if (i == 3) stream.insert(stream.end(), {'n', 'o', 'i', 's', 'e', 0xFF, 0x00});  // garbage between frames
        if (i == 9) stream.insert(stream.end(), frames[i].begin(), frames[i].end() - 40);  // cut off by the next
        if (i == 17) {  // a frame whose scan never ends grows past --max-frame-bytes and is dropped
            stream.insert(stream.end(), {0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02});
            stream.insert(stream.end(), 200000, 0x42);
        }
        stream.insert(stream.end(), frames[i].begin(), frames[i].end());
    }
    write_bytes(f.folder.file("stream.mjpeg"), stream);
    const auto run = [&](const std::string& options, const std::string& output) {
        const CommandResult r = run_command(f.edge_command("--mjpeg-stdin --max-frame-bytes 65536 --output " +
                                                           shell_quoted(output) + " " + options + " < " +
                                                           shell_quoted(f.folder.file("stream.mjpeg"))));
        INFO(r.output);
        CHECK(r.exit_code == 0);
        // Skipped: the 7 garbage bytes, and what followed the endless frame's first 65536 bytes (200006 in all).
        CHECK(r.output.find("30 frames, 134477 bytes of garbage skipped, 1 truncated, 0 malformed, 1 oversized") !=
              std::string::npos);
        std::vector<nlohmann::json> results;
        std::ifstream lines(output);
        for (std::string line; std::getline(lines, line);) results.push_back(nlohmann::json::parse(line));
        return results;
    };
    const std::vector<nlohmann::json> single = run("--batch 1 --lanes 1", f.folder.file("single.jsonl"));
    REQUIRE(single.size() == frames.size());
    for (const char* options : {"--batch 8 --max-wait 50 --queue 16 --lanes 1", "--batch 2 --lanes 3", "--lanes 4"}) {
        CAPTURE(options);
        const std::vector<nlohmann::json> other = run(options, f.folder.file("other.jsonl"));
        fs::remove(f.folder.file("other.jsonl"));
        REQUIRE(other.size() == frames.size());
        for (std::size_t i = 0; i < frames.size(); ++i) {
            CAPTURE(i);
            CHECK(single[i]["frame"] == static_cast<std::int64_t>(i + 1));
            CHECK(other[i]["frame"] == static_cast<std::int64_t>(i + 1));
            CHECK(other[i]["class"] == single[i]["class"]);
            CHECK(other[i]["verdict"] == single[i]["verdict"]);
            CHECK(other[i]["p_defect"].get<double>() == doctest::Approx(single[i]["p_defect"].get<double>()).epsilon(1e-5));
        }
    }
}

TEST_CASE("a watched folder: each image is inspected once it is complete, then moved to done/; others are left") {
    Fixture f;
    const std::string watched = f.folder.str() + "/incoming";
    fs::create_directories(watched);
    const std::vector<Bytes> frames = Fixture::frames(4, 81);
    write_bytes(watched + "/waiting.jpg", frames[0]);  // there before the start: pending work with --move-done
    Child edge(f.edge_command("--watch " + shell_quoted(watched) + " --move-done --output " + shell_quoted(f.output)),
               f.folder.file("stdout.txt"), f.log);
    wait_for_lines(f.output, 1, 60s);
    write_bytes(watched + "/in-place.jpg", frames[1]);  // written where it lands: complete when closed
    write_bytes(f.folder.file("staging/renamed.jpg.part"), frames[2]);
    fs::rename(f.folder.file("staging/renamed.jpg.part"), watched + "/renamed.jpg");  // complete when renamed in
    write_bytes(watched + "/notes.txt", {'h', 'i'});                           // not an image: left alone
    write_bytes(watched + "/partial.jpg.tmp", frames[3]);                      // nor a file still being written
    wait_for_lines(f.output, 3, 60s);
    edge.signal(SIGTERM);
    CHECK(edge.wait(30s) == 0);
    std::vector<std::string> sources;
    std::ifstream lines(f.output);
    for (std::string line; std::getline(lines, line);) {
        const nlohmann::json r = nlohmann::json::parse(line);
        CHECK(r.contains("verdict"));
        sources.push_back(fs::path(r["source"].get<std::string>()).filename().string());
    }
    CHECK(sources == std::vector<std::string>{"waiting.jpg", "in-place.jpg", "renamed.jpg"});
    for (const char* name : {"waiting.jpg", "in-place.jpg", "renamed.jpg"}) {
        CHECK(fs::exists(watched + "/done/" + name));
        CHECK_FALSE(fs::exists(watched + "/" + name));
    }
    CHECK(fs::exists(watched + "/notes.txt"));
    CHECK(fs::exists(watched + "/partial.jpg.tmp"));
    CHECK(read_text(f.log).find("processed 3 frames") != std::string::npos);
}

TEST_CASE("a large frame in tiles: the frame's verdict is its worst tile's, and the tiles that are not normal are listed") {
    Fixture f;
    // A 2 x 3 mosaic of surfaces (32 x 40 each), one frame of 64 x 120, cut into six tiles of 32 x 40 at stride 32..40.
    Rng rng(91);
    Image frame{120, 64, 1, std::vector<float>(120 * 64)};
    for (int tile = 0; tile < 6; ++tile) {
        const Image surface = render_synthetic_surface(tile % static_cast<int>(kSynthClasses.size()), 40, 32, rng);
        for (int y = 0; y < 32; ++y)
            for (int x = 0; x < 40; ++x)
                frame.pixels[static_cast<std::size_t>((tile / 3 * 32 + y) * 120 + tile % 3 * 40 + x)] =
                    surface.pixels[static_cast<std::size_t>(y * 40 + x)];
    }
    const std::string image = f.folder.file("plate.png");
    write_png(image, frame);
    // The reference: each tile cut out by hand and classified on its own, the same model and thresholds.
    const Image decoded = decode_image_file(image);
    Classifier classifier(load_model(f.model_path), 1);
    const DecisionRule rule(kSynthClasses, "", parse_thresholds("0.3,0.6"));
    float worst = -1;
    std::vector<std::pair<int, int>> flagged;  // x, y of the tiles that are not normal
    for (int tile = 0; tile < 6; ++tile) {
        const int x = tile % 3 * 40, y = tile / 3 * 32;
        const Decision d = rule.decide(classifier.classify(crop_image(decoded, x, y, 40, 32)).probabilities);
        worst = std::max(worst, d.defect_probability);
        if (d.verdict != Verdict::Normal) flagged.emplace_back(x, y);
    }
    const CommandResult r = run_command(f.edge_command(shell_quoted(image) + " --tile 32x40 --stride 40 --batch 4 " +
                                                       "--thresholds 0.3,0.6 --output " + shell_quoted(f.output)));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    const nlohmann::json result = nlohmann::json::parse(read_text(f.output));
    CHECK(result["tiles_inspected"] == 6);
    CHECK(result["p_defect"].get<double>() == doctest::Approx(worst).epsilon(1e-5));
    REQUIRE(result["tiles"].size() == flagged.size());
    for (std::size_t i = 0; i < flagged.size(); ++i) {
        CHECK(result["tiles"][i]["x"] == flagged[i].first);
        CHECK(result["tiles"][i]["y"] == flagged[i].second);
        CHECK(result["tiles"][i]["width"] == 40);
        CHECK(result["tiles"][i]["height"] == 32);
    }
    const CommandResult outside = run_command(f.edge_command(shell_quoted(image) + " --roi 100,0,50,50 --output none"));
    CHECK(outside.exit_code == 1);
    CHECK(outside.output.find("not inside the 120x64 frame") != std::string::npos);
}

TEST_CASE("models over the air: a damaged or incompatible one is refused, a good one takes over between frames, "
          "rollback restores the old") {
    Fixture f;
    const Bytes first_model = read_bytes(f.model_path);
    const std::string first_id = sha256_hex(first_model);
    TrainOptions retrain = tiny_train_options(f.folder.file("data"), f.folder.file("second.eqc"));
    retrain.seed = 17;  // the same classes and input, other weights
    train(retrain);
    const Bytes second_model = read_bytes(f.folder.file("second.eqc"));
    const std::string second_id = sha256_hex(second_model);
    save_model(f.folder.file("other.eqc"), random_model(model_description("c4bn-p-c6-p-fc", 1, 16, 20), 3));

    LiveNode node(f, "--node cell-9", 101);
    Subscriber& subscriber = node.subscriber;
    const auto send = [&](std::size_t count) { node.send(count); };
    const auto events = [&](std::size_t count) {
        std::vector<nlohmann::json> found;
        for (const Message& m : subscriber.wait_until(
                 [&](const std::vector<Message>& all) { return with_topic_suffix(all, "/event").size() >= count; }, 60s))
            if (m.topic == "edgeqc/cell-9/event") found.push_back(nlohmann::json::parse(m.payload));
        REQUIRE(found.size() >= count);
        return found;
    };
    node.wait_until_subscribed();
    send(3);
    wait_for_lines(f.output, 3, 60s);

    std::string damaged = seal_model_envelope(second_model);
    damaged[damaged.size() / 2] ^= 0x20;
    subscriber.publish("edgeqc/cell-9/model", damaged);
    CHECK(events(1)[0]["reason"].get<std::string>().find("checksum mismatch") != std::string::npos);
    subscriber.publish("edgeqc/cell-9/model", seal_model_envelope(read_bytes(f.folder.file("other.eqc"))));
    CHECK(events(2)[1]["reason"].get<std::string>().find("the running model's") != std::string::npos);
    subscriber.publish("edgeqc/cell-9/model", "{\"sha256\":\"00\"}\nxyz");
    CHECK(events(3)[2]["result"] == "refused");

    // The good one: checked beside inference, then swapped in before a frame; send frames until it is.
    subscriber.publish("edgeqc/cell-9/model", seal_model_envelope(second_model));
    node.send_until_logged("model " + second_id.substr(0, 12) + " installed");
    send(3);
    CHECK(read_bytes(f.model_path) == second_model);  // on disk for the next start, the old one kept beside it
    CHECK(read_bytes(f.model_path + ".previous") == first_model);
    subscriber.publish("edgeqc/cell-9/cmd", R"({"cmd":"rollback"})");
    node.send_until_logged("model " + first_id.substr(0, 12) + " rolled back");
    send(2);
    node.edge.close_input();
    CHECK(node.edge.wait(60s) == 0);
    CHECK(read_bytes(f.model_path) == first_model);

    // Every frame has its result, in order, each naming the model that made it: the first, then the second, then
    // the first again; no frame was lost across the swaps.
    std::vector<std::string> models;
    CHECK(models_in_order(f.output, models) == static_cast<std::int64_t>(node.sent));
    CHECK(models == std::vector<std::string>{first_id, second_id, first_id});
    // The node's own renames over the model file are seen by its watch and pass in silence.
    CHECK(read_text(f.log).find("running already") == std::string::npos);
    const std::vector<nlohmann::json> all = events(5);
    CHECK(all[3]["result"] == "installed");
    CHECK(all[4]["result"] == "rolled back");
    const std::vector<Message> status = with_topic_suffix(subscriber.wait_until([](auto&) { return true; }, 0s), "/status");
    bool announced_second = false;
    for (const Message& m : status) announced_second |= nlohmann::json::parse(m.payload)["model"] == second_id;
    CHECK(announced_second);
}

TEST_CASE("a model file replaced on disk (through a symbolic link) is checked and runs from the next frame; a damaged "
          "one is refused") {
    Fixture f;
    const std::string first_id = sha256_hex(read_bytes(f.model_path));
    TrainOptions retrain = tiny_train_options(f.folder.file("data"), f.folder.file("second.eqc"));
    retrain.seed = 17;
    train(retrain);
    const Bytes second_model = read_bytes(f.folder.file("second.eqc"));
    const std::string second_id = sha256_hex(second_model);
    // The node is given a symbolic link to the model: it watches the file the link points to.
    const std::string link = f.folder.file("current.eqc");
    fs::create_symlink(f.model_path, link);
    std::string command = f.edge_command("--mjpeg-stdin --output " + shell_quoted(f.output));
    command.replace(command.find(shell_quoted(f.model_path)), shell_quoted(f.model_path).size(), shell_quoted(link));
    Child edge(command, f.folder.file("stdout.txt"), f.log);
    const std::vector<Bytes> frames = Fixture::frames(5, 121);
    std::size_t sent = 0;
    const auto send_frame = [&] { edge.write(frames[sent++ % frames.size()]); };
    for (int i = 0; i < 3; ++i) send_frame();
    wait_for_lines(f.output, 3, 60s);

    write_bytes(f.folder.file("staging.eqc"), second_model);  // how a careful copy arrives: renamed over the model
    fs::rename(f.folder.file("staging.eqc"), f.model_path);
    send_until_logged(f.log, "model " + second_id.substr(0, 12) + " installed", send_frame);
    Bytes damaged = second_model;  // written in place this time, and bit-flipped
    damaged[damaged.size() / 2] ^= 0x01;
    write_bytes(f.model_path, damaged);
    send_until_logged(f.log, "refused", send_frame);
    for (int i = 0; i < 3; ++i) send_frame();
    edge.close_input();
    CHECK(edge.wait(60s) == 0);
    INFO(read_text(f.log));
    std::vector<std::string> models;
    CHECK(models_in_order(f.output, models) == static_cast<std::int64_t>(sent));
    CHECK(models == std::vector<std::string>{first_id, second_id});  // the damaged file never ran
    CHECK(read_text(f.log).find("checksum mismatch") != std::string::npos);
    CHECK(read_text(f.log).find("is not the model running: a restart would start from it") != std::string::npos);
}

TEST_CASE("a full spool (its size cap standing in for a full disk): results wait in memory, then all arrive in order") {
    Fixture f;
    Broker broker(f.folder);
    Subscriber subscriber(broker.port(), "edgeqc/+/result");
    broker.stop();  // the subscriber's session waits in the broker's persistence
    Child edge(f.edge_command("--mjpeg-stdin --broker " + broker.url() + " --node tank-1 --spool-max-mib 0.1 " +
                              "--reconnect-max 1 --drain-timeout 60 --output " + shell_quoted(f.output)),
               f.folder.file("stdout.txt"), f.log);
    const std::vector<Bytes> frames = Fixture::frames(10, 111);
    const int total = 400;  // about twice what 100 KiB of spool holds
    for (int i = 0; i < total; ++i) edge.write(frames[static_cast<std::size_t>(i) % frames.size()]);
    wait_for_lines(f.output, total, 60s);
    CHECK(read_text(f.log).find("results wait in memory") != std::string::npos);
    broker.start();
    expect_every_result(edge, subscriber, f, total);
    CHECK(read_text(f.log).find("moved in from memory") != std::string::npos);
    CHECK(read_text(f.log).find("never found room") == std::string::npos);
}

TEST_CASE("QoS 0: results leave the spool as they are sent, past the window of unacknowledged ones") {
    Fixture f;
    LiveNode node(f, "--node q0 --qos 0", 121);
    node.send(300);  // more than the 256 messages the publisher keeps in flight
    expect_every_result(node.edge, node.subscriber, f, 300);
    CHECK(read_text(f.log).find("not yet acknowledged") == std::string::npos);
    CHECK(Spool(f.spool, 10).size() == 0);
}
