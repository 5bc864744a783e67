// posix_spawnp wrapper.
#include "data/synth/process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

extern char** environ;

namespace hallo::synth {

int run_program(const std::vector<std::string>& args, const std::string& install_hint) {
  if (args.empty() || args[0].empty()) fail("run_program: no program given");
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) fail_at(args[0], "cannot run ({}); {}", std::strerror(rc), install_hint);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) fail_at(args[0], "waitpid failed: {}", std::strerror(errno));
  }
  if (WIFEXITED(status)) {
    // A child that could not exec reports 127 on some libcs instead of rc above.
    if (WEXITSTATUS(status) == 127) fail_at(args[0], "program not found; {}", install_hint);
    return WEXITSTATUS(status);
  }
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

}  // namespace hallo::synth
