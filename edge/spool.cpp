// The spool's SQLite schema and statements. WAL journal with synchronous=NORMAL: a commit survives the process being
// killed at any instant; against power loss the WAL is fsynced in groups, at each checkpoint, and its frame
// checksums make recovery stop at the first torn record instead of reading it.
#include "edge/spool.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <utility>

#include "engine/error.hpp"

namespace edgeqc {

namespace {

// One prepared statement, finalized on scope exit.
class Statement {
public:
    Statement(sqlite3* db, const char* sql) {
        if (sqlite3_prepare_v2(db, sql, -1, &statement_, nullptr) != SQLITE_OK) statement_ = nullptr;
    }
    ~Statement() { sqlite3_finalize(statement_); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    explicit operator bool() const { return statement_ != nullptr; }
    sqlite3_stmt* get() const { return statement_; }

private:
    sqlite3_stmt* statement_ = nullptr;
};

}  // namespace

Spool::Spool(const std::string& folder, std::int64_t max_messages, std::int64_t max_bytes)
    : path_((std::filesystem::path(folder) / "spool.sqlite").string()), max_messages_(max_messages) {
    if (max_messages < 1) throw Error("the spool must hold at least 1 message");
    std::error_code error;
    std::filesystem::create_directories(folder, error);
    if (error) throw Error("cannot create spool folder '" + folder + "': " + error.message());
    const int opened =
        sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    try {  // a failed open still allocates the handle: every way out must close it
        if (opened != SQLITE_OK) fail("cannot open");
        sqlite3_busy_timeout(db_, 5000);
        execute("PRAGMA journal_mode=WAL");
        execute("PRAGMA synchronous=NORMAL");
        if (max_bytes > 0) {
            const std::string pages = std::to_string(std::max<std::int64_t>(max_bytes / 4096, 8));
            execute(("PRAGMA page_size=4096; PRAGMA max_page_count=" + pages).c_str());
        }
        execute("CREATE TABLE IF NOT EXISTS messages(id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
                "payload BLOB NOT NULL)");
        execute("CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL)");
        Statement count(db_, "SELECT COUNT(*) FROM messages");
        if (!count || sqlite3_step(count.get()) != SQLITE_ROW) fail("cannot read");
        size_ = sqlite3_column_int64(count.get(), 0);
    } catch (...) {
        sqlite3_close_v2(db_);
        throw;
    }
}

Spool::~Spool() { sqlite3_close_v2(db_); }

void Spool::fail(const std::string& what) {
    const std::string reason = db_ ? sqlite3_errmsg(db_) : "out of memory";
    throw Error(what + " spool database '" + path_ + "': " + reason);
}

void Spool::execute(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail("cannot use");
}

void Spool::append(const std::vector<SpooledMessage>& messages, std::int64_t last_frame) {
    std::lock_guard lock(mutex_);
    execute("BEGIN IMMEDIATE");
    try {
        Statement insert(db_, "INSERT INTO messages(topic, payload) VALUES(?, ?)");
        if (!insert) fail("cannot write to");
        for (const SpooledMessage& m : messages) {
            sqlite3_bind_text(insert.get(), 1, m.topic.data(), static_cast<int>(m.topic.size()), SQLITE_STATIC);
            sqlite3_bind_blob(insert.get(), 2, m.payload.data(), static_cast<int>(m.payload.size()), SQLITE_STATIC);
            if (sqlite3_step(insert.get()) != SQLITE_DONE) fail("cannot write to");
            sqlite3_reset(insert.get());
        }
        Statement counter(db_, "INSERT OR REPLACE INTO counters(name, value) VALUES('last_frame', ?)");
        if (!counter) fail("cannot write to");
        sqlite3_bind_int64(counter.get(), 1, last_frame);
        if (sqlite3_step(counter.get()) != SQLITE_DONE) fail("cannot write to");
        const std::int64_t excess = size_ + static_cast<std::int64_t>(messages.size()) - max_messages_;
        if (excess > 0) {
            Statement drop(db_, "DELETE FROM messages WHERE id IN (SELECT id FROM messages ORDER BY id LIMIT ?)");
            if (!drop) fail("cannot write to");
            sqlite3_bind_int64(drop.get(), 1, excess);
            if (sqlite3_step(drop.get()) != SQLITE_DONE) fail("cannot write to");
        }
        execute("COMMIT");
        if (excess > 0) dropped_ += static_cast<std::uint64_t>(excess);
        size_ = std::min(size_ + static_cast<std::int64_t>(messages.size()), max_messages_);
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

std::vector<SpooledMessage> Spool::after(std::int64_t after_id, std::size_t limit) {
    std::lock_guard lock(mutex_);
    Statement select(db_, "SELECT id, topic, payload FROM messages WHERE id > ? ORDER BY id LIMIT ?");
    if (!select) fail("cannot read");
    sqlite3_bind_int64(select.get(), 1, after_id);
    sqlite3_bind_int64(select.get(), 2, static_cast<std::int64_t>(limit));
    std::vector<SpooledMessage> messages;
    int rc;
    while ((rc = sqlite3_step(select.get())) == SQLITE_ROW) {
        SpooledMessage m;
        m.id = sqlite3_column_int64(select.get(), 0);
        const auto* topic = reinterpret_cast<const char*>(sqlite3_column_text(select.get(), 1));
        m.topic.assign(topic ? topic : "", static_cast<std::size_t>(sqlite3_column_bytes(select.get(), 1)));
        const auto* payload = static_cast<const char*>(sqlite3_column_blob(select.get(), 2));
        m.payload.assign(payload ? payload : "", static_cast<std::size_t>(sqlite3_column_bytes(select.get(), 2)));
        messages.push_back(std::move(m));
    }
    if (rc != SQLITE_DONE) fail("cannot read");
    return messages;
}

void Spool::remove(const std::vector<std::int64_t>& ids) {
    if (ids.empty()) return;
    std::lock_guard lock(mutex_);
    execute("BEGIN IMMEDIATE");
    try {
        Statement erase(db_, "DELETE FROM messages WHERE id = ?");
        if (!erase) fail("cannot write to");
        std::int64_t removed = 0;
        for (const std::int64_t id : ids) {
            sqlite3_bind_int64(erase.get(), 1, id);
            if (sqlite3_step(erase.get()) != SQLITE_DONE) fail("cannot write to");
            removed += sqlite3_changes(db_);
            sqlite3_reset(erase.get());
        }
        execute("COMMIT");
        size_ -= removed;
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

std::int64_t Spool::size() {
    std::lock_guard lock(mutex_);
    return size_;
}

std::uint64_t Spool::dropped() {
    std::lock_guard lock(mutex_);
    return dropped_;
}

std::int64_t Spool::last_frame() {
    std::lock_guard lock(mutex_);
    Statement select(db_, "SELECT value FROM counters WHERE name = 'last_frame'");
    if (!select) fail("cannot read");
    const int rc = sqlite3_step(select.get());
    if (rc == SQLITE_ROW) return sqlite3_column_int64(select.get(), 0);
    if (rc != SQLITE_DONE) fail("cannot read");
    return 0;
}

}  // namespace edgeqc
