#include "trainer/dist/launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

#include "core/error.h"

namespace hallo::trainer::dist {

namespace {

std::atomic<int> g_forward_signal{0};
void on_signal(int sig) { g_forward_signal.store(sig); }

struct Rank {
  pid_t pid = -1;
  int err_fd = -1;
  std::string partial, last_line;
  bool done = false;
  int status = 0;
};

// Forwards complete lines from `r`'s stderr pipe; keeps the last non-empty one.
void drain(Rank& r, int k, bool final) {
  char buf[4096];
  while (true) {
    const ssize_t n = read(r.err_fd, buf, sizeof buf);
    if (n <= 0) break;
    r.partial.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = r.partial.find('\n')) != std::string::npos) {
      std::string line = r.partial.substr(0, nl);
      r.partial.erase(0, nl + 1);
      if (!line.empty() && line.find_first_not_of(" \r") != std::string::npos) r.last_line = line;
      std::fprintf(stderr, "[rank %d] %s\n", k, line.c_str());
    }
    if (!final) break;
  }
  if (final && !r.partial.empty()) {
    r.last_line = r.partial;
    std::fprintf(stderr, "[rank %d] %s\n", k, r.partial.c_str());
    r.partial.clear();
  }
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with code {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return "ended";
}

}  // namespace

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("cannot open a socket to find a free port: {}", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    fail("cannot find a free TCP port: {}", std::strerror(errno));
  }
  const int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

int launch_local(const LaunchOptions& o) {
  if (o.nproc < 1) fail("--nproc must be >= 1, got {}", o.nproc);
  if (o.args.empty()) fail("launcher: no program to run");
  const int port = free_port();
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const int threads = o.threads_per_rank > 0 ? o.threads_per_rank : std::max(1, static_cast<int>(cores) / o.nproc);
  const char* inherited = std::getenv("HALLO_THREADS");
  spdlog::info("launching {} ranks on 127.0.0.1:{} ({} thread(s) each{})", o.nproc, port,
               o.threads_per_rank > 0 || !inherited ? std::to_string(threads) : std::string(inherited),
               o.threads_per_rank > 0 || !inherited ? "" : ", from HALLO_THREADS");

  struct sigaction sa {}, old_int {}, old_term {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  std::vector<Rank> ranks(static_cast<size_t>(o.nproc));
  // Everything the children need is built before forking (only async-signal-safe calls after).
  std::vector<char*> argv;
  for (const auto& a : o.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::vector<std::string>> envs(static_cast<size_t>(o.nproc));
  for (int k = 0; k < o.nproc; ++k) {
    auto& e = envs[static_cast<size_t>(k)];
    for (char** v = environ; *v; ++v) {
      const std::string s(*v);
      const auto name = s.substr(0, s.find('='));
      if (name == "RANK" || name == "LOCAL_RANK" || name == "WORLD_SIZE" || name == "MASTER_ADDR" || name == "MASTER_PORT")
        continue;
      if (name == "HALLO_THREADS" && o.threads_per_rank > 0) continue;
      e.push_back(s);
    }
    e.push_back("RANK=" + std::to_string(k));
    e.push_back("LOCAL_RANK=" + std::to_string(k));
    e.push_back("WORLD_SIZE=" + std::to_string(o.nproc));
    e.push_back("MASTER_ADDR=127.0.0.1");
    e.push_back("MASTER_PORT=" + std::to_string(port));
    if (o.threads_per_rank > 0 || !std::getenv("HALLO_THREADS")) e.push_back("HALLO_THREADS=" + std::to_string(threads));
  }
  const pid_t launcher_pid = getpid();
  auto abandon = [&](const std::string& why) {
    for (auto& r : ranks)
      if (r.pid > 0) kill(r.pid, SIGKILL);
    fail("launcher: {}", why);
  };
  for (int k = 0; k < o.nproc; ++k) {
    std::vector<char*> envp;
    for (auto& s : envs[static_cast<size_t>(k)]) envp.push_back(s.data());
    envp.push_back(nullptr);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) abandon(fmt::format("pipe failed: {}", std::strerror(errno)));
    const pid_t pid = fork();
    if (pid < 0) abandon(fmt::format("fork failed: {}", std::strerror(errno)));
    if (pid == 0) {
      // Ranks die with the launcher (no unsupervised training, no blocked pipes).
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != launcher_pid) _exit(143);
      dup2(fds[1], STDERR_FILENO);  // dup2 clears close-on-exec on the copy
      if (k != 0) {  // only rank 0 talks on stdout
        const int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, STDOUT_FILENO);
      }
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      execve("/proc/self/exe", argv.data(), envp.data());
      const char msg[] = "cannot start a rank: exec failed\n";
      if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {}
      _exit(127);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    ranks[static_cast<size_t>(k)].pid = pid;
    ranks[static_cast<size_t>(k)].err_fd = fds[0];
  }

  int first_failed = -1;
  int running = o.nproc;
  std::chrono::steady_clock::time_point kill_at{};
  bool stopping = false;
  while (running > 0) {
    if (const int sig = g_forward_signal.exchange(0)) {
      for (auto& r : ranks)
        if (!r.done) kill(r.pid, sig);
    }
    std::vector<pollfd> pfds;
    for (auto& r : ranks)
      if (r.err_fd >= 0) pfds.push_back({r.err_fd, POLLIN, 0});
    if (!pfds.empty()) poll(pfds.data(), pfds.size(), 100);
    else usleep(100000);
    std::vector<int> failed_now;
    for (int k = 0; k < o.nproc; ++k) {
      Rank& r = ranks[static_cast<size_t>(k)];
      if (r.err_fd >= 0) drain(r, k, false);
      if (r.done) continue;
      int status = 0;
      const pid_t w = waitpid(r.pid, &status, WNOHANG);
      if (w != r.pid) continue;
      r.done = true;
      r.status = status;
      --running;
      if (r.err_fd >= 0) {
        drain(r, k, true);
        close(r.err_fd);
        r.err_fd = -1;
      }
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      const bool stopped_by_request = WIFEXITED(status) && (WEXITSTATUS(status) == 130 || WEXITSTATUS(status) == 143);
      if (!ok && !stopped_by_request) failed_now.push_back(k);
    }
    if (!failed_now.empty() && first_failed < 0 && !stopping) {
      // Ranks reaped together: the cause is the one killed by a signal, else one that
      // did not fail because a peer went away.
      first_failed = failed_now.front();
      for (int k : failed_now)
        if (WIFSIGNALED(ranks[static_cast<size_t>(k)].status)) { first_failed = k; break; }
      if (!WIFSIGNALED(ranks[static_cast<size_t>(first_failed)].status))
        for (int k : failed_now)
          if (ranks[static_cast<size_t>(k)].last_line.find("another rank died") == std::string::npos) { first_failed = k; break; }
      const Rank& r = ranks[static_cast<size_t>(first_failed)];
      spdlog::error("rank {} {}; stopping the other ranks. Its last line: {}", first_failed, describe_status(r.status),
                    r.last_line.empty() ? "(none)" : r.last_line);
      for (auto& other : ranks)
        if (!other.done) kill(other.pid, SIGTERM);
      stopping = true;
      kill_at = std::chrono::steady_clock::now() + o.grace;
    }
    if (stopping && running > 0 && std::chrono::steady_clock::now() > kill_at) {
      for (auto& r : ranks)
        if (!r.done) kill(r.pid, SIGKILL);
      kill_at = std::chrono::steady_clock::now() + std::chrono::hours(1);
    }
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (first_failed >= 0) {
    const Rank& r = ranks[static_cast<size_t>(first_failed)];
    fail("rank {} of {} {}; its last line: {}", first_failed, o.nproc, describe_status(r.status),
         r.last_line.empty() ? "(none)" : r.last_line);
  }
  // Every rank ended by itself: rank 0's code (130 / 143 when stopped by a signal).
  const int s0 = ranks.front().status;
  for (const auto& r : ranks)
    if (!(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0)) return WIFEXITED(s0) && WEXITSTATUS(s0) ? WEXITSTATUS(s0) : 1;
  return 0;
}

}  // namespace hallo::trainer::dist
