#pragma once
// Running helper programs (espeak-ng, ffmpeg) without a shell, so arguments
// such as sentence text or paths never need quoting.
#include <string>
#include <vector>

namespace hallo::synth {

// Runs args[0] (looked up in PATH) with stdout/stderr discarded and returns its
// exit status (128 + signal if killed). Throws hallo::Error naming the program,
// with `install_hint` appended, if it cannot be started.
int run_program(const std::vector<std::string>& args, const std::string& install_hint);

}  // namespace hallo::synth
