#include "trainer/run_log.h"

#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"

namespace hallo::trainer {

namespace fs = std::filesystem;

std::vector<nlohmann::json> read_run_log(const fs::path& jsonl) {
  std::vector<nlohmann::json> out;
  std::ifstream in(jsonl);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      auto j = nlohmann::json::parse(line);
      if (j.is_object() && j.contains("step")) out.push_back(std::move(j));
    } catch (const std::exception&) {
      // a line torn by a kill: dropped
    }
  }
  return out;
}

RunLog::RunLog(const fs::path& run_dir, int64_t keep_through_step, bool tensorboard) : jsonl_(run_dir / "scalars.jsonl") {
  fs::create_directories(run_dir);
  if (keep_through_step < 0) {
    write_file_atomic(jsonl_, "");
  } else if (fs::exists(jsonl_)) {
    std::string kept;
    for (const auto& j : read_run_log(jsonl_))
      if (j.at("step").get<int64_t>() <= keep_through_step) kept += j.dump() + "\n";
    write_file_atomic(jsonl_, kept);
  }
  f_ = std::fopen(jsonl_.c_str(), "ab");
  if (!f_) fail_at(jsonl_.string(), "cannot open the scalar log for appending");
  if (tensorboard) tb_ = std::make_unique<EventWriter>(run_dir / "tensorboard");
}

RunLog::~RunLog() {
  if (f_) std::fclose(f_);
}

void RunLog::write(int64_t step, const std::vector<std::pair<std::string, double>>& scalars, const nlohmann::json& extra) {
  nlohmann::json j = {{"step", step}};
  for (const auto& [k, v] : scalars) j[k] = v;
  for (const auto& [k, v] : extra.items()) j[k] = v;
  const std::string line = j.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() || std::fflush(f_) != 0)
    fail_at(jsonl_.string(), "write failed (disk full?)");
  if (tb_) {
    tb_->scalars(step, scalars);
    tb_->flush();
  }
}

}  // namespace hallo::trainer
