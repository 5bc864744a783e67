#pragma once
// `hallo prepare`: a folder (or list file) of raw talking-head videos -> HDF5
// training shards + a report. Videos run in parallel (TBB), their clips are
// committed in input order, so a run is reproducible and a resumed run (after
// a kill) writes the same shards as an uninterrupted one.
//
// Files in the output folder: shard-*.h5 + index.json (ShardWriter),
// prepare_config.json (the settings; a resume must use the same), the journal
// prepare_journal.jsonl (one line per finished video: resume state), and
// prepare_report.json / prepare_report.txt.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "data/prepare/prepare_config.h"

namespace hallo::data {

struct PrepareOptions {
  std::vector<std::filesystem::path> inputs;  // folders, video files, or .txt/.lst lists of paths
  std::filesystem::path out;
  PrepareConfig config = PrepareConfig::defaults();
  int jobs = 1;          // videos processed at once
  int stop_after = -1;   // testing: stop (as if killed) after this many videos were committed
};

struct PrepareReport {
  nlohmann::json json;  // {"videos": [...], "totals": {...}}
  std::string text;     // human-readable summary
};

// Expands folders (video extensions, sorted) and list files into video paths.
std::vector<std::filesystem::path> collect_videos(const std::vector<std::filesystem::path>& inputs);

PrepareReport run_prepare(const PrepareOptions& opts);

}  // namespace hallo::data
