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

// Every input file and its fate before any decoding: folders are searched recursively
// (sorted), .txt/.lst files list paths. Video-extension files are videos; any other
// file is probed and is a video when it has a video stream; the rest are skipped with
// why: "hidden file", "system file", "no video stream" (audio-only), "not a media file".
// A file reached twice (two inputs naming it) counts once.
struct InputFiles {
  std::vector<std::filesystem::path> videos;
  std::vector<std::pair<std::filesystem::path, std::string>> skipped;  // file, why
};
InputFiles collect_inputs(const std::vector<std::filesystem::path>& inputs);

PrepareReport run_prepare(const PrepareOptions& opts);

}  // namespace hallo::data
