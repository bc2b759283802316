// Log lines and timestamps. One fprintf per line: stdio locks the stream, so lines from threads never interleave.
#include "edge/event_log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

#include "engine/error.hpp"

namespace edgeqc {

LogLevel parse_log_level(const std::string& name) {
    if (name == "debug") return LogLevel::Debug;
    if (name == "info") return LogLevel::Info;
    if (name == "warn") return LogLevel::Warn;
    if (name == "error") return LogLevel::Error;
    throw Error("log level '" + name + "' is not one of debug, info, warn, error");
}

std::string utc_timestamp() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[64];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                  utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(millis));
    return text;
}

void EventLog::log(LogLevel level, const std::string& message) const {
    if (level < threshold_) return;
    static const char* const kNames[] = {"debug", "info", "warn", "error"};
    std::fprintf(stderr, "%s %s %s\n", utc_timestamp().c_str(), kNames[static_cast<int>(level)], message.c_str());
}

}  // namespace edgeqc
