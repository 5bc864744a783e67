#include "model/io/weights.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "core/error.h"
#include "model/io/hf_config.h"
#include "model/io/safetensors.h"
#include "model/io/torch_checkpoint.h"

namespace hallo::io {

namespace fs = std::filesystem;

std::string detect_file_format(const fs::path& path) {
  const std::string where = path.string();
  std::error_code ec;
  if (!fs::exists(path, ec)) fail_at(where, "no such file or directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_at(where, "cannot open for reading");
  unsigned char b[9] = {0};
  in.read(reinterpret_cast<char*>(b), 9);
  const auto got = in.gcount();
  if (got == 0) fail_at(where, "empty file: not a weights file");
  if (got >= 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4) return "torch-zip";
  // safetensors before pickle: a header length whose low byte is 0x80 would
  // otherwise look like a pickle PROTO opcode.
  if (got == 9 && b[8] == '{' && b[6] == 0 && b[7] == 0) return "safetensors";
  if (b[0] == 0x80) return "torch-legacy";
  fail_at(where,
          "unrecognised weights format (expected safetensors, a torch.save .pth/.ckpt/.bin, or a "
          "diffusers folder)");
}

namespace {

WeightSet open_file(const fs::path& path) {
  const std::string f = detect_file_format(path);
  if (f == "safetensors") return read_safetensors(path);
  return read_torch_checkpoint(path);
}

// Sharded checkpoints: {"weight_map": {tensor: shard_file}} next to the shards.
WeightSet read_sharded(const fs::path& index_path) {
  const std::string where = index_path.string();
  nlohmann::json idx = load_json_file(index_path);
  auto wm = idx.find("weight_map");
  if (wm == idx.end() || !wm->is_object()) fail_at(where, "missing 'weight_map' object");
  std::map<std::string, std::set<std::string>> by_shard;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it->is_string()) fail_at(where, "weight_map['{}'] is not a file name", it.key());
    const std::string shard = it->get<std::string>();
    if (shard.find('/') != std::string::npos || shard == "..")
      fail_at(where, "weight_map['{}'] names '{}' outside the folder", it.key(), shard);
    by_shard[shard].insert(it.key());
  }
  WeightSet out;
  out.source = where;
  for (const auto& [shard, names] : by_shard) {
    const fs::path sp = index_path.parent_path() / shard;
    if (!fs::exists(sp)) fail_at(where, "shard '{}' listed in weight_map does not exist", shard);
    WeightSet ws = open_file(sp);
    if (out.format.empty()) out.format = ws.format;
    for (const auto& n : names)
      if (!ws.find(n)) fail_at(sp.string(), "tensor '{}' listed in {} is not in this shard", n, index_path.filename().string());
    for (auto& t : ws.tensors) {
      if (!names.count(t.name))
        fail_at(sp.string(), "tensor '{}' is not listed for this shard in {}", t.name, index_path.filename().string());
      out.tensors.push_back(std::move(t));
    }
    for (auto& [k, v] : ws.metadata) out.metadata[k] = v;
  }
  out.sort_by_name();  // also rejects a tensor present in two shards
  return out;
}

}  // namespace

WeightSet read_weights_folder(const fs::path& dir) {
  const std::string where = dir.string();
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  auto pick = [&](auto pred) -> std::vector<fs::path> {
    std::vector<fs::path> r;
    for (const auto& f : files)
      if (pred(f.filename().string())) r.push_back(f);
    return r;
  };
  auto ends = [](const std::string& s, const std::string& suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
  };
  // Prefer safetensors over .bin, the plain file over precision variants
  // (diffusion_pytorch_model.fp16.safetensors), and an index over loose shards.
  const std::vector<std::string> kVariants = {".fp16.", ".bf16.", ".fp32.", ".non_ema."};
  auto is_variant = [&](const std::string& n) {
    for (const auto& v : kVariants)
      if (n.find(v) != std::string::npos) return true;
    return false;
  };
  WeightSet ws;
  bool found = false;
  for (const std::string ext : {".safetensors", ".bin"}) {
    for (bool variant : {false, true}) {
      auto idx = pick([&](const std::string& n) { return ends(n, ext + ".index.json") && is_variant(n) == variant; });
      if (!idx.empty()) {
        if (idx.size() > 1) fail_at(where, "several shard indexes ({}, {}): point at one file", idx[0].filename().string(), idx[1].filename().string());
        ws = read_sharded(idx[0]);
        found = true;
        break;
      }
      auto single = pick([&](const std::string& n) { return ends(n, ext) && is_variant(n) == variant; });
      if (single.size() == 1) {
        ws = open_file(single[0]);
        found = true;
        break;
      }
      if (single.size() > 1)
        fail_at(where, "several weight files ({}, {}) and no *.index.json: point at one file",
                single[0].filename().string(), single[1].filename().string());
    }
    if (found) break;
  }
  if (!found) {
    auto other = pick([&](const std::string& n) { return ends(n, ".pth") || ends(n, ".ckpt") || ends(n, ".pt"); });
    if (other.size() == 1) { ws = open_file(other[0]); found = true; }
  }
  if (!found) fail_at(where, "folder has no weights file (*.safetensors, *.bin or a *.index.json)");
  const fs::path cfg = dir / "config.json";
  if (fs::exists(cfg)) {
    load_json_file(cfg);  // validates it parses, with the file named on error
    std::ifstream in(cfg, std::ios::binary);
    ws.config_json.assign(std::istreambuf_iterator<char>(in), {});
  }
  ws.format = "diffusers(" + ws.format + ")";
  ws.source = where;
  return ws;
}

WeightSet open_weights(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return read_weights_folder(path);
  const std::string name = path.filename().string();
  if (name.size() > 11 && name.compare(name.size() - 11, 11, ".index.json") == 0) return read_sharded(path);
  return open_file(path);
}

}  // namespace hallo::io
