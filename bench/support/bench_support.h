#ifndef DISTILL_BENCH_SUPPORT_BENCH_SUPPORT_H_
#define DISTILL_BENCH_SUPPORT_BENCH_SUPPORT_H_

// Measurement helpers shared by the benchmark drivers under bench/.

#include <chrono>
#include <vector>

namespace distill::bench {

using SteadyClock = std::chrono::steady_clock;

// Seconds since `start`.
double SecondsSince(SteadyClock::time_point start);

// User + system CPU time this process has used so far, in seconds; with `include_children`, also that of
// its children that were waited for (a baseline run as a child process).
double ProcessCpuSeconds(bool include_children = false);

// Busy CPU seconds of the whole machine so far (all cores, all processes; steal included), from /proc/stat.
double MachineBusySeconds();

// CPU used since construction, in cores: by this process (and its waited-for children with
// `include_children`) and by the rest of the machine. Benchmark figures mean little when something else
// competes for the cores, so drivers record OtherCores() next to each measurement.
class CpuMeter {
 public:
  explicit CpuMeter(bool include_children = false);
  double OwnCores() const;
  double OtherCores() const;

 private:
  double Wall() const;
  const bool include_children_;
  const SteadyClock::time_point start_;
  const double busy_;
  const double own_;
};

// Waits until other processes have used under 0.1 core for 3 s in a row, or `limit_seconds` passed.
// Returns the seconds waited.
double WaitForIdle(double limit_seconds);

// The p-quantile (p in [0, 1]) of `values` by the nearest-rank method; 0 for no values. Sorts a copy.
double Percentile(std::vector<double> values, double p);

}  // namespace distill::bench

#endif  // DISTILL_BENCH_SUPPORT_BENCH_SUPPORT_H_
