// `hallo eval`'s evaluator on synthetic talking heads: paired metrics of identical
// and shifted videos, the planted audio offset and a shuffled-audio control, missing
// weights reported by name while the other metrics run, and FID / FVD / Sync end to
// end on the metric goldens' procedural weights with the real-set cache.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>

#include "core/error.h"
#include "data/synth/synth.h"
#include "eval/evaluator.h"
#include "eval/face_track.h"
#include "eval/lipsync.h"
#include "eval/nets/hash24.h"
#include "eval/sync_video.h"
#include "media/audio_reader.h"
#include "media/video_reader.h"
#include "media/video_writer.h"
#include "model/io/safetensors.h"
#include "model/io/hf_config.h"
#include "synth_test_util.h"

namespace hallo::eval {
namespace {

namespace fs = std::filesystem;
using synth::testing::shared_analyzer;
using synth::testing::small_config;

std::vector<cv::Mat> frames_of(const fs::path& video) {
  std::vector<cv::Mat> out;
  for (const auto& f : media::read_video(video)) out.push_back(cv::Mat(f.height, f.width, CV_8UC3, (void*)f.rgb.data()).clone());
  return out;
}

// The clip's frames translated by (dx, dy) pixels (edges replicated), with its audio.
void write_shifted(const fs::path& src, const fs::path& dst, float dx, float dy) {
  const auto frames = frames_of(src);
  media::EncodeOptions eo;
  eo.preset = "veryfast";
  media::VideoWriter w(dst, frames[0].cols, frames[0].rows, eo);
  const cv::Mat m = (cv::Mat_<double>(2, 3) << 1, 0, dx, 0, 1, dy);
  for (const auto& f : frames) {
    cv::Mat s;
    cv::warpAffine(f, s, m, f.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
    w.write_rgb(s.data);
  }
  w.set_audio_file(src);
  w.close();
}

// Frames to an mp4, with the audio of `audio_src` (none: no audio stream).
void write_video(const std::vector<cv::Mat>& frames, const fs::path& dst, const fs::path& audio_src = {}) {
  media::EncodeOptions eo;
  eo.preset = "veryfast";
  media::VideoWriter w(dst, frames[0].cols, frames[0].rows, eo);
  for (const auto& f : frames) w.write_rgb(f.data);
  if (!audio_src.empty()) w.set_audio_file(audio_src);
  w.close();
}

void write_hash24_weights(const fs::path& dir, const std::vector<std::pair<std::string, std::string>>& nets) {
  const fs::path golden(HALLO_GOLDEN_DIR);
  for (const auto& [name, file] : nets) {
    const auto cfg = io::load_json_file(golden / (name + ".config.json"));
    io::write_safetensors(dir / file, hash24_state_dict(cfg["_harness"], name).weights().tensors);
  }
}

bool has_error(const nlohmann::json& rep, const std::string& video, const std::string& metric) {
  for (const auto& e : rep["errors"])
    if (e["metric"] == metric && e["video"].get<std::string>().find(video) != std::string::npos) return true;
  return false;
}

// real/clip.mp4 (synth clip a), gen_same/clip.mp4 (a copy), gen_shift/clip.mp4 (a moved 6 px
// right), gen_other/other.mp4 (clip b): built once per test process.
struct Sets {
  synth::testing::TempDir dir;
  synth::SynthResult a, b;
  fs::path real, same, shift, other;
  Sets() {
    synth::Synthesizer s(small_config(dir.path() / "synth", 21, 3.0));
    a = s.make(0);
    b = s.make(1);
    real = dir.path() / "real", same = dir.path() / "gen_same", shift = dir.path() / "gen_shift", other = dir.path() / "gen_other";
    for (const auto& d : {real, same, shift, other}) fs::create_directories(d);
    fs::copy_file(a.video, real / "clip.mp4");
    fs::copy_file(a.video, same / "clip.mp4");
    write_shifted(a.video, shift / "clip.mp4", 6, 0);
    fs::copy_file(b.video, other / "other.mp4");
  }
};
const Sets& sets() {
  static Sets s;
  return s;
}

EvalOptions options(std::vector<std::string> metrics) {
  EvalOptions o;
  o.metrics = std::move(metrics);
  o.quiet = true;
  return o;
}

TEST(Evaluator, IdenticalVideosScorePerfectly) {
  REQUIRE_SYNTH_PREREQUISITES();
  const auto& s = sets();
  const auto rep = evaluate({s.same / "clip.mp4"}, {s.real / "clip.mp4"}, options({"lmd", "psnr", "ssim", "lipsync"}));
  ASSERT_EQ(rep["videos"].size(), 1u);
  const auto& row = rep["videos"][0];
  EXPECT_EQ(row["frames"].get<int>(), 75);
  EXPECT_DOUBLE_EQ(row["lmd_mouth"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(row["lmd_face"].get<double>(), 0.0);
  EXPECT_NEAR(row["ssim"].get<double>(), 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(row["psnr"].get<double>(), 100.0) << "identical frames: PSNR capped at 100 dB";
  EXPECT_GT(row["lipsync_corr"].get<double>(), 0.7);
  EXPECT_TRUE(rep["errors"].empty()) << rep["errors"].dump();
  const std::string md = markdown_report(rep);
  EXPECT_NE(md.find("| clip.mp4 | 75 |"), std::string::npos) << md;
  EXPECT_NE(md.find("LMD mouth"), std::string::npos) << md;
}

TEST(Evaluator, ShiftedVideoHasTheShiftAsLandmarkDistance) {
  REQUIRE_SYNTH_PREREQUISITES();
  const auto& s = sets();
  const auto rep = evaluate({s.shift / "clip.mp4"}, {s.real / "clip.mp4"}, options({"lmd", "psnr", "ssim"}));
  const auto& row = rep["videos"][0];
  // dlib rounds landmarks to whole pixels and the re-encode adds noise: 6 +- 1.5 px.
  EXPECT_NEAR(row["lmd_face"].get<double>(), 6.0, 1.5);
  EXPECT_NEAR(row["lmd_mouth"].get<double>(), 6.0, 1.5);
  EXPECT_LT(row["ssim"].get<double>(), 0.95);
  EXPECT_GT(row["psnr"].get<double>(), 10.0);
  EXPECT_LT(row["psnr"].get<double>(), 40.0);
}

TEST(Evaluator, PlantedAudioOffsetIsRecoveredAndShuffledAudioScoresNearZero) {
  REQUIRE_SYNTH_PREREQUISITES();
  const auto& s = sets();
  const auto frames = frames_of(s.a.video);
  const auto mouth = mouth_openings(track_face(frames, shared_analyzer(), 256, s.a.video.string()));
  const auto audio = media::read_audio(s.a.video, {16000});
  LipSyncOptions o;
  const auto own = lipsync_score(mouth, audio, 25, o);
  EXPECT_GT(own.corr, 0.7);
  // The sound 2 frames (80 ms) late: the best lag moves by +2.
  std::vector<float> late(1280, 0.f);
  late.insert(late.end(), audio.begin(), audio.end());
  const auto delayed = lipsync_score(mouth, late, 25, o);
  EXPECT_EQ(delayed.lag - own.lag, 2);
  EXPECT_GT(delayed.corr, 0.7);
  // Control: the audio in 0.4 s blocks in a seeded random order.
  const size_t block = 6400;
  std::vector<size_t> order(audio.size() / block);
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(5));
  std::vector<float> shuffled;
  for (size_t k : order) shuffled.insert(shuffled.end(), audio.begin() + k * block, audio.begin() + (k + 1) * block);
  const auto ctrl = lipsync_score(mouth, shuffled, 25, o);
  EXPECT_LT(ctrl.corr, 0.4);
  EXPECT_LT(ctrl.corr, own.corr - 0.4);
}

TEST(Evaluator, MissingWeightsAreNamedAndTheOtherMetricsStillRun) {
  REQUIRE_SYNTH_PREREQUISITES();
  const auto& s = sets();
  synth::testing::TempDir empty;
  auto o = options({"fid", "fvd", "sync", "csim", "psnr"});
  o.weights_dir = empty.path();
  const auto rep = evaluate({s.same / "clip.mp4"}, {s.real / "clip.mp4"}, o);
  const auto& un = rep["unavailable"];
  EXPECT_NE(un["fid"].get<std::string>().find("pt_inception-2015-12-05-6726825d.pth"), std::string::npos) << un.dump();
  EXPECT_NE(un["fid"].get<std::string>().find("github.com/mseitzer/pytorch-fid"), std::string::npos) << un.dump();
  EXPECT_NE(un["fvd"].get<std::string>().find("i3d_pretrained_400.pt"), std::string::npos) << un.dump();
  EXPECT_NE(un["sync"].get<std::string>().find("syncnet_v2.model"), std::string::npos) << un.dump();
  EXPECT_NE(un["csim"].get<std::string>().find("arcface.onnx"), std::string::npos) << un.dump();
  EXPECT_DOUBLE_EQ(rep["videos"][0]["psnr"].get<double>(), 100.0);  // ran (identical: the cap)
  EXPECT_NE(markdown_report(rep).find("**fid** unavailable"), std::string::npos);
}

TEST(Evaluator, PairingByNameIsEnforcedForPairedMetrics) {
  REQUIRE_SYNTH_PREREQUISITES();
  const auto& s = sets();
  try {
    evaluate({s.other / "other.mp4"}, {s.real / "clip.mp4"}, options({"psnr"}));
    FAIL() << "expected a pairing error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("other.mp4"), std::string::npos) << e.what();
  }
  EXPECT_THROW(evaluate({s.same / "clip.mp4"}, {}, options({"nope"})), Error);
  // Without --real the set metrics are unavailable, per-video ones still run.
  const auto rep = evaluate({s.same / "clip.mp4"}, {}, options({"lipsync", "ssim"}));
  EXPECT_NE(rep["unavailable"]["ssim"].get<std::string>().find("--real"), std::string::npos);
  EXPECT_TRUE(rep["videos"][0].contains("lipsync_corr"));
}

TEST(Evaluator, SyncNetCropsFollowTheFaceAt128AndAt256Pixels) {
  REQUIRE_SYNTH_PREREQUISITES();
  const auto& s = sets();
  const auto big = frames_of(s.a.video);
  std::vector<cv::Mat> small;
  for (const auto& f : big) {
    cv::Mat m;
    cv::resize(f, m, cv::Size(128, 128), 0, 0, cv::INTER_AREA);
    small.push_back(m);
  }
  const at::Tensor cb = syncnet_face_crops(big, track_face(big, shared_analyzer(), 256, "big").boxes, "big");
  const at::Tensor cs = syncnet_face_crops(small, track_face(small, shared_analyzer(), 256, "small").boxes, "small");
  ASSERT_EQ(cb.sizes(), (std::vector<int64_t>{75, 224, 224, 3}));
  ASSERT_EQ(cs.sizes(), cb.sizes());
  // Same face region at both resolutions: the crops agree up to resampling blur.
  const double diff = (cb.to(at::kFloat) - cs.to(at::kFloat)).abs().mean().item<double>();
  EXPECT_LT(diff, 20.0);
  // BGR order: the astronaut's red-free suit/skin means channel 2 (R) dominates channel 0 (B).
  EXPECT_GT(cb.select(3, 2).to(at::kFloat).mean().item<double>(), cb.select(3, 0).to(at::kFloat).mean().item<double>());
}

// FID / FVD / Sync on the metric goldens' procedural weights written as files, and the
// real-set statistics coming back from the cache on the second run, bit for bit.
TEST(Evaluator, FidFvdSyncEndToEndWithTheRealSetCache) {
  REQUIRE_SYNTH_PREREQUISITES();
  const fs::path golden(HALLO_GOLDEN_DIR);
  if (!fs::exists(golden / "fid_inception.config.json")) GTEST_SKIP() << "golden folder absent";
  const auto& s = sets();
  synth::testing::TempDir w;
  write_hash24_weights(w.path(), {{"fid_inception", "fid_inception.safetensors"}, {"i3d", "i3d.safetensors"},
                                  {"syncnet", "syncnet.safetensors"}});
  auto o = options({"fid", "fvd", "sync"});
  o.weights_dir = w.path();
  o.fvd_protocol = "clips16";
  o.cache_dir = w.path() / "cache";
  const auto first = evaluate({s.shift / "clip.mp4"}, {s.real / "clip.mp4"}, o);
  ASSERT_TRUE(first["errors"].empty()) << first["errors"].dump();
  const double fid = first["set"]["fid"]["value"].get<double>(), fvd = first["set"]["fvd"]["value"].get<double>();
  EXPECT_GT(fid, 0.0);
  EXPECT_GT(fvd, 0.0);
  EXPECT_EQ(first["set"]["fid"]["generated_samples"].get<int>(), 75);
  EXPECT_EQ(first["set"]["fvd"]["generated_samples"].get<int>(), 4);  // 75 frames -> 4 clips of 16
  const auto& row = first["videos"][0];
  EXPECT_TRUE(row["sync_c"].is_number());
  EXPECT_TRUE(row["sync_d"].is_number());
  EXPECT_LE(std::abs(row["av_offset"].get<int>()), 15);
  EXPECT_NE(first["set"]["fid"]["real_stats"].get<std::string>().find("computed"), std::string::npos);

  // The second and third runs leave out the metrics they do not check (the full-size
  // networks make each one expensive); the cache key does not depend on the metric list.
  auto o_sets = o;
  o_sets.metrics = {"fid", "fvd"};
  const auto second = evaluate({s.shift / "clip.mp4"}, {s.real / "clip.mp4"}, o_sets);
  EXPECT_NE(second["set"]["fid"]["real_stats"].get<std::string>().find("cache"), std::string::npos);
  EXPECT_NE(second["set"]["fvd"]["real_stats"].get<std::string>().find("cache"), std::string::npos);
  EXPECT_EQ(second["set"]["fid"]["value"].get<double>(), fid);  // same bits
  EXPECT_EQ(second["set"]["fvd"]["value"].get<double>(), fvd);

  // Identical sets: zero distance up to the square root's round-off.
  auto o_fid = o;
  o_fid.metrics = {"fid"};
  const auto same = evaluate({s.same / "clip.mp4"}, {s.real / "clip.mp4"}, o_fid);
  EXPECT_NEAR(same["set"]["fid"]["value"].get<double>(), 0.0, 1e-6 * fid + 1e-9);
}

// Videos the evaluator must survive: no audio stream, no face, an identical frame. The
// other metrics and videos still produce numbers and every failure is listed.
TEST(Evaluator, FailuresAreListedAndEverythingElseIsScored) {
  REQUIRE_SYNTH_PREREQUISITES();
  const auto& s = sets();
  synth::testing::TempDir d;
  fs::create_directories(d.path() / "gen");
  fs::create_directories(d.path() / "real");
  const auto frames = frames_of(s.a.video);
  fs::copy_file(s.a.video, d.path() / "gen" / "clip.mp4");
  write_video(frames, d.path() / "gen" / "silent.mp4");
  std::vector<cv::Mat> gray(frames.size(), cv::Mat(frames[0].size(), CV_8UC3, cv::Scalar(128, 128, 128)));
  write_video(gray, d.path() / "gen" / "noface.mp4", s.a.video);
  for (const char* n : {"clip.mp4", "silent.mp4", "noface.mp4"}) fs::copy_file(s.a.video, d.path() / "real" / n);
  const auto rep = evaluate({d.path() / "gen" / "clip.mp4", d.path() / "gen" / "noface.mp4", d.path() / "gen" / "silent.mp4"},
                            {d.path() / "real" / "clip.mp4", d.path() / "real" / "noface.mp4", d.path() / "real" / "silent.mp4"},
                            options({"lipsync", "lmd", "psnr"}));
  EXPECT_TRUE(has_error(rep, "silent.mp4", "lipsync")) << rep["errors"].dump(1);
  EXPECT_TRUE(has_error(rep, "noface.mp4", "lipsync")) << rep["errors"].dump(1);
  EXPECT_TRUE(has_error(rep, "noface.mp4", "lmd")) << rep["errors"].dump(1);
  EXPECT_FALSE(has_error(rep, "clip.mp4", "lipsync")) << rep["errors"].dump(1);
  ASSERT_EQ(rep["videos"].size(), 3u);
  for (const auto& row : rep["videos"]) EXPECT_TRUE(row["psnr"].is_number()) << row.dump();
  // clip.mp4 is a copy of its real video: every frame identical, PSNR capped at 100 dB.
  EXPECT_DOUBLE_EQ(rep["videos"][0]["psnr"].get<double>(), 100.0);
  EXPECT_EQ(rep["mean"]["psnr_videos"].get<int>(), 3);
  EXPECT_EQ(rep["mean"]["lipsync_corr_videos"].get<int>(), 1);
  EXPECT_NE(markdown_report(rep).find("error(s)"), std::string::npos);
}

// A real video too short for 16-frame clips leaves the FVD real set incomplete: FVD fails
// and caches nothing, FID still runs; an unwritable cache is a warning; one video per set
// cannot give a covariance for the DisCo protocol.
TEST(Evaluator, IncompleteRealSetsAndUnwritableCaches) {
  REQUIRE_SYNTH_PREREQUISITES();
  if (!fs::exists(fs::path(HALLO_GOLDEN_DIR) / "fid_inception.config.json")) GTEST_SKIP() << "golden folder absent";
  const auto& s = sets();
  synth::testing::TempDir d;
  write_hash24_weights(d.path(), {{"fid_inception", "fid_inception.safetensors"}, {"i3d", "i3d.safetensors"}});
  const auto frames = frames_of(s.a.video);
  std::vector<cv::Mat> first(frames.begin(), frames.begin() + 40), ten(frames.begin(), frames.begin() + 10);
  fs::create_directories(d.path() / "gen");
  fs::create_directories(d.path() / "real");
  write_video(first, d.path() / "gen" / "a.mp4");
  write_video(first, d.path() / "real" / "a.mp4");
  write_video(ten, d.path() / "real" / "b.mp4");
  std::ofstream(d.path() / "not_a_dir") << "x";
  auto o = options({"fid", "fvd"});
  o.weights_dir = d.path();
  o.fvd_protocol = "clips16";
  o.cache_dir = d.path() / "not_a_dir" / "cache";  // cannot be created
  const auto rep = evaluate({d.path() / "gen" / "a.mp4"}, {d.path() / "real" / "a.mp4", d.path() / "real" / "b.mp4"}, o);
  EXPECT_TRUE(rep["set"]["fid"]["value"].is_number()) << rep["set"].dump(1);
  EXPECT_EQ(rep["set"]["fid"]["real_samples"].get<int>(), 50);
  ASSERT_TRUE(rep["set"]["fvd"].contains("error")) << rep["set"].dump(1);
  EXPECT_NE(rep["set"]["fvd"]["error"].get<std::string>().find("b.mp4"), std::string::npos);
  EXPECT_TRUE(has_error(rep, "b.mp4", "fvd"));

  o.fvd_protocol = "disco";
  o.cache_dir.clear();
  const auto one = evaluate({d.path() / "gen" / "a.mp4"}, {d.path() / "real" / "a.mp4"}, options({"fvd"}));
  EXPECT_TRUE(one["unavailable"].contains("fvd"));  // no --weights-dir: unavailable, not an error
  EXPECT_TRUE(one["errors"].empty()) << one["errors"].dump();
  auto o2 = options({"fvd"});
  o2.weights_dir = d.path();
  const auto single = evaluate({d.path() / "gen" / "a.mp4"}, {d.path() / "real" / "a.mp4"}, o2);
  ASSERT_TRUE(single["set"]["fvd"].contains("error")) << single["set"].dump(1);
  EXPECT_NE(single["set"]["fvd"]["error"].get<std::string>().find("at least 2"), std::string::npos);
}

}  // namespace
}  // namespace hallo::eval
