#pragma once
// The scalars of a run, one JSON object per step in RUN_DIR/scalars.jsonl (flushed
// every line) and the same values in TensorBoard event files (RUN_DIR/tensorboard).
// A resumed run first drops the lines after the step it resumes from (and a line
// torn by a kill), so the log of a resumed run equals an uninterrupted one.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "trainer/tb_events.h"

namespace hallo::trainer {

class RunLog {
 public:
  // `keep_through_step`: lines with a larger step are removed (-1: start a new log).
  RunLog(const std::filesystem::path& run_dir, int64_t keep_through_step, bool tensorboard = true);
  ~RunLog();
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;

  // `scalars` go to both logs; `extra` (strings, lists) to the JSONL only.
  void write(int64_t step, const std::vector<std::pair<std::string, double>>& scalars,
             const nlohmann::json& extra = nlohmann::json::object());
  const std::filesystem::path& jsonl_path() const { return jsonl_; }

 private:
  std::filesystem::path jsonl_;
  std::FILE* f_ = nullptr;
  std::unique_ptr<EventWriter> tb_;
};

// Lines of a scalars.jsonl (torn or unparsable lines dropped).
std::vector<nlohmann::json> read_run_log(const std::filesystem::path& jsonl);

}  // namespace hallo::trainer
