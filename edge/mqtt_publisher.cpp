// The network thread: libmosquitto driven by poll() on its socket and an eventfd, so that a new message in the spool
// wakes it at once and every libmosquitto call stays on this one thread. Each connection gets a fresh client, so
// nothing libmosquitto kept in memory is sent twice out of order; the spool is the only queue.
#include "edge/mqtt_publisher.hpp"

#include <mosquitto.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "engine/error.hpp"

namespace edgeqc {

namespace {

constexpr std::size_t kWindow = 256;  // messages handed to libmosquitto and not yet acknowledged
constexpr auto kConnectTimeout = std::chrono::seconds(10);
constexpr auto kGoodbyeTimeout = std::chrono::seconds(2);

// libmosquitto's message for a result code, without its closing full stop (it goes inside a log line).
std::string mosquitto_reason(int code) {
    std::string reason = code == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(code);
    if (!reason.empty() && reason.back() == '.') reason.pop_back();
    return reason;
}

}  // namespace

void parse_broker_url(const std::string& url, MqttSettings& settings) {
    std::string rest;
    if (url.rfind("mqtt://", 0) == 0) {
        rest = url.substr(7);
        settings.tls = false;
        settings.port = 1883;
    } else if (url.rfind("mqtts://", 0) == 0) {
        rest = url.substr(8);
        settings.tls = true;
        settings.port = 8883;
    } else {
        throw Error("broker '" + url + "' must start with mqtt:// or mqtts://");
    }
    const std::size_t colon = rest.rfind(':');
    if (colon != std::string::npos && rest.find(']') == std::string::npos) {
        const std::string port = rest.substr(colon + 1);
        char* end = nullptr;
        const long value = std::strtol(port.c_str(), &end, 10);
        if (port.empty() || *end != '\0' || value < 1 || value > 65535)
            throw Error("broker '" + url + "': port '" + port + "' is not a number from 1 to 65535");
        settings.port = static_cast<int>(value);
        rest.resize(colon);
    }
    if (rest.empty() || rest.find('/') != std::string::npos) throw Error("broker '" + url + "' names no host");
    settings.host = rest;
}

MqttPublisher::MqttPublisher(MqttSettings settings, Spool& spool, const EventLog& log)
    : settings_(std::move(settings)), spool_(spool), log_(log) {
    if (settings_.qos < 0 || settings_.qos > 1)
        throw Error("QoS " + std::to_string(settings_.qos) + ": results go at QoS 0 or 1 (a new client per connection "
                    "restarts message ids, which QoS 2's exactly-once bookkeeping at the broker does not allow)");
    if (settings_.tls && settings_.cert_file.empty() != settings_.key_file.empty())
        throw Error("a TLS client certificate needs its key, and a key its certificate (--cert and --key)");
    static const int library = mosquitto_lib_init();
    (void)library;
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) throw Error(std::string("cannot create the network thread's eventfd: ") + std::strerror(errno));
    next_attempt_ = Clock::now();
    thread_ = std::thread([this] { run(); });
}

MqttPublisher::~MqttPublisher() {
    stopping_ = true;
    notify();
    thread_.join();
    ::close(wake_fd_);
}

void MqttPublisher::notify() {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t written = ::write(wake_fd_, &one, sizeof one);  // fails only when already signalled
}

void MqttPublisher::publish_ephemeral(std::string topic, std::string payload, int qos) {
    if (!connected_) return;
    {
        std::lock_guard lock(ephemeral_mutex_);
        if (ephemeral_.size() >= 16) ephemeral_.erase(ephemeral_.begin());  // a stalled network thread: keep the newest
        ephemeral_.push_back({std::move(topic), std::move(payload), qos, false});
    }
    notify();
}

std::string MqttPublisher::status_payload(bool online) {
    std::lock_guard lock(ephemeral_mutex_);
    return online ? settings_.online_payload : settings_.offline_payload;
}

void MqttPublisher::update_status(std::string online_payload, std::string offline_payload) {
    {
        std::lock_guard lock(ephemeral_mutex_);
        settings_.online_payload = std::move(online_payload);
        settings_.offline_payload = std::move(offline_payload);
        status_changed_ = true;  // published apart from the bounded ephemeral queue, so it is never pushed out
    }
    notify();
}

void MqttPublisher::set_message_handler(MessageHandler handler) {
    std::lock_guard lock(handler_mutex_);
    on_message_ = std::move(handler);
}

bool MqttPublisher::wait_until_delivered(std::chrono::milliseconds timeout) {
    std::unique_lock lock(delivered_mutex_);
    return delivered_.wait_for(lock, timeout, [&] { return spool_.size() == 0; });
}

std::string MqttPublisher::broker_name() const {
    return (settings_.tls ? "mqtts://" : "mqtt://") + settings_.host + ":" + std::to_string(settings_.port);
}

void MqttPublisher::run() {
    while (!stopping_) {
        if (!client_) {
            if (Clock::now() < next_attempt_) sleep_until(next_attempt_);
            else start_connecting();
            continue;
        }
        try {
            service_connection();
        } catch (const Error& e) {  // the spool failed: keep the connection, try again shortly
            log_.error(e.what());
            sleep_until(Clock::now() + std::chrono::seconds(1));
        }
    }
    say_goodbye();
}

void MqttPublisher::sleep_until(Clock::time_point when) {
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(when - Clock::now()).count();
    if (wait <= 0) return;
    pollfd wake{wake_fd_, POLLIN, 0};
    if (::poll(&wake, 1, static_cast<int>(wait)) > 0) {
        std::uint64_t count;
        [[maybe_unused]] const ssize_t read = ::read(wake_fd_, &count, sizeof count);
    }
}

bool MqttPublisher::start_connecting() {
    client_ = mosquitto_new(settings_.client_id.c_str(), false, this);
    if (!client_) {
        drop_connection(LogLevel::Error, "cannot create an MQTT client (client id '" + settings_.client_id + "')");
        return false;
    }
    mosquitto_int_option(client_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(client_, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_callback_set(client_, &MqttPublisher::on_connect);
    mosquitto_disconnect_callback_set(client_, &MqttPublisher::on_disconnect);
    mosquitto_publish_callback_set(client_, &MqttPublisher::on_publish);
    mosquitto_message_callback_set(client_, &MqttPublisher::on_message);
    mosquitto_subscribe_callback_set(client_, &MqttPublisher::on_subscribe);
    const std::string offline = status_payload(false);
    int rc = mosquitto_will_set(client_, settings_.status_topic.c_str(), static_cast<int>(offline.size()), offline.data(),
                                1, true);
    if (rc == MOSQ_ERR_SUCCESS && !settings_.username.empty())
        rc = mosquitto_username_pw_set(client_, settings_.username.c_str(),
                                       settings_.password.empty() ? nullptr : settings_.password.c_str());
    if (rc == MOSQ_ERR_SUCCESS && settings_.tls && settings_.ca_file.empty())
        rc = mosquitto_int_option(client_, MOSQ_OPT_TLS_USE_OS_CERTS, 1);  // the system's CAs when none is named
    if (rc == MOSQ_ERR_SUCCESS && settings_.tls)
        rc = mosquitto_tls_set(client_, settings_.ca_file.empty() ? nullptr : settings_.ca_file.c_str(), nullptr,
                               settings_.cert_file.empty() ? nullptr : settings_.cert_file.c_str(),
                               settings_.key_file.empty() ? nullptr : settings_.key_file.c_str(), nullptr);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_connect_async(client_, settings_.host.c_str(), settings_.port, settings_.keepalive_seconds);
    if (rc != MOSQ_ERR_SUCCESS) {
        drop_connection(LogLevel::Warn, "cannot connect to " + broker_name() + ": " + mosquitto_reason(rc));
        return false;
    }
    refused_ = 0;
    lost_ = false;
    connect_started_ = Clock::now();
    cursor_ = 0;
    in_flight_.clear();
    return true;
}

void MqttPublisher::drop_connection(LogLevel level, const std::string& why) {
    if (client_) mosquitto_destroy(client_);
    client_ = nullptr;
    connected_ = false;
    in_flight_.clear();
    const auto seconds = std::chrono::duration<double>(backoff_).count();
    char retry[64];
    std::snprintf(retry, sizeof retry, "; retrying in %.0f s", seconds);
    log_.log(level, why + retry);
    next_attempt_ = Clock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, settings_.max_backoff);
}

void MqttPublisher::service_connection() {
    if (connected_) publish_pending();
    const int socket = mosquitto_socket(client_);
    pollfd fds[2] = {{socket, static_cast<short>(POLLIN | (mosquitto_want_write(client_) ? POLLOUT : 0)), 0},
                     {wake_fd_, POLLIN, 0}};
    const int ready = ::poll(fds, 2, 1000);
    if (ready > 0 && (fds[1].revents & POLLIN)) {
        std::uint64_t count;
        [[maybe_unused]] const ssize_t read = ::read(wake_fd_, &count, sizeof count);
    }
    int rc = MOSQ_ERR_SUCCESS;
    // While connecting, libmosquitto's read step also drives a TLS handshake that waits to write.
    const short readable = POLLIN | POLLERR | POLLHUP | (connected_ ? 0 : POLLOUT);
    if (ready > 0 && (fds[0].revents & readable)) rc = mosquitto_loop_read(client_, 1);
    if (rc == MOSQ_ERR_SUCCESS && mosquitto_want_write(client_)) rc = mosquitto_loop_write(client_, 1);
    if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_loop_misc(client_);
    apply_acknowledgements();
    if (refused_ != 0) {
        drop_connection(LogLevel::Error,
                        "broker " + broker_name() + " refused the connection: " + mosquitto_connack_string(refused_));
    } else if (rc != MOSQ_ERR_SUCCESS || lost_) {
        const bool was_connected = connected_;
        drop_connection(LogLevel::Warn, (was_connected ? "lost the connection to " : "cannot connect to ") +
                                            broker_name() + ": " + mosquitto_reason(rc == MOSQ_ERR_SUCCESS ? MOSQ_ERR_CONN_LOST : rc));
    } else if (!connected_ && Clock::now() - connect_started_ > kConnectTimeout) {
        drop_connection(LogLevel::Warn, "no answer from " + broker_name() + " within 10 s");
    }
}

void MqttPublisher::publish_pending() {
    std::vector<Ephemeral> ephemeral;
    {
        std::lock_guard lock(ephemeral_mutex_);
        ephemeral.swap(ephemeral_);
        if (status_changed_) ephemeral.push_back({settings_.status_topic, settings_.online_payload, 1, true});
        status_changed_ = false;
    }
    for (const Ephemeral& e : ephemeral)
        mosquitto_publish(client_, nullptr, e.topic.c_str(), static_cast<int>(e.payload.size()), e.payload.data(), e.qos,
                          e.retain);
    while (in_flight_.size() < kWindow) {
        const std::vector<SpooledMessage> batch = spool_.after(cursor_, kWindow - in_flight_.size());
        if (batch.empty()) return;
        for (const SpooledMessage& m : batch) {
            int message_id = 0;
            const int rc = mosquitto_publish(client_, &message_id, m.topic.c_str(), static_cast<int>(m.payload.size()),
                                             m.payload.data(), settings_.qos, false);
            if (rc != MOSQ_ERR_SUCCESS) {
                lost_ = true;
                return;
            }
            // QoS 0 has no acknowledgement: libmosquitto reports it sent inside mosquitto_publish, before this line.
            if (settings_.qos == 0) acknowledged_.push_back(m.id);
            else in_flight_.emplace(message_id, m.id);
            cursor_ = m.id;
        }
    }
}

void MqttPublisher::apply_acknowledgements() {
    if (acknowledged_.empty()) return;
    spool_.remove(acknowledged_);
    acknowledged_.clear();
    std::lock_guard lock(delivered_mutex_);
    delivered_.notify_all();
}

void MqttPublisher::on_connect(mosquitto* client, void* self_pointer, int result) {
    auto& self = *static_cast<MqttPublisher*>(self_pointer);
    if (result != 0) {
        self.refused_ = result;
        return;
    }
    self.connected_ = true;
    self.backoff_ = std::chrono::milliseconds(1000);
    self.log_.info("connected to " + self.broker_name() + " as '" + self.settings_.client_id + "'; " +
                   std::to_string(self.spool_.size()) + " messages waiting in the spool");
    const std::string online = self.status_payload(true);
    mosquitto_publish(client, nullptr, self.settings_.status_topic.c_str(), static_cast<int>(online.size()),
                      online.data(), 1, true);
    // All topics in one SUBSCRIBE, so that one acknowledgement (on_subscribe) says the node hears them all.
    std::vector<char*> topics;
    for (std::string& topic : self.settings_.subscriptions) topics.push_back(topic.data());
    if (topics.empty()) return;
    const int rc =
        mosquitto_subscribe_multiple(client, nullptr, static_cast<int>(topics.size()), topics.data(), 1, 0, nullptr);
    if (rc != MOSQ_ERR_SUCCESS) self.log_.error(std::string("cannot subscribe: ") + mosquitto_reason(rc));
}

void MqttPublisher::on_subscribe(mosquitto*, void* self_pointer, int, int count, const int* granted_qos) {
    auto& self = *static_cast<MqttPublisher*>(self_pointer);
    const std::vector<std::string>& topics = self.settings_.subscriptions;
    std::string heard, refused;
    for (int i = 0; i < count && i < static_cast<int>(topics.size()); ++i) {  // granted_qos is in the topics' order
        std::string& list = granted_qos[i] <= 2 ? heard : refused;           // 0x80: refused
        list += (list.empty() ? "" : ", ") + topics[i];
    }
    if (!heard.empty()) self.log_.info("subscribed to " + heard);
    if (!refused.empty()) self.log_.error("the broker refused the subscriptions to " + refused);
}

void MqttPublisher::on_message(mosquitto*, void* self_pointer, const mosquitto_message* message) {
    auto& self = *static_cast<MqttPublisher*>(self_pointer);
    std::lock_guard lock(self.handler_mutex_);
    if (!self.on_message_ || message->topic == nullptr || message->payloadlen < 0) return;
    try {  // nothing may unwind through libmosquitto's C frames
        self.on_message_(message->topic, std::string(static_cast<const char*>(message->payload),
                                                     static_cast<std::size_t>(message->payloadlen)));
    } catch (const std::exception& e) {
        self.log_.error(std::string("message on ") + message->topic + " dropped: " + e.what());
    }
}

void MqttPublisher::on_disconnect(mosquitto*, void* self_pointer, int result) {
    if (result != 0) static_cast<MqttPublisher*>(self_pointer)->lost_ = true;
}

void MqttPublisher::on_publish(mosquitto*, void* self_pointer, int message_id) {
    auto& self = *static_cast<MqttPublisher*>(self_pointer);
    if (message_id == self.goodbye_message_) self.goodbye_message_ = -1;
    const auto it = self.in_flight_.find(message_id);
    if (it == self.in_flight_.end()) return;
    self.acknowledged_.push_back(it->second);
    self.in_flight_.erase(it);
}

void MqttPublisher::say_goodbye() {
    if (client_ && connected_) {
        int message_id = -1;
        const std::string offline = status_payload(false);
        if (mosquitto_publish(client_, &message_id, settings_.status_topic.c_str(), static_cast<int>(offline.size()),
                              offline.data(), 1, true) == MOSQ_ERR_SUCCESS) {
            goodbye_message_ = message_id;
            const auto deadline = Clock::now() + kGoodbyeTimeout;
            while (goodbye_message_ >= 0 && !lost_ && Clock::now() < deadline) {
                const int socket = mosquitto_socket(client_);
                pollfd fd{socket, static_cast<short>(POLLIN | (mosquitto_want_write(client_) ? POLLOUT : 0)), 0};
                if (::poll(&fd, 1, 100) > 0 && (fd.revents & (POLLIN | POLLERR | POLLHUP)) &&
                    mosquitto_loop_read(client_, 1) != MOSQ_ERR_SUCCESS)
                    break;
                if (mosquitto_want_write(client_) && mosquitto_loop_write(client_, 1) != MOSQ_ERR_SUCCESS) break;
            }
            try {
                apply_acknowledgements();
            } catch (const Error& e) {
                log_.error(e.what());
            }
        }
        mosquitto_disconnect(client_);
        mosquitto_loop_write(client_, 1);
        log_.info("disconnected from " + broker_name());
    }
    if (client_) mosquitto_destroy(client_);
    client_ = nullptr;
    connected_ = false;
}

}  // namespace edgeqc
