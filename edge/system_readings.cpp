// Readings from /proc and /sys, and nearest-rank percentiles.
#include "edge/system_readings.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

namespace edgeqc {

namespace {

double status_field_mib(const char* field) {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind(field, 0) == 0) return std::stod(line.substr(std::char_traits<char>::length(field))) / 1024.0;
    }
    return 0;
}

}  // namespace

double resident_set_mib() { return status_field_mib("VmRSS:"); }
double peak_resident_set_mib() { return status_field_mib("VmHWM:"); }

std::optional<double> cpu_temperature_celsius() {
    std::ifstream zone("/sys/class/thermal/thermal_zone0/temp");
    long millidegrees = 0;
    if (!(zone >> millidegrees)) return std::nullopt;
    return static_cast<double>(millidegrees) / 1000.0;
}

double percentile(std::vector<double>& values, double q) {
    if (values.empty()) return 0;
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size())));
    const std::size_t index = std::min(values.size() - 1, rank == 0 ? 0 : rank - 1);
    std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index), values.end());
    return values[index];
}

}  // namespace edgeqc
