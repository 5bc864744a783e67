// hallo lora merge BASE [--lora adapters.safetensors] [--scale S] --out OUT
// Folds LoRA adapters into their base weights (W += S * alpha / rank * B A) and drops them:
//   BASE  a run, checkpoint or model folder (its own adapters, when it was trained with
//         a lora: block, or --lora's), or a net weights file (.safetensors / net.pth) with --lora
//   OUT   *.safetensors or *.pth (torch.save zip): the net in net.pth layout;
//         anything else: a model folder like BASE's with the merged net (BASE must be one)
// hallo lora info adapters.safetensors: rank, alpha, adapted modules, size.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <map>

#include "core/error.h"
#include <nlohmann/json.hpp>
#include "model/io/safetensors.h"
#include "model/io/torch_zip_writer.h"
#include "model/nn/lora.h"
#include "tools/hallo/commands.h"
#include "tools/hallo/model_source.h"
#include "trainer/model_folder.h"

namespace hallo::cli {

namespace fs = std::filesystem;

namespace {

bool has_suffix(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

int merge(const std::string& base, const std::string& lora_file, double scale, const std::string& out) {
  const bool to_file = has_suffix(out, ".safetensors") || has_suffix(out, ".pth");
  std::optional<trainer::ModelFolder> folder;
  io::StateDict net;
  nn::LoraConfig own;
  if (fs::is_directory(base)) {  // a run, checkpoint or model folder
    folder = trainer::read_model_folder(resolve_model_source(base, false).model);
    net = trainer::net_state_dict(*folder);
    own = nn::LoraConfig::from_json(folder->net_config.value("lora", nlohmann::json()),
                                    (folder->dir / "net_config.json").string());
  } else {
    if (!fs::exists(base)) fail_at(base, "no such run, model folder or weights file");
    if (!to_file) fail_at(out, "a model folder output needs a model folder (or run) as the base");
    net = io::StateDict::open(base);
  }
  std::vector<io::TensorRecord> recs = net.weights().tensors;
  const size_t before = recs.size();
  double factor = 0;
  std::string from;
  if (!lora_file.empty()) {
    if (own.enabled())
      fail_at(base, "the base already carries LoRA adapters; merge those first (without --lora), then merge {} into "
                    "the result", lora_file);
    const nn::LoraFile f = nn::read_lora(lora_file);
    factor = f.config.scaling() * scale;
    from = lora_file;
    nn::merge_lora(recs, f.adapters, factor, from);
  } else {
    if (!own.enabled()) fail_at(base, "no adapters to merge: the base has none and no --lora was given");
    factor = own.scaling() * scale;
    from = base;
    nn::merge_own_lora(recs, factor, from);
  }
  if (to_file) {
    if (has_suffix(out, ".pth")) {
      io::write_torch_zip(out, recs);
    } else {
      io::write_safetensors(out, recs, {{"format", "pt"}, {"layout", "hallo net.pth"}, {"lora_merged", "true"},
                                        {"lora_scale", fmt::format("{}", scale)}});
    }
  } else {
    if (fs::exists(out)) fail_at(out, "already exists (a merged model folder is written fresh)");
    trainer::ModelFolderParts parts = trainer::parts_of(*folder);
    parts.net_config.erase("lora");
    std::vector<trainer::NamedParam> all;
    for (const auto& r : recs) all.push_back({r.name, io::to_tensor(r)});
    const fs::path tmp = fs::path(out).parent_path() / (fs::path(out).filename().string() + ".tmp-merge");
    fs::remove_all(tmp);
    nlohmann::json tc = folder->manifest.value("train_config", nlohmann::json());
    trainer::write_model_folder(tmp, parts, all, folder->stage, folder->step, tc);
    fs::rename(tmp, out);
  }
  spdlog::info("merged adapters (factor {:.6g}) from {}: {} -> {} tensors -> {}", factor, from, before, recs.size(), out);
  return 0;
}

int info(const std::string& file) {
  const nn::LoraFile f = nn::read_lora(file);
  std::map<std::string, size_t> parts;
  int64_t numel = 0;
  for (const auto& r : f.adapters.weights().tensors) {
    numel += r.numel();
    if (has_suffix(r.name, ".lora_A.weight")) ++parts[r.name.substr(0, r.name.find('.'))];
  }
  fmt::print("{}: rank {}, alpha {:g} (scaling {:g}), {} adapters, {:.3f} M values, {:.2f} MiB\n", file, f.config.rank,
             f.config.alpha, f.config.scaling(), f.adapters.size() / 2, static_cast<double>(numel) / 1e6,
             static_cast<double>(fs::file_size(file)) / (1 << 20));
  for (const auto& [p, n] : parts) fmt::print("  {:<16} {} adapters\n", p, n);
  return 0;
}

}  // namespace

Command register_lora(CLI::App& app, const GlobalOptions&) {
  struct Opts {
    std::string base, lora, out, file;
    double scale = 1.0;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("lora", "LoRA adapters: merge into a net, inspect");
  sub->require_subcommand(1);
  auto* m = sub->add_subcommand("merge", "Fold LoRA adapters into the base weights (a full net without adapters)");
  m->add_option("base", o->base, "run, checkpoint or model folder, or a net weights file")->required();
  m->add_option("--lora", o->lora, "adapter file (default: the base's own adapters)");
  m->add_option("--scale", o->scale, "multiplier on alpha / rank (1: as trained)");
  m->add_option("--out", o->out, "*.safetensors, *.pth (torch.save zip) or a new model folder")->required();
  auto* i = sub->add_subcommand("info", "Rank, alpha and adapted modules of an adapter file");
  i->add_option("file", o->file, "adapter .safetensors")->required();
  return [o, m]() { return m->parsed() ? merge(o->base, o->lora, o->scale, o->out) : info(o->file); };
}

}  // namespace hallo::cli
