// The edge node's MQTT side, on a thread of its own so that inference never waits for the network. It publishes the
// spool's messages in order (QoS 1 by default) and removes each one once the broker acknowledges it; it keeps a
// retained status topic (online, and offline as the Last Will); when the connection fails or drops it reconnects
// with exponential back-off and sends the spool again from its oldest unacknowledged message, so every message
// arrives at least once and in order. Besides: messages that are only worth sending now (stats, events; not
// spooled), subscribed topics whose messages go to a handler, and a status that can change (a new model).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "edge/event_log.hpp"
#include "edge/spool.hpp"

struct mosquitto;
struct mosquitto_message;

namespace edgeqc {

struct MqttSettings {
    std::string host = "localhost";
    int port = 1883;
    bool tls = false;
    std::string ca_file, cert_file, key_file;  // TLS: the broker's CA; a client certificate and key if it asks
    std::string username, password;
    std::string client_id;  // also the persistent session's name at the broker
    int qos = 1;
    int keepalive_seconds = 30;
    std::chrono::milliseconds max_backoff{30000};
    std::string status_topic;
    std::string online_payload, offline_payload;  // retained on status_topic; offline is also the Last Will
    std::vector<std::string> subscriptions;       // topics subscribed at QoS 1 (commands, models)
};

// Called on the network thread with each message of a subscribed topic; must not block.
using MessageHandler = std::function<void(const std::string& topic, std::string&& payload)>;

// Sets host, port and tls from "mqtt://host[:port]" (port 1883) or "mqtts://host[:port]" (port 8883).
void parse_broker_url(const std::string& url, MqttSettings& settings);

class MqttPublisher {
public:
    MqttPublisher(MqttSettings settings, Spool& spool, const EventLog& log);
    // Publishes the offline status and disconnects (waiting at most 2 s for the broker).
    ~MqttPublisher();
    MqttPublisher(const MqttPublisher&) = delete;
    MqttPublisher& operator=(const MqttPublisher&) = delete;

    // New messages are in the spool.
    void notify();
    // Publishes if connected, else drops it: for figures and events only worth having now.
    void publish_ephemeral(std::string topic, std::string payload, int qos = 0);
    // New retained status payloads (online now; offline as the Last Will from the next connection on).
    void update_status(std::string online_payload, std::string offline_payload);
    // Where messages of the subscribed topics go from now on; an empty handler drops them (set that before what the
    // handler uses goes away). Waits for a call in progress to end.
    void set_message_handler(MessageHandler handler);
    // Waits until the spool is empty (every message acknowledged) or the timeout passes; true when empty.
    bool wait_until_delivered(std::chrono::milliseconds timeout);
    bool connected() const { return connected_; }

private:
    using Clock = std::chrono::steady_clock;

    void run();
    bool start_connecting();
    void service_connection();
    void publish_pending();
    void apply_acknowledgements();
    void drop_connection(LogLevel level, const std::string& why);
    void sleep_until(Clock::time_point when);
    void say_goodbye();
    std::string broker_name() const;
    std::string status_payload(bool online);

    static void on_connect(mosquitto* client, void* self, int result);
    static void on_disconnect(mosquitto* client, void* self, int result);
    static void on_publish(mosquitto* client, void* self, int message_id);
    static void on_message(mosquitto* client, void* self, const mosquitto_message* message);
    static void on_subscribe(mosquitto* client, void* self, int message_id, int count, const int* granted_qos);

    MqttSettings settings_;
    Spool& spool_;
    const EventLog& log_;
    std::mutex handler_mutex_;
    MessageHandler on_message_;
    int wake_fd_ = -1;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> connected_{false};

    // Owned by the network thread alone.
    mosquitto* client_ = nullptr;
    int refused_ = 0;       // the broker's CONNACK code when it refused the connection
    bool lost_ = false;     // the connection dropped inside a libmosquitto call
    Clock::time_point connect_started_;
    Clock::time_point next_attempt_;
    std::chrono::milliseconds backoff_{1000};
    std::int64_t cursor_ = 0;                   // the last spool id handed to libmosquitto on this connection
    std::map<int, std::int64_t> in_flight_;     // libmosquitto message id -> spool id
    std::vector<std::int64_t> acknowledged_;    // spool ids to remove
    int goodbye_message_ = -1;                  // the offline status's message id while shutting down

    struct Ephemeral {
        std::string topic, payload;
        int qos;
        bool retain;
    };
    std::mutex ephemeral_mutex_;
    std::vector<Ephemeral> ephemeral_;  // also guards settings_'s status payloads and status_changed_
    bool status_changed_ = false;

    std::mutex delivered_mutex_;
    std::condition_variable delivered_;
    std::thread thread_;
};

}  // namespace edgeqc
