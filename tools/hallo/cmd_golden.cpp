// hallo golden --dir DIR --name NAME --out OUT.safetensors [--check] [--hooks]:
// run one upstream-generated golden and optionally compare with its outputs.
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <filesystem>

#include "core/error.h"
#include "model/io/safetensors.h"
#include "model/io/state_dict.h"
#include "tools/golden/golden.h"
#include "tools/hallo/commands.h"

namespace hallo::cli {

Command register_golden(CLI::App& app, const GlobalOptions&) {
  struct Opts {
    std::string dir, name, out, weights_out;
    bool check = false, hooks = false, list = false, non_strict = false, verbose_rows = false;
    double tol = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("golden", "Run an upstream golden (NAME.config.json/.weights/.io) and check it");
  sub->add_option("--dir", o->dir, "folder with the golden files (e.g. ../shared/golden)");
  sub->add_option("--name", o->name, "golden name, e.g. sd_unet2d");
  sub->add_option("--out", o->out, "write produced out.* (and hook.*) tensors here (.safetensors)");
  sub->add_option("--weights-out", o->weights_out,
                  "write the golden's weights (the file, or the procedural hash24 set of metric goldens) as .safetensors and exit");
  sub->add_flag("--check", o->check, "compare with the golden out.* tensors; exit 1 beyond tolerance");
  sub->add_flag("--hooks", o->hooks, "also produce hook.* intermediates (compared for information only)");
  sub->add_option("--tol", o->tol, "relative tolerance max|diff|/max|golden| (default: the runner's)");
  sub->add_flag("--list", o->list, "list the supported golden kinds");
  sub->add_flag("--all-rows", o->verbose_rows, "print every compared tensor (default: failures only when there are many)");
  sub->add_flag("--non-strict", o->non_strict, "load matching weights and report missing/unexpected/mis-shaped ones instead of failing");
  return [o]() {
    if (o->list) {
      for (const auto& r : golden::runners()) fmt::print("{:<22} {} (tol {:g})\n", r.key, r.what, r.tol);
      return 0;
    }
    if (o->dir.empty() || o->name.empty()) fail("golden: --dir and --name are required");
    if (!std::filesystem::is_directory(o->dir)) fail_at(o->dir, "no such golden directory");
    golden::GoldenCase c = golden::load_case(o->dir, o->name);
    if (!o->weights_out.empty()) {
      const io::StateDict sd = c.metric_weights();
      io::write_safetensors(o->weights_out, sd.weights().tensors, {{"golden", o->name}});
      fmt::print("{}: {} tensors -> {}\n", o->name, sd.size(), o->weights_out);
      return 0;
    }
    c.want_hooks = o->hooks;
    c.strict = !o->non_strict;
    const auto& runner = golden::find_runner(c);
    golden::Outputs produced = runner.run(c);
    if (!o->out.empty()) {
      std::vector<io::TensorRecord> recs;
      for (const auto& [k, v] : produced) recs.push_back(io::from_tensor(k, v.detach()));
      io::write_safetensors(o->out, recs, {{"golden", o->name}});
    }
    if (!o->check) return 0;
    const double tol = o->tol > 0 ? o->tol : runner.tol;
    auto rows = runner.check ? runner.check(c, produced) : golden::compare(c, produced, tol);
    int bad = 0;
    fmt::print("{:<40} {:>12} {:>12} {:>10}  {}\n", "tensor", "max|diff|", "max|golden|", "rel", "result");
    for (const auto& r : rows) {
      if (!r.ok) ++bad;
      // Long per-parameter lists print failures only (and a count), unless --all-rows.
      const bool per_param =
          r.key.rfind("out.grad.", 0) == 0 || (r.key.rfind("out.updated.", 0) == 0 && r.key != "out.updated.*");
      if (r.ok && per_param && rows.size() > 60 && !o->verbose_rows) continue;
      fmt::print("{:<40} {:>12.3e} {:>12.3e} {:>10.2e}  {}{}\n", r.key, r.max_abs, r.max_ref, r.rel,
                 r.ok ? (r.exact ? "exact" : "ok") : "FAIL", r.note.empty() ? "" : " (" + r.note + ")");
    }
    if (o->hooks) {
      // hook.* (module outputs) and rec.* (recorded pipeline intermediates): informational.
      for (const std::string prefix : {"hook.", "rec."}) {
        golden::GoldenCase part = c;
        part.io.clear();
        for (const auto& [k, v] : c.io)
          if (k.rfind(prefix, 0) == 0) part.io["out." + k.substr(prefix.size())] = v;
        golden::Outputs pp;
        for (const auto& [k, v] : produced)
          if (k.rfind(prefix, 0) == 0) pp["out." + k.substr(prefix.size())] = v;
        for (const auto& r : golden::compare(part, pp, tol))
          fmt::print("{:<40} {:>12.3e} {:>12.3e} {:>10.2e}  {} (informational){}\n", prefix + r.key.substr(4), r.max_abs,
                     r.max_ref, r.rel, r.ok ? "ok" : "DIFF", r.note.empty() ? "" : " " + r.note);
      }
    }
    if (runner.check)
      fmt::print("{}: {} of {} outputs within their tolerances\n", o->name, rows.size() - bad, rows.size());
    else
      fmt::print("{}: {} of {} outputs within tolerance {:g}\n", o->name, rows.size() - bad, rows.size(), tol);
    return bad == 0 ? 0 : 1;
  };
}

}  // namespace hallo::cli
