// The edge node's log: one line per event on stderr, "<UTC time> <level> <message>", from any thread; lines below
// the chosen level are left out.
#pragma once

#include <string>

namespace edgeqc {

enum class LogLevel { Debug, Info, Warn, Error };

// "debug", "info", "warn" or "error"; throws Error otherwise.
LogLevel parse_log_level(const std::string& name);

// ISO 8601 UTC with milliseconds, e.g. 2026-12-01T10:30:00.123Z, of the wall clock now.
std::string utc_timestamp();

class EventLog {
public:
    explicit EventLog(LogLevel threshold = LogLevel::Info) : threshold_(threshold) {}
    void log(LogLevel level, const std::string& message) const;
    void debug(const std::string& message) const { log(LogLevel::Debug, message); }
    void info(const std::string& message) const { log(LogLevel::Info, message); }
    void warn(const std::string& message) const { log(LogLevel::Warn, message); }
    void error(const std::string& message) const { log(LogLevel::Error, message); }

private:
    LogLevel threshold_;
};

}  // namespace edgeqc
