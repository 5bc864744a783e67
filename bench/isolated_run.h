#pragma once
// Runs one benchmark case in a forked child so its peak RSS (ru_maxrss) is its
// own, and returns {seconds, peak GiB}; seconds < 0 when the child failed or died
// (e.g. killed for memory).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <functional>

namespace hallo::bench {

struct CaseResult {
  double seconds = -1;
  double peak_gib = 0;
  double device_peak_gib = 0;  // what the case set in reported_device_peak_gib() (GPU runs)
};

// A case running on a GPU reports the allocator's peak here (ru_maxrss sees host memory only).
inline double& reported_device_peak_gib() {
  static double v = 0;
  return v;
}

// `body` returns the measured seconds; peak RSS is read after it returns.
inline CaseResult run_isolated(const std::function<double()>& body) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    CaseResult r;
    try {
      r.seconds = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "benchmark case failed: %s\n", e.what());
    }
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    r.peak_gib = static_cast<double>(ru.ru_maxrss) / (1024.0 * 1024.0);
    r.device_peak_gib = reported_device_peak_gib();
    if (write(fds[1], &r, sizeof r) != static_cast<ssize_t>(sizeof r)) _exit(2);
    _exit(0);
  }
  close(fds[1]);
  CaseResult r;
  if (read(fds[0], &r, sizeof r) != static_cast<ssize_t>(sizeof r)) r = {};
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return r;
}

}  // namespace hallo::bench
