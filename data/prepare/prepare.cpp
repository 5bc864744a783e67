#include "data/prepare/prepare.h"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/global_control.h>
#include <tbb/parallel_pipeline.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <map>
#include <set>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/progress.h"
#include "data/prepare/video_job.h"
#include "data/shard/shard_writer.h"
#include "media/probe.h"

namespace hallo::data {

namespace fs = std::filesystem;

namespace {

const std::set<std::string> kVideoExt = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".flv"};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void append_text(const fs::path& p, const std::string& line) {
  std::FILE* f = std::fopen(p.c_str(), "ab");
  if (!f) fail_at(p.string(), "cannot open the prepare journal for appending");
  const bool ok = std::fwrite(line.data(), 1, line.size(), f) == line.size() && std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  std::fclose(f);
  if (!ok) fail_at(p.string(), "failed to write the prepare journal");
}

void append_journal(const fs::path& p, const nlohmann::json& j) { append_text(p, j.dump() + "\n"); }

// One journal line per committed video. A torn last line (kill mid-write) is ignored.
std::map<std::string, nlohmann::json> read_journal(const fs::path& p) {
  std::map<std::string, nlohmann::json> out;
  std::string text;
  {
    std::ifstream in(p, std::ios::binary);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    try {
      auto j = nlohmann::json::parse(line);
      if (!j.contains("key") || !j.contains("clip_ids") || !j.at("clip_ids").is_array()) throw std::runtime_error("");
      out[j.at("key").get<std::string>()] = j;
    } catch (const std::exception&) {
      spdlog::warn("{}: ignoring an incomplete journal line", p.string());
    }
  }
  // A kill mid-append leaves a torn last line: end it so the next entry starts cleanly.
  if (!text.empty() && text.back() != '\n') append_text(p, "\n");
  return out;
}


struct Item {
  size_t index = 0;
  fs::path video;
  std::string key;
  bool cached = false;            // finished in an earlier run
  nlohmann::json entry;           // report entry
  PrepareWorker::Result result;
};

nlohmann::json entry_of(const Item& it) {
  const auto& r = it.result;
  return {{"video", r.video},       {"key", it.key},       {"status", r.status},
          {"reason", r.reason},     {"error", r.error},    {"clips", r.clip_ids.size()},
          {"clip_ids", r.clip_ids}, {"seconds", r.seconds}, {"kept_seconds", r.kept_seconds},
          {"rejections", r.rejections}};
}

// Each path relative to the deepest folder holding all of them (file names
// alone when they share one folder).
std::vector<std::string> display_names(const std::vector<fs::path>& files) {
  std::vector<std::string> out;
  if (files.empty()) return out;
  fs::path common = files[0].parent_path();
  for (const auto& f : files) {
    fs::path shared;
    auto a = common.begin();
    const fs::path dir = f.parent_path();
    for (auto b = dir.begin(); a != common.end() && b != dir.end() && *a == *b; ++a, ++b) shared /= *a;
    common = shared;
  }
  for (const auto& f : files) {
    const auto rel = common.empty() ? f : f.lexically_relative(common);
    out.push_back(rel.empty() ? f.string() : rel.string());
  }
  return out;
}

PrepareReport summarise(const std::vector<nlohmann::json>& entries,
                        const std::vector<std::pair<fs::path, std::string>>& skipped, const fs::path& out, double fps) {
  PrepareReport rep;
  nlohmann::json videos = nlohmann::json::array();
  size_t accepted = 0, rejected = 0, errors = 0, clips = 0;
  double secs = 0, kept = 0;
  std::map<std::string, int> video_rejects;
  std::map<std::string, double> segment_reject_seconds;
  for (const auto& e : entries) {
    auto v = e;
    v.erase("clip_ids");
    videos.push_back(v);
    const auto status = e.value("status", "");
    accepted += status == "accepted";
    rejected += status == "rejected";
    errors += status == "error";
    clips += e.value("clips", size_t{0});
    secs += e.value("seconds", 0.0);
    kept += e.value("kept_seconds", 0.0);
    if (status != "accepted") video_rejects[e.value("reason", "error")]++;
    if (e.contains("rejections"))
      for (const auto& r : e["rejections"])
        segment_reject_seconds[r.value("reason", "")] += (r.value("end", 0) - r.value("begin", 0)) / fps;
  }
  nlohmann::json skipped_j = nlohmann::json::array();
  std::map<std::string, int> skipped_by_reason;
  for (const auto& [f, why] : skipped) {
    skipped_j.push_back({{"file", f.string()}, {"status", "skipped"}, {"reason", why}});
    skipped_by_reason[why]++;
  }
  rep.json = {{"videos", videos},
              {"skipped", skipped_j},
              {"totals",
               {{"files", entries.size() + skipped.size()},
                {"videos", entries.size()},
                {"skipped", skipped.size()},
                {"skipped_by_reason", skipped_by_reason},
                {"seconds_rejected", secs - kept},
                {"accepted", accepted},
                {"rejected", rejected},
                {"errors", errors},
                {"clips", clips},
                {"seconds_total", secs},
                {"seconds_kept", kept},
                {"hours_kept", kept / 3600.0},
                {"videos_rejected_by_reason", video_rejects},
                {"segment_seconds_rejected_by_reason", segment_reject_seconds}}}};
  std::string t = fmt::format("hallo prepare -> {}\n", out.string());
  t += fmt::format("files: {} ({} videos: {} accepted, {} rejected, {} errors; {} skipped)\n",
                   entries.size() + skipped.size(), entries.size(), accepted, rejected, errors, skipped.size());
  t += fmt::format("clips: {}; video seconds {:.1f} = kept {:.1f} (in the shards, {:.4f} h) + rejected {:.1f}\n", clips,
                   secs, kept, kept / 3600.0, secs - kept);
  if (!skipped_by_reason.empty()) {
    t += "files skipped (not videos):\n";
    for (const auto& [k, n] : skipped_by_reason) t += fmt::format("  {:<22} {}\n", k, n);
  }
  if (!video_rejects.empty()) {
    t += "videos rejected by reason:\n";
    for (const auto& [k, n] : video_rejects) t += fmt::format("  {:<22} {}\n", k, n);
  }
  if (!segment_reject_seconds.empty()) {
    t += "rejected footage inside videos (seconds):\n";
    for (const auto& [k, s] : segment_reject_seconds) t += fmt::format("  {:<22} {:.1f}\n", k, s);
  }
  // Paths relative to the folder all inputs share: names alone are ambiguous
  // when two input folders hold synth_0000.mp4.
  std::vector<fs::path> files;
  for (const auto& e : entries) files.emplace_back(e.value("video", ""));
  for (const auto& f : skipped) files.push_back(f.first);
  const auto names = display_names(files);
  size_t width = 40;
  for (const auto& n : names) width = std::max(width, n.size() + 1);
  t += "per file:\n";
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    const bool ok = e.value("status", "") == "accepted";
    t += fmt::format("  {:<{}} {:<9} {}\n", names[i], width, e.value("status", ""),
                     ok ? fmt::format("{} clips, {:.2f} of {:.2f} s kept", e.value("clips", size_t{0}),
                                      e.value("kept_seconds", 0.0), e.value("seconds", 0.0))
                        : e.value("reason", ""));
  }
  for (size_t i = 0; i < skipped.size(); ++i)
    t += fmt::format("  {:<{}} {:<9} {}\n", names[entries.size() + i], width, "skipped", skipped[i].second);
  rep.text = t;
  return rep;
}

}  // namespace

namespace {

bool is_system_file(const std::string& name) {
  static const std::set<std::string> kSystem = {"thumbs.db", "desktop.ini", "ehthumbs.db", "icon\r"};
  return kSystem.count(lower(name)) > 0;
}

}  // namespace

InputFiles collect_inputs(const std::vector<fs::path>& inputs) {
  InputFiles out;
  std::set<std::string> seen;
  auto add = [&](const fs::path& p) {
    std::error_code ec;
    const fs::path canon = fs::weakly_canonical(p, ec);
    if (!seen.insert((ec ? p : canon).string()).second) return;
    const std::string name = p.filename().string();
    if (!name.empty() && name[0] == '.') {
      out.skipped.emplace_back(p, "hidden file");
    } else if (is_system_file(name)) {
      out.skipped.emplace_back(p, "system file");
    } else if (kVideoExt.count(lower(p.extension().string()))) {
      out.videos.push_back(p);
    } else {
      // Any other file: a video only if libav finds a video stream in it.
      try {
        const media::MediaInfo info = media::probe(p);
        if (info.has_video) out.videos.push_back(p);
        else out.skipped.emplace_back(p, info.has_audio ? "no video stream" : "not a video");
      } catch (const std::exception&) {
        out.skipped.emplace_back(p, "not a media file");
      }
    }
  };
  for (const auto& in : inputs) {
    if (fs::is_directory(in)) {
      std::vector<fs::path> found;
      for (auto it = fs::recursive_directory_iterator(in); it != fs::recursive_directory_iterator(); ++it) {
        const auto& e = *it;
        const std::string name = e.path().filename().string();
        if (e.is_directory() && !name.empty() && name[0] == '.') {
          it.disable_recursion_pending();  // .git, .cache: reported as one hidden entry
          out.skipped.emplace_back(e.path(), "hidden folder");
          continue;
        }
        if (e.is_regular_file()) found.push_back(e.path());
      }
      std::sort(found.begin(), found.end());
      for (const auto& f : found) add(f);
    } else if (lower(in.extension().string()) == ".txt" || lower(in.extension().string()) == ".lst") {
      std::ifstream f(in);
      if (!f) fail_at(in.string(), "cannot read the video list");
      std::string line;
      while (std::getline(f, line)) {
        while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        fs::path p = line;
        p = p.is_relative() ? in.parent_path() / p : p;
        if (!fs::exists(p)) {
          out.videos.push_back(p);  // reported as "missing file" by the worker, like any bad video
          continue;
        }
        add(p);
      }
    } else if (fs::exists(in)) {
      add(in);
    } else {
      fail_at(in.string(), "no such input file or folder");
    }
  }
  if (out.videos.empty())
    fail_at("prepare", "no input videos found ({} other files skipped; videos are {} files or any file with a video "
                       "stream)", out.skipped.size(), fmt::join(kVideoExt, ", "));
  return out;
}

PrepareReport run_prepare(const PrepareOptions& opts) {
  const auto& cfg = opts.config;
  cfg.validate("prepare config");
  const InputFiles inputs = collect_inputs(opts.inputs);
  const auto& videos = inputs.videos;
  fs::create_directories(opts.out);

  // The settings are part of the dataset: a resume with different ones would mix data.
  const auto cfg_path = opts.out / "prepare_config.json";
  const auto cfg_json = cfg.to_json();
  if (fs::exists(cfg_path)) {
    nlohmann::json old;
    try {
      old = nlohmann::json::parse(std::ifstream(cfg_path));
    } catch (const std::exception& e) {
      fail_at(cfg_path.string(), "unreadable prepare config: {}", e.what());
    }
    // Folders prepared before face.detect_every existed detected faces on every frame.
    if (old.contains("face") && old["face"].is_object() && !old["face"].contains("detect_every"))
      old["face"]["detect_every"] = 1;
    if (old != cfg_json)
      fail_at(cfg_path.string(), "this folder was prepared with different settings; use a new output folder "
                                 "(or the same config to resume)");
  } else {
    write_file_atomic(cfg_path, cfg_json.dump(2) + "\n");
  }

  // Unique, stable keys by input order.
  std::vector<std::string> keys;
  std::set<std::string> used;
  for (const auto& v : videos) {
    const auto base = video_key_for(v);
    std::string k = base;
    for (int n = 2; used.count(k); ++n) k = fmt::format("{}_{}", base, n);
    used.insert(k);
    keys.push_back(k);
  }

  const auto journal_path = opts.out / "prepare_journal.jsonl";
  const auto journal = read_journal(journal_path);
  ShardWriter writer(opts.out, cfg.shards);
  const auto existing = writer.existing_clip_ids();
  // A killed run's parked clips (the writer's lock says no other run owns them).
  if (const int n = ClipSpool::remove_stale(opts.out)) spdlog::info("removed {} stale clip spool file(s) in {}", n, opts.out.string());

  const int jobs = std::max(1, opts.jobs);
  // Videos run in parallel; keep libtorch single-threaded inside each to avoid oversubscription.
  struct TorchThreads {  // restored however the pipeline ends
    int saved = at::get_num_threads();
    ~TorchThreads() { at::set_num_threads(saved); }
  } torch_threads;
  if (jobs > 1) at::set_num_threads(1);
  tbb::global_control gc(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(jobs));
  tbb::enumerable_thread_specific<std::unique_ptr<PrepareWorker>> workers;

  std::vector<nlohmann::json> entries;
  size_t next = 0, committed = 0;
  ProgressBar bar("prepare", videos.size(), " videos");
  tbb::parallel_pipeline(
      static_cast<size_t>(jobs) * 2,
      tbb::make_filter<void, std::shared_ptr<Item>>(
          tbb::filter_mode::serial_in_order,
          [&](tbb::flow_control& fc) -> std::shared_ptr<Item> {
            if (next >= videos.size() || (opts.stop_after >= 0 && next >= static_cast<size_t>(opts.stop_after))) {
              fc.stop();
              return nullptr;
            }
            auto it = std::make_shared<Item>();
            it->index = next;
            it->video = videos[next];
            it->key = keys[next];
            ++next;
            // Finished earlier: accepted or rejected with every clip stored. Errors are retried.
            if (auto j = journal.find(it->key); j != journal.end() && j->second.value("status", "") != "error") {
              bool all = true;
              for (const auto& id : j->second.at("clip_ids")) all = all && existing.count(id.get<std::string>());
              if (all) {
                it->cached = true;
                it->entry = j->second;
              }
            }
            return it;
          }) &
          tbb::make_filter<std::shared_ptr<Item>, std::shared_ptr<Item>>(
              tbb::filter_mode::parallel,
              [&](std::shared_ptr<Item> it) {
                if (it->cached) return it;
                auto& w = workers.local();
                // A model that cannot be loaded fails the whole run, not every video.
                if (!w) w = std::make_unique<PrepareWorker>(cfg);
                try {
                  it->result = w->process(it->video, it->key, existing, opts.out);
                } catch (const std::exception& e) {
                  // Bad data never stops the run: the video is reported with the error.
                  it->result = {};
                  it->result.video = it->video.string();
                  it->result.status = "error";
                  it->result.reason = "error";
                  it->result.error = e.what();
                }
                return it;
              }) &
          tbb::make_filter<std::shared_ptr<Item>, void>(tbb::filter_mode::serial_in_order, [&](std::shared_ptr<Item> it) {
            if (!it->cached) {
              if (it->result.clips)
                it->result.clips->drain([&](const EncodedShardClip& c) {
                  if (!existing.count(c.id)) writer.add_encoded(c);
                });
              it->result.clips.reset();
              it->entry = entry_of(*it);
              append_journal(journal_path, it->entry);
              if (it->result.status != "accepted") {
                // Media errors already start with the path; say it once.
                std::string why = it->result.error.empty() ? it->result.reason : it->result.error;
                const std::string prefix = it->video.string() + ": ";
                if (why.rfind(prefix, 0) == 0) why = why.substr(prefix.size());
                spdlog::info("{}: {} ({})", it->video.string(), it->result.status, why);
              }
            }
            entries.push_back(it->entry);
            ++committed;
            bar.advance();
          }));
  if (opts.stop_after >= 0 && committed < videos.size()) {
    // Simulated kill: leave the writer unfinished (its open shard is discarded).
    bar.finish();
    return summarise(entries, inputs.skipped, opts.out, cfg.fps);
  }
  writer.finish();
  bar.finish();
  auto rep = summarise(entries, inputs.skipped, opts.out, cfg.fps);
  write_file_atomic(opts.out / "prepare_report.json", rep.json.dump(2) + "\n");
  write_file_atomic(opts.out / "prepare_report.txt", rep.text);
  return rep;
}

}  // namespace hallo::data
