#include "trainer/checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <regex>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/io/hf_config.h"
#include "model/io/safetensors.h"
#include "model/io/state_dict.h"

namespace hallo::trainer {

namespace fs = std::filesystem;

namespace {

constexpr const char* kManifest = "checkpoint.json";

// Every regular file under `dir`, relative path -> size.
nlohmann::json file_sizes(const fs::path& dir) {
  nlohmann::json files = nlohmann::json::object();
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != kManifest)
      files[fs::relative(e.path(), dir).string()] = static_cast<uint64_t>(e.file_size());
  return files;
}

int64_t step_of(const fs::path& p) {
  static const std::regex re("checkpoint-([0-9]+)");
  std::smatch m;
  const std::string name = p.filename().string();
  return std::regex_match(name, m, re) ? std::stoll(m[1]) : -1;
}

}  // namespace

std::string checkpoint_name(int64_t step) { return fmt::format("checkpoint-{:06d}", step); }

nlohmann::json TrainerState::to_json() const {
  nlohmann::json j = {{"step", step},
          {"data", data},
          {"consecutive_nonfinite", consecutive_nonfinite},
          {"skipped_steps", skipped_steps},
          {"config", config}};
  if (loss_scale.is_object() && !loss_scale.empty()) j["loss_scale"] = loss_scale;
  if (world_size > 1) {
    j["world_size"] = world_size;
    j["data_by_rank"] = data_by_rank;
    if (!bucket_order.empty()) j["bucket_order"] = bucket_order;
  }
  return j;
}

TrainerState TrainerState::from_json(const nlohmann::json& j, const std::string& where) {
  io::JsonFields f(j, where);
  TrainerState s;
  s.step = f.get<int64_t>("step");
  s.data = j.at("data");
  s.consecutive_nonfinite = f.get_or<int>("consecutive_nonfinite", 0);
  s.skipped_steps = f.get_or<int64_t>("skipped_steps", 0);
  s.config = j.value("config", nlohmann::json());
  s.loss_scale = j.value("loss_scale", nlohmann::json::object());
  s.world_size = f.get_or<int>("world_size", 1);
  if (s.world_size > 1) {
    if (!j.contains("data_by_rank")) fail_at(where, "world_size {} but no data_by_rank", s.world_size);
    s.data_by_rank = j.at("data_by_rank").get<std::vector<nlohmann::json>>();
    if (static_cast<int>(s.data_by_rank.size()) != s.world_size)
      fail_at(where, "data_by_rank has {} entries for world_size {}", s.data_by_rank.size(), s.world_size);
    if (j.contains("bucket_order")) s.bucket_order = j.at("bucket_order").get<std::vector<int64_t>>();
  }
  return s;
}

CheckpointStore::CheckpointStore(fs::path dir, int keep, bool cleanup) : dir_(std::move(dir)), keep_(std::max(1, keep)) {
  fs::create_directories(dir_);
  if (!cleanup) return;
  // Leftovers of a killed save: never complete, never read.
  for (const auto& e : fs::directory_iterator(dir_))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) {
      spdlog::warn("removing an incomplete checkpoint left by an interrupted save: {}", e.path().string());
      fs::remove_all(e.path());
    }
}

std::vector<fs::path> CheckpointStore::list() const {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir_))
    if (e.is_directory() && step_of(e.path()) >= 0) out.push_back(e.path());
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) { return step_of(a) < step_of(b); });
  return out;
}

void verify_checkpoint(const fs::path& ckpt) {
  const fs::path m = ckpt / kManifest;
  if (!fs::exists(m)) fail_at(ckpt.string(), "incomplete checkpoint: no {}", kManifest);
  const nlohmann::json j = io::load_json_file(m);
  const auto& want = j.at("files");
  const auto have = file_sizes(ckpt);
  for (const auto& [rel, size] : want.items()) {
    if (!have.contains(rel)) fail_at(ckpt.string(), "incomplete checkpoint: '{}' is missing", rel);
    if (have[rel] != size)
      fail_at(ckpt.string(), "torn checkpoint: '{}' has {} bytes, {} were written", rel, have[rel].get<uint64_t>(),
              size.get<uint64_t>());
  }
}

std::optional<fs::path> CheckpointStore::latest() const {
  auto all = list();
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    try {
      verify_checkpoint(*it);
      return *it;
    } catch (const Error& e) {
      spdlog::warn("skipping {}", e.what());
    }
  }
  return std::nullopt;
}

void CheckpointStore::prune() const {
  // Keep the newest `keep_` complete checkpoints. Torn ones are left alone (never read).
  auto all = list();
  int complete = 0;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    try {
      verify_checkpoint(*it);
    } catch (const Error&) {
      continue;
    }
    if (++complete > keep_) fs::remove_all(*it);
  }
}

fs::path CheckpointStore::save(const CheckpointWrite& w) {
  const fs::path final_dir = dir_ / checkpoint_name(w.state.step);
  const fs::path tmp = dir_ / (checkpoint_name(w.state.step) + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  if (w.write_model) w.write_model(tmp / "model");
  else write_model_folder(tmp / "model", *w.parts, w.trainable->params(), w.stage, w.state.step, w.state.config);

  write_optimizer_state(tmp / "optimizer.safetensors", *w.optimizer);
  if (w.ema) w.ema->save(tmp / "ema.safetensors");

  // RNG: the training stream and libtorch's default CPU generator.
  const at::Tensor cpu = at::detail::getDefaultCPUGenerator().get_state();
  std::vector<io::TensorRecord> rng_recs = {io::from_tensor("train", w.rng->state()), io::from_tensor("torch_cpu", cpu)};
  for (size_t r = 0; r < w.other_train_rng.size(); ++r) {
    rng_recs.push_back(io::from_tensor(fmt::format("train.rank{}", r + 1), w.other_train_rng[r]));
    rng_recs.push_back(io::from_tensor(fmt::format("torch_cpu.rank{}", r + 1), w.other_cpu_rng[r]));
  }
  io::write_safetensors(tmp / "rng.safetensors", rng_recs);

  write_file_atomic(tmp / "trainer_state.json", w.state.to_json().dump(2) + "\n");
  if (w.before_manifest) w.before_manifest(tmp);
  write_file_atomic(tmp / kManifest, nlohmann::json{{"step", w.state.step}, {"files", file_sizes(tmp)}}.dump(2) + "\n");
  if (fs::exists(final_dir)) fs::remove_all(final_dir);  // a re-run of the same step replaces it
  fs::rename(tmp, final_dir);
  prune();
  return final_dir;
}

TrainerState read_trainer_state(const fs::path& ckpt) {
  verify_checkpoint(ckpt);
  const fs::path s = ckpt / "trainer_state.json";
  return TrainerState::from_json(io::load_json_file(s), s.string());
}

LoadedCheckpoint read_checkpoint(const fs::path& ckpt) {
  LoadedCheckpoint c;
  c.dir = ckpt;
  c.state = read_trainer_state(ckpt);
  c.model = read_model_folder(ckpt / "model");
  return c;
}

void write_optimizer_state(const fs::path& file, const AdamW& optimizer) {
  std::vector<io::TensorRecord> recs;
  nlohmann::json steps = nlohmann::json::object();
  for (const auto& [name, st] : optimizer.state()) {
    if (!st.exp_avg.defined()) continue;
    recs.push_back(io::from_tensor("exp_avg/" + name, st.exp_avg));
    recs.push_back(io::from_tensor("exp_avg_sq/" + name, st.exp_avg_sq));
    steps[name] = st.step;
  }
  io::write_safetensors(file, recs, {{"steps", steps.dump()}});
}

void restore_optimizer(const fs::path& ckpt, const std::vector<NamedParam>& params, AdamW& optimizer,
                       const std::vector<bool>* owned) {
  std::vector<fs::path> files{ckpt / "optimizer.safetensors"};
  static const std::regex shard("optimizer\\.rank[0-9]+\\.safetensors");
  for (const auto& e : fs::directory_iterator(ckpt))
    if (std::regex_match(e.path().filename().string(), shard)) files.push_back(e.path());
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < params.size(); ++i) index[params[i].name] = i;
  auto& state = optimizer.mutable_state();
  state.clear();
  for (const auto& file : files) {
    const io::StateDict sd = io::StateDict::open(file);
    const auto& meta = sd.weights().metadata;
    auto it = meta.find("steps");
    if (it == meta.end()) fail_at(file.string(), "no 'steps' metadata");
    const nlohmann::json steps = nlohmann::json::parse(it->second);
    for (const auto& [name, v] : steps.items()) {
      auto pi = index.find(name);
      if (pi == index.end()) fail_at(file.string(), "optimizer state for '{}', which is not a trainable parameter", name);
      if (owned && !(*owned)[pi->second]) continue;  // another rank's shard
      const auto& p = params[pi->second];
      AdamW::ParamState st;
      st.step = v.get<int64_t>();
      st.exp_avg = sd.tensor("exp_avg/" + name).to(p.param.device()).clone();
      st.exp_avg_sq = sd.tensor("exp_avg_sq/" + name).to(p.param.device()).clone();
      if (st.exp_avg.sizes() != p.param.sizes())
        fail_at(file.string(), "optimizer state of '{}' has shape {}, the parameter {}", name,
                c10::str(st.exp_avg.sizes()), c10::str(p.param.sizes()));
      if (state.count(name)) fail_at(file.string(), "optimizer state for '{}' is in two shards", name);
      state[name] = std::move(st);
    }
  }
}

void restore_rng(const fs::path& ckpt, StepRng& rng, int rank) {
  const io::StateDict sd = io::StateDict::open(ckpt / "rng.safetensors");
  const std::string suffix = rank == 0 ? "" : fmt::format(".rank{}", rank);
  rng.set_state(sd.tensor("train" + suffix).clone());
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(sd.tensor("torch_cpu" + suffix).clone());
}

}  // namespace hallo::trainer
