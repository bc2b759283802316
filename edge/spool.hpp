// Store and forward for the edge node's MQTT messages: each message is written to an SQLite database before it is
// published and deleted once the broker acknowledges it, so a broker outage or a kill -9 loses nothing, and after a
// restart the unacknowledged messages are sent again in their original order. Bounded: beyond max_messages the
// oldest are dropped and counted. The database also keeps the node's frame counter, so frame ids stay unique
// across restarts. Thread-safe: the inference thread appends while the network thread reads and removes.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

struct sqlite3;

namespace edgeqc {

struct SpooledMessage {
    std::int64_t id = 0;  // increases with every message ever appended, never reused
    std::string topic;
    std::string payload;
};

class Spool {
public:
    // Opens or creates folder/spool.sqlite (and the folder). max_bytes > 0 caps the database's size: beyond it an
    // append fails as on a full disk. Throws Error with the reason when it cannot.
    Spool(const std::string& folder, std::int64_t max_messages, std::int64_t max_bytes = 0);
    ~Spool();
    Spool(const Spool&) = delete;
    Spool& operator=(const Spool&) = delete;

    // Appends messages in one transaction (one group commit) and records last_frame as the frame counter.
    // Throws Error when the database cannot be written (a full disk, say); nothing of the call is kept then.
    void append(const std::vector<SpooledMessage>& messages, std::int64_t last_frame);
    // Up to limit messages with ids above after_id, oldest first.
    std::vector<SpooledMessage> after(std::int64_t after_id, std::size_t limit);
    void remove(const std::vector<std::int64_t>& ids);

    std::int64_t size();
    std::uint64_t dropped();      // dropped for the bound since this process opened the spool
    std::int64_t last_frame();    // the frame counter as last recorded (0 for a new spool)
    const std::string& path() const { return path_; }

private:
    void execute(const char* sql);
    [[noreturn]] void fail(const std::string& what);

    std::mutex mutex_;
    std::string path_;
    sqlite3* db_ = nullptr;
    std::int64_t max_messages_;
    std::int64_t size_ = 0;
    std::uint64_t dropped_ = 0;
};

}  // namespace edgeqc
