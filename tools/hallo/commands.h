#pragma once
// Each subcommand registers its options on the shared CLI11 app and returns
// the callback to run. Options and help text live next to the code using them.
#include <CLI/CLI.hpp>

#include <functional>

namespace hallo::cli {

struct GlobalOptions {
  int threads = 0;  // 0: HALLO_THREADS or hardware concurrency
  bool verbose = false;
  bool quiet = false;
};

using Command = std::function<int()>;

Command register_inspect(CLI::App& app, const GlobalOptions& g);
Command register_convert(CLI::App& app, const GlobalOptions& g);
Command register_golden(CLI::App& app, const GlobalOptions& g);
Command register_export(CLI::App& app, const GlobalOptions& g);
Command register_lora(CLI::App& app, const GlobalOptions& g);
#ifdef HALLO_HAVE_MEDIA
// Media/data commands: built only with the optional media libraries.
Command register_audio_features(CLI::App& app, const GlobalOptions& g);
Command register_synth(CLI::App& app, const GlobalOptions& g);
Command register_prepare(CLI::App& app, const GlobalOptions& g);
Command register_train(CLI::App& app, const GlobalOptions& g);
Command register_animate(CLI::App& app, const GlobalOptions& g);
Command register_eval(CLI::App& app, const GlobalOptions& g);
#endif

}  // namespace hallo::cli
