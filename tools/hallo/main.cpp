// `hallo`: one binary, one subcommand per job. Exit codes: 0 ok, 1 error
// (message names the file and problem), 2 usage error.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <map>

#include "core/error.h"
#include "core/runtime.h"
#include "tools/hallo/commands.h"

int main(int argc, char** argv) {
  using namespace hallo::cli;
  CLI::App app{"hallo-cpp: train, run and evaluate Hallo audio-driven portrait animation"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("hallo-cpp 0.1.0"));
  GlobalOptions g;
  app.add_option("--threads", g.threads, "intra-op threads (default: $HALLO_THREADS or all cores)")
      ->check(CLI::PositiveNumber);
  app.add_flag("-v,--verbose", g.verbose, "debug logging");
  app.add_flag("-q,--quiet", g.quiet, "warnings and errors only");

  std::map<CLI::App*, Command> commands;
  auto add = [&](Command (*reg)(CLI::App&, const GlobalOptions&)) {
    const size_t before = app.get_subcommands({}).size();
    Command c = reg(app, g);
    commands[app.get_subcommands({})[before]] = std::move(c);
  };
  add(register_inspect);
  add(register_convert);
  add(register_golden);
  add(register_export);
  add(register_lora);
#ifdef HALLO_HAVE_MEDIA
  add(register_audio_features);
  add(register_prepare);
  add(register_train);
  add(register_animate);
  add(register_eval);
#ifdef HALLO_HAVE_SYNTH
  add(register_synth);
#endif
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help/--version exit 0; every usage error exits 2 whatever CLI11's own code.
    return app.exit(e) == 0 ? 0 : 2;
  }
  // Logs go to stderr so stdout stays machine-readable (inspect --json).
  spdlog::set_default_logger(spdlog::stderr_color_mt("hallo"));
  spdlog::set_pattern("%^[%l]%$ %v");
  spdlog::set_level(g.verbose ? spdlog::level::debug : g.quiet ? spdlog::level::warn : spdlog::level::info);
  const std::string name = app.get_subcommands().front()->get_name();
  try {
    hallo::configure_runtime(g.threads);
    return commands.at(app.get_subcommands().front())();
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (auto nl = msg.find("\nException raised from"); nl != std::string::npos) msg.resize(nl);
    spdlog::error("hallo {}: {}", name, msg);
    return 1;
  }
}
