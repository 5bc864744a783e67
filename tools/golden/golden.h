#pragma once
// Golden runner framework: a golden <name> is <name>.config.json (with a
// `_harness` object), optional <name>.weights.safetensors and
// <name>.io.safetensors holding in.* inputs and out.* / hook.* / rec.* outputs.
// Each component registers a runner that maps the case to the out.* (and, when
// asked, hook.*) tensors it produces; `hallo golden` writes and checks them.
#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "model/io/state_dict.h"

namespace hallo::golden {

struct GoldenCase {
  std::string name;
  std::filesystem::path dir;
  nlohmann::json config;               // NAME.config.json, `_harness` included
  std::optional<io::StateDict> weights;  // NAME.weights.safetensors when present
  std::map<std::string, at::Tensor> io;  // every tensor of NAME.io.safetensors
  bool want_hooks = false;
  bool strict = true;  // false (--non-strict): load what matches, report the rest

  // Loads the golden's weights onto `m` (strict unless --non-strict) and logs the report.
  void load_into(torch::nn::Module& m, std::function<std::string(const std::string&)> rename = {}) const;

  // Metric goldens ship no weights file: their weights come from the config's
  // procedural rule (_harness.weights_rule, hash24) unless NAME.weights.safetensors exists.
  io::StateDict metric_weights() const;

  const at::Tensor& input(const std::string& key) const;  // "in.sample"; throws naming the golden
  bool has(const std::string& key) const { return io.count(key) != 0; }
  // in.<prefix>.0, in.<prefix>.1, ... in order (recorded Python lists).
  std::vector<at::Tensor> input_list(const std::string& prefix) const;
};

using Outputs = std::map<std::string, at::Tensor>;
using Runner = std::function<Outputs(const GoldenCase&)>;
struct Comparison;
// A runner whose goldens need per-tensor tolerances checks them itself.
using Checker = std::function<std::vector<Comparison>(const GoldenCase&, const Outputs&)>;

struct RunnerEntry {
  RunnerEntry(std::string k, std::string w, Runner r, double t = 1e-4, Checker c = {})
      : key(std::move(k)), what(std::move(w)), run(std::move(r)), tol(t), check(std::move(c)) {}
  std::string key;   // matched against the config's _class_name, else the golden name
  std::string what;  // one line for --list
  Runner run;
  double tol;     // max|diff| / max|golden| for float outputs
  Checker check;  // optional: replaces compare() with its own tolerances
};

// Registration happens in golden_registry.cpp (explicit, no static-init magic).
const std::vector<RunnerEntry>& runners();
const RunnerEntry& find_runner(const GoldenCase& c);

GoldenCase load_case(const std::filesystem::path& dir, const std::string& name);

struct Comparison {
  std::string key;
  double max_abs = 0, max_ref = 0, rel = 0;
  bool exact = false;  // integer tensors must match exactly
  bool ok = false;
  std::string note;
};
// The produced tensor for golden output `key` on CPU, or undefined with r.note set
// ("not produced", a shape mismatch). r.key and r.exact are filled in.
at::Tensor produced_for(const std::string& key, const at::Tensor& want, const Outputs& produced, Comparison& r);
// Compares produced out.* tensors with the golden ones (every golden out.* must be
// produced). rel = max|diff| / max|golden|; float tolerance `rel_tol`.
std::vector<Comparison> compare(const GoldenCase& c, const Outputs& produced, double rel_tol);

// Individual runners (one file each).
Outputs run_formats_probe(const GoldenCase& c);
Outputs run_ddim(const GoldenCase& c);
Outputs run_unet2d(const GoldenCase& c);
Outputs run_vae(const GoldenCase& c);
Outputs run_face_locator(const GoldenCase& c);
Outputs run_image_proj(const GoldenCase& c);
Outputs run_audio_proj(const GoldenCase& c);
Outputs run_reference_unet(const GoldenCase& c);
Outputs run_unet3d(const GoldenCase& c);
Outputs run_pipeline(const GoldenCase& c);
Outputs run_wav2vec2(const GoldenCase& c);
Outputs run_train_step(const GoldenCase& c);
std::vector<Comparison> check_train_step(const GoldenCase& c, const Outputs& produced);
// Metric goldens (reference tools run on procedural weights).
Outputs run_fid_inception(const GoldenCase& c);
std::vector<Comparison> check_fid_inception(const GoldenCase& c, const Outputs& produced);
Outputs run_i3d(const GoldenCase& c);
Outputs run_syncnet(const GoldenCase& c);
Outputs run_syncnet_eval_math(const GoldenCase& c);
Outputs run_mfcc(const GoldenCase& c);
Outputs run_frechet(const GoldenCase& c);

}  // namespace hallo::golden
