#include "bench/support/bench_support.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <thread>

namespace distill::bench {

double SecondsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

double ProcessCpuSeconds(bool include_children) {
  auto seconds = [](const rusage& usage) {
    auto s = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6; };
    return s(usage.ru_utime) + s(usage.ru_stime);
  };
  rusage self{};
  getrusage(RUSAGE_SELF, &self);
  double total = seconds(self);
  if (include_children) {
    rusage children{};
    getrusage(RUSAGE_CHILDREN, &children);
    total += seconds(children);
  }
  return total;
}

double MachineBusySeconds() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return (user + nice + system + irq + softirq + steal) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

CpuMeter::CpuMeter(bool include_children)
    : include_children_(include_children),
      start_(SteadyClock::now()),
      busy_(MachineBusySeconds()),
      own_(ProcessCpuSeconds(include_children)) {}

double CpuMeter::Wall() const { return std::max(1e-9, SecondsSince(start_)); }

double CpuMeter::OwnCores() const { return (ProcessCpuSeconds(include_children_) - own_) / Wall(); }

double CpuMeter::OtherCores() const {
  const double other = (MachineBusySeconds() - busy_) - (ProcessCpuSeconds(include_children_) - own_);
  return std::max(0.0, other / Wall());
}

double WaitForIdle(double limit_seconds) {
  const auto start = SteadyClock::now();
  int quiet = 0;
  while (quiet < 3 && SecondsSince(start) < limit_seconds) {
    CpuMeter probe;
    std::this_thread::sleep_for(std::chrono::seconds(1));
    quiet = probe.OtherCores() < 0.1 ? quiet + 1 : 0;
  }
  return SecondsSince(start);
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t index =
      std::min(values.size() - 1, static_cast<size_t>(p * static_cast<double>(values.size())));
  return values[index];
}

}  // namespace distill::bench
