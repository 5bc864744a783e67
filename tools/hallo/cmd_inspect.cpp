// hallo inspect FILE|DIR [--json]: what a weights file or folder holds.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>

#include "model/io/hf_config.h"
#include "model/io/weights.h"
#include "tools/hallo/commands.h"

namespace hallo::cli {

namespace {

std::string human_bytes(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.2f} {}", v, units[u]);
}

nlohmann::json to_json(const io::WeightSet& ws) {
  nlohmann::json j;
  j["format"] = ws.format;
  j["source"] = ws.source;
  j["tensor_count"] = ws.tensors.size();
  j["total_bytes"] = ws.total_bytes();
  j["metadata"] = ws.metadata;
  if (!ws.config_json.empty()) j["config"] = io::parse_json_text(ws.config_json, ws.source + "/config.json");
  auto& arr = j["tensors"] = nlohmann::json::array();
  for (const auto& t : ws.tensors)
    arr.push_back({{"name", t.name}, {"dtype", std::string(io::dtype_name(t.dtype))}, {"shape", t.shape}});
  return j;
}

}  // namespace

Command register_inspect(CLI::App& app, const GlobalOptions&) {
  struct Opts {
    std::string path;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("inspect", "List the tensors of a weights file or diffusers/HF folder");
  sub->add_option("path", o->path, ".safetensors, .pth/.ckpt/.bin (torch.save), *.index.json or a folder")
      ->required();
  sub->add_flag("--json", o->json, "print JSON: {format, tensors:[{name,dtype,shape}], ...}");
  return [o]() {
    const io::WeightSet ws = io::open_weights(o->path);
    if (o->json) {
      std::cout << to_json(ws).dump(1) << "\n";
      return 0;
    }
    fmt::print("format:      {}\nsource:      {}\ntensors:     {}\ntotal bytes: {} ({})\n", ws.format, ws.source,
               ws.tensors.size(), ws.total_bytes(), human_bytes(ws.total_bytes()));
    for (const auto& [k, v] : ws.metadata) fmt::print("metadata:    {} = {}\n", k, v);
    if (!ws.config_json.empty()) {
      auto cfg = io::parse_json_text(ws.config_json, ws.source + "/config.json");
      fmt::print("config:      {}\n", cfg.value("_class_name", cfg.value("model_type", std::string("config.json"))));
    }
    size_t w = 4;
    for (const auto& t : ws.tensors) w = std::max(w, t.name.size());
    fmt::print("\n{:<{}}  {:<5}  {}\n", "name", w, "dtype", "shape");
    for (const auto& t : ws.tensors)
      fmt::print("{:<{}}  {:<5}  [{}]\n", t.name, w, io::dtype_name(t.dtype), fmt::join(t.shape, ", "));
    return 0;
  };
}

}  // namespace hallo::cli
