#include "trainer/model_folder.h"

#include <ATen/ATen.h>

#include <unistd.h>

#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/io/hf_config.h"
#include "model/io/safetensors.h"

namespace hallo::trainer {

namespace fs = std::filesystem;

namespace {

void write_json(const fs::path& p, const nlohmann::json& j) { write_file_atomic(p, j.dump(2) + "\n"); }

void write_params(const fs::path& file, const std::vector<NamedParam>& params, const std::string& what) {
  std::vector<io::TensorRecord> recs;
  recs.reserve(params.size());
  for (const auto& p : params) recs.push_back(io::from_tensor(p.name, p.param.detach()));
  io::write_safetensors(file, recs, {{"format", "pt"}, {"hallo", what}});
}

// Links a file, or every file of a folder (recursively), into `to`.
void link_tree(const fs::path& from, const fs::path& to) {
  if (fs::is_directory(from)) {
    fs::create_directories(to);
    for (const auto& e : fs::directory_iterator(from)) link_tree(e.path(), to / e.path().filename());
  } else {
    link_or_copy(from, to);
  }
}

}  // namespace

void write_vae_folder(const fs::path& dir, const nlohmann::json& config, const std::vector<NamedParam>& weights) {
  if (fs::exists(dir)) fail_at(dir.string(), "refusing to overwrite an existing folder");
  const fs::path tmp = dir.parent_path() / (dir.filename().string() + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  write_json(tmp / "config.json", config);
  write_params(tmp / "diffusion_pytorch_model.safetensors", weights, "vae");
  fs::rename(tmp, dir);
}

void link_or_copy(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_hard_link(from, to, ec);
  if (!ec) return;
  if (!fs::copy_file(from, to, ec) || ec) fail_at(to.string(), "cannot link or copy {}: {}", from.string(), ec.message());
}

void write_frozen_weights(const fs::path& file, const std::vector<NamedParam>& frozen) {
  write_params(file, frozen, "frozen");
}

void write_model_folder(const fs::path& dir, const ModelFolderParts& parts, const std::vector<NamedParam>& trainable,
                        int stage, int64_t step, const nlohmann::json& train_config) {
  if (fs::exists(dir)) fail_at(dir.string(), "model folder already exists");
  fs::create_directories(dir);
  nlohmann::json weights = nlohmann::json::array();
  if (!parts.frozen_weights.empty()) {
    link_or_copy(parts.frozen_weights, dir / "net.frozen.safetensors");
    weights.push_back("net.frozen.safetensors");
  }
  write_params(dir / "net.trainable.safetensors", trainable, "trainable");
  weights.push_back("net.trainable.safetensors");
  write_json(dir / "net_config.json", parts.net_config);
  nlohmann::json vae = nullptr;
  if (!parts.vae_config.is_null()) {
    fs::create_directories(dir / "vae");
    write_json(dir / "vae" / "config.json", parts.vae_config);
    link_or_copy(parts.vae_weights, dir / "vae" / "diffusion_pytorch_model.safetensors");
    vae = {{"folder", "vae"}};
  }
  nlohmann::json audio = parts.audio;
  if (!parts.wav2vec2.empty()) {
    link_tree(parts.wav2vec2, dir / "audio" / parts.wav2vec2.filename());
    audio["wav2vec2"] = (fs::path("audio") / parts.wav2vec2.filename()).string();
  }
  write_json(dir / "audio.json", audio);
  write_json(dir / kModelManifest, {{"format", "hallo-model"},
                                    {"version", 1},
                                    {"stage", stage},
                                    {"step", step},
                                    {"net", {{"config", "net_config.json"}, {"weights", weights}}},
                                    {"vae", vae},
                                    {"audio", "audio.json"},
                                    {"data", parts.data},
                                    {"train_config", train_config}});
}

bool is_model_folder(const fs::path& dir) { return fs::is_regular_file(dir / kModelManifest); }

ModelFolder read_model_folder(const fs::path& dir) {
  ModelFolder m;
  m.dir = dir;
  const fs::path manifest = dir / kModelManifest;
  if (!fs::exists(manifest)) fail_at(dir.string(), "not a model folder (no {})", kModelManifest);
  m.manifest = io::load_json_file(manifest);
  const std::string where = manifest.string();
  if (m.manifest.value("format", std::string()) != "hallo-model") fail_at(where, "'format' is not 'hallo-model'");
  if (m.manifest.value("version", 0) != 1) fail_at(where, "unsupported model folder version {}", m.manifest.value("version", 0));
  m.stage = m.manifest.value("stage", 0);
  m.step = m.manifest.value("step", int64_t{0});
  const auto& net = m.manifest.at("net");
  m.net_config = io::load_json_file(dir / net.at("config").get<std::string>());
  for (const auto& w : net.at("weights")) {
    const fs::path p = dir / w.get<std::string>();
    if (!fs::exists(p)) fail_at(p.string(), "missing weights file of the model folder");
    m.net_weights.push_back(p);
  }
  if (m.manifest.contains("vae") && !m.manifest.at("vae").is_null())
    m.vae_dir = dir / m.manifest.at("vae").at("folder").get<std::string>();
  if (m.manifest.contains("audio") && m.manifest.at("audio").is_string())
    m.audio = io::load_json_file(dir / m.manifest.at("audio").get<std::string>());
  return m;
}

io::StateDict net_state_dict(const ModelFolder& m) {
  io::WeightSet all;
  all.format = "safetensors";
  all.source = m.dir.string();
  for (const auto& p : m.net_weights) {
    io::StateDict part = io::StateDict::open(p);
    for (const auto& r : part.weights().tensors) {
      if (all.find(r.name)) fail_at(p.string(), "tensor '{}' appears in two weight files of the model folder", r.name);
      all.tensors.push_back(r);
    }
    all.sort_by_name();
  }
  return io::StateDict(std::move(all));
}

ModelFolderParts parts_of(const ModelFolder& m) {
  ModelFolderParts p;
  p.net_config = m.net_config;
  if (!m.vae_dir.empty()) {
    p.vae_config = io::load_json_file(m.vae_dir / "config.json");
    p.vae_weights = m.vae_dir / "diffusion_pytorch_model.safetensors";
  }
  p.audio = m.audio;
  if (m.audio.is_object() && m.audio.contains("wav2vec2")) {
    p.wav2vec2 = m.dir / m.audio.at("wav2vec2").get<std::string>();
    p.audio.erase("wav2vec2");
  }
  p.data = m.manifest.value("data", nlohmann::json::object());
  return p;
}

}  // namespace hallo::trainer
