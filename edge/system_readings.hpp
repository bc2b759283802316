// What the edge node reports about itself in its stats: memory, CPU temperature, latency percentiles.
#pragma once

#include <optional>
#include <vector>

namespace edgeqc {

// Resident set size of this process in MiB (VmRSS of /proc/self/status), 0 where unreadable.
double resident_set_mib();
// Peak resident set size (VmHWM) in MiB, 0 where unreadable.
double peak_resident_set_mib();
// The first thermal zone's temperature (/sys/class/thermal/thermal_zone0/temp, the SoC on a Raspberry Pi), if any.
std::optional<double> cpu_temperature_celsius();
// The q-quantile (0..1) of values by the nearest-rank method; values is reordered. 0 for no values.
double percentile(std::vector<double>& values, double q);

}  // namespace edgeqc
