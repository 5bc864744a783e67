// hallo prepare end to end on synthetic talking heads and every bad-input kind:
// correct shards (clips, masks, audio frames, metadata), a report with the right
// rejection reasons, resume after a kill, and stage-1/2 batches from the result.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "core/error.h"
#include "data/dataset/samplers.h"
#include "data/prepare/prepare.h"
#include "data/shard/shard_reader.h"
#include "data/synth/synth.h"

namespace hallo::data {
namespace {

namespace fs = std::filesystem;

fs::path temp_root() {
  std::random_device rd;
  return fs::temp_directory_path() / ("hallo_prepare_test_" + std::to_string(rd()));
}

PrepareConfig test_config() {
  auto c = PrepareConfig::defaults();
  c.resolution = 128;
  c.clip_length = 25;
  c.clean.min_segment_s = 1.0;
  c.audio.features.n_mels = 40;
  c.shards.clips_per_shard = 2;
  return c;
}

// 1 s of 16-bit mono silence: an audio-only file.
void write_silent_wav(const fs::path& p, int rate) {
  std::ofstream f(p, std::ios::binary);
  auto u32 = [&](uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { f.write(reinterpret_cast<const char*>(&v), 2); };
  const uint32_t bytes = static_cast<uint32_t>(rate) * 2;
  f << "RIFF";
  u32(36 + bytes);
  f << "WAVEfmt ";
  u32(16), u16(1), u16(1), u32(static_cast<uint32_t>(rate)), u32(static_cast<uint32_t>(rate) * 2), u16(2), u16(16);
  f << "data";
  u32(bytes);
  const std::vector<char> zeros(bytes, 0);
  f.write(zeros.data(), bytes);
}

class PrepareE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(temp_root());
    fs::create_directories(*root_ / "in");
    synth::SynthConfig sc;
    sc.out_dir = *root_ / "in";
    sc.seconds = 3.0;
    sc.size = 384;
    sc.seed = 7;
    try {
      synth::Synthesizer s(sc);
      for (int i = 0; i < 2; ++i) s.make(i);
      s.make_variants(*root_ / "in");
      // Files that are not videos: each must appear in the report with its fate.
      write_silent_wav(*root_ / "in" / "quiet.wav", 16000);
      std::ofstream(*root_ / "in" / "notes.txt") << "not a list: found inside a folder, it is just a file\n";
      std::ofstream(*root_ / "in" / ".DS_Store") << "finder";
    } catch (const Error& e) {
      skip_reason_ = new std::string(e.what());
      return;
    }
    PrepareOptions po;
    po.inputs = {*root_ / "in"};
    po.out = *root_ / "out";
    po.config = test_config();
    po.jobs = 2;
    report_ = new PrepareReport(run_prepare(po));
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (root_) fs::remove_all(*root_, ec);
    delete root_;
    delete report_;
    delete skip_reason_;
  }
  void SetUp() override {
    if (skip_reason_) GTEST_SKIP() << "synthetic data unavailable: " << *skip_reason_;
  }
  static const nlohmann::json& video(const std::string& file) {
    for (const auto& v : report_->json.at("videos"))
      if (fs::path(v.at("video").get<std::string>()).filename() == file) return v;
    throw std::runtime_error("no report entry for " + file);
  }
  static fs::path* root_;
  static PrepareReport* report_;
  static std::string* skip_reason_;
};
fs::path* PrepareE2E::root_ = nullptr;
PrepareReport* PrepareE2E::report_ = nullptr;
std::string* PrepareE2E::skip_reason_ = nullptr;

TEST_F(PrepareE2E, ReportGivesEachVideoItsOutcome) {
  for (const char* good : {"synth_0000.mp4", "synth_0001.mp4", "edge_30fps_44k_stereo.mp4"}) {
    const auto& v = video(good);
    EXPECT_EQ(v.at("status"), "accepted") << v.dump();
    EXPECT_GE(v.at("clips").get<int>(), 2) << good;  // 3 s at 25 fps -> 3 clips of 25 unless trimmed
  }
  const std::map<std::string, std::string> want = {{"bad_truncated.mp4", "unreadable"},
                                                   {"bad_zero.mp4", "empty file"},
                                                   {"bad_truncated_faststart.mp4", "truncated"},
                                                   {"bad_text.mp4", "unreadable"},
                                                   {"bad_noaudio.mp4", "no audio stream"},
                                                   {"bad_noface.mp4", "no face"},
                                                   {"bad_twofaces.mp4", "two faces"},
                                                   {"bad_silent.mp4", "silent"}};
  for (const auto& [file, reason] : want) {
    const auto& v = video(file);
    EXPECT_EQ(v.at("status"), "rejected") << v.dump();
    EXPECT_EQ(v.at("reason"), reason) << file << ": " << v.dump();
    EXPECT_EQ(v.at("clips"), 0) << file;
  }
  const auto& t = report_->json.at("totals");
  EXPECT_EQ(t.at("errors"), 0);
  EXPECT_EQ(t.at("videos_rejected_by_reason").at("unreadable"), 2);  // text, and a cut before the index
  EXPECT_GT(t.at("hours_kept").get<double>(), 0.0);
  EXPECT_TRUE(fs::exists(*root_ / "out" / "prepare_report.json"));
  EXPECT_NE(report_->text.find("two faces"), std::string::npos);
}

TEST_F(PrepareE2E, EveryFileIsReportedOnceAndTheSecondsAddUp) {
  std::map<std::string, std::string> skipped;
  for (const auto& e : report_->json.at("skipped"))
    skipped[fs::path(e.at("file").get<std::string>()).filename().string()] = e.at("reason").get<std::string>();
  EXPECT_EQ(skipped.at("quiet.wav"), "no video stream");
  EXPECT_EQ(skipped.at("notes.txt"), "not a media file");
  EXPECT_EQ(skipped.at(".DS_Store"), "hidden file");
  EXPECT_EQ(skipped.at("synth_0000.json"), "not a media file");  // synth's ground-truth sidecar
  // Every file of the input folder is a video entry or a skipped one, exactly once.
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(*root_ / "in")) files += e.is_regular_file();
  const auto& t = report_->json.at("totals");
  EXPECT_EQ(t.at("files").get<size_t>(), files);
  EXPECT_EQ(t.at("videos").get<size_t>() + t.at("skipped").get<size_t>(), files);
  const auto per_file = report_->text.substr(report_->text.find("per file:"));
  for (const auto& e : fs::recursive_directory_iterator(*root_ / "in")) {
    if (!e.is_regular_file()) continue;
    const std::string name = "  " + e.path().filename().string() + " ";
    const size_t first = per_file.find(name);
    EXPECT_NE(first, std::string::npos) << name;
    EXPECT_EQ(per_file.find(name, first + 1), std::string::npos) << name << " listed twice";
  }
  // Kept seconds are the seconds in the shards; kept + rejected = every video's seconds.
  ShardReader r(*root_ / "out");
  int stored = 0;
  for (size_t i = 0; i < r.size(); ++i) stored += r.index().clips()[i].num_frames;
  EXPECT_NEAR(t.at("seconds_kept").get<double>(), stored / 25.0, 1e-6);
  EXPECT_NEAR(t.at("seconds_kept").get<double>() + t.at("seconds_rejected").get<double>(),
              t.at("seconds_total").get<double>(), 1e-6);
  for (const auto& v : report_->json.at("videos")) {
    if (v.at("status") != "accepted") continue;
    int rejected = 0;
    for (const auto& rj : v.at("rejections")) rejected += rj.at("end").get<int>() - rj.at("begin").get<int>();
    EXPECT_NEAR(v.at("kept_seconds").get<double>() + rejected / 25.0, v.at("seconds").get<double>(), 1.0 / 25 + 1e-9)
        << v.dump();
  }
}

// Clips of at most clip_length frames with the remainder kept: 75-frame videos at
// clip_length 40 give 40 + 35; a 2 s video at the default 64 gives one 50-frame clip the
// stage-2 sampler uses; resume after a kill is unchanged by the variable lengths.
TEST_F(PrepareE2E, RemaindersAreKeptAsShorterClips) {
  PrepareOptions po;
  po.inputs = {*root_ / "in" / "synth_0000.mp4", *root_ / "in" / "synth_0001.mp4"};
  po.out = *root_ / "remainders";
  po.config = test_config();
  po.config.clip_length = 40;
  po.config.min_clip_length = 20;
  const auto rep = run_prepare(po);
  ASSERT_EQ(rep.json.at("totals").at("accepted"), 2) << rep.text;
  ShardReader r(po.out);
  std::map<int, int> lengths;
  int stored = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    const int n = r.read_clip(i, false).num_frames;
    lengths[n]++;
    stored += n;
  }
  EXPECT_EQ(lengths[40], 2) << rep.text;
  int short_clips = 0;
  for (const auto& [n, k] : lengths)
    if (n < 40) {
      EXPECT_GE(n, 20);
      short_clips += k;
    }
  EXPECT_EQ(short_clips, 2) << rep.text;  // one remainder per video
  EXPECT_NEAR(rep.json.at("totals").at("seconds_kept").get<double>(), stored / 25.0, 1e-6);
  // Under the old rule (whole clips only) 17 % of these videos would be lost.
  EXPECT_GT(stored, 2 * 40 + 2 * 20);
  // The stage-2 sampler draws from every clip, long or short.
  SamplerConfig sc;
  sc.n_sample_frames = 14;
  sc.n_motion_frames = 2;
  Stage2Sampler s2(std::make_shared<const ShardReader>(po.out), sc);
  EXPECT_EQ(s2.next(2).frames.size(1), 14);

  // Resume after a kill with remainder clips: the same shards.
  PrepareOptions pk = po;
  pk.out = *root_ / "remainders_killed";
  pk.stop_after = 1;
  run_prepare(pk);
  pk.stop_after = -1;
  run_prepare(pk);
  ShardReader a(po.out), b(pk.out);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a.index().clips()[i].clip_id, b.index().clips()[i].clip_id);
    EXPECT_EQ(a.index().clips()[i].checksum, b.index().clips()[i].checksum);
  }

  // A 2 s video (50 frames) at the default clip_length 64: one clip, usable by stage 2.
  synth::SynthConfig sc2;
  sc2.out_dir = *root_ / "short";
  sc2.seconds = 2.0;
  sc2.size = 256;
  sc2.seed = 3;
  synth::Synthesizer(sc2).make(0);
  PrepareOptions ps;
  ps.inputs = {*root_ / "short"};
  ps.out = *root_ / "short_out";
  ps.config = test_config();
  ps.config.clip_length = 64;
  ps.config.min_clip_length = 20;
  ps.config.clean.min_segment_s = PrepareConfig::defaults().clean.min_segment_s;
  const auto rs = run_prepare(ps);
  ASSERT_EQ(rs.json.at("totals").at("accepted"), 1) << rs.text;
  ShardReader sr(ps.out);
  ASSERT_EQ(sr.size(), 1u) << rs.text;
  EXPECT_GE(sr.read_clip(0, false).num_frames, 45) << rs.text;  // all of it, less any trimmed edge
  Stage2Sampler s2b(std::make_shared<const ShardReader>(ps.out), sc);
  EXPECT_EQ(s2b.next(1).frames.size(1), 14);
}

TEST_F(PrepareE2E, ShardsHoldCorrectClips) {
  ShardReader r(*root_ / "out");
  ASSERT_GE(r.size(), 6u);
  int clips_in_report = 0;
  for (const auto& v : report_->json.at("videos")) clips_in_report += v.at("clips").get<int>();
  EXPECT_EQ(static_cast<int>(r.size()), clips_in_report);
  for (size_t i = 0; i < r.size(); ++i) {
    const auto c = r.read_clip(i);
    SCOPED_TRACE(c.id);
    // Whole 25-frame clips, or a segment's remainder of at least min_clip_length.
    const int n = c.num_frames;
    EXPECT_LE(n, 25);
    EXPECT_GE(n, test_config().min_clip_length);
    EXPECT_EQ(static_cast<int>(c.frames.size()), n);
    EXPECT_EQ(c.height, 128);
    EXPECT_NEAR(c.t_end - c.t_start, n / 25.0, 1e-9);
    // Audio: one feature row per frame, the extractor recorded.
    EXPECT_EQ(c.audio_layers, 1);
    EXPECT_EQ(c.audio_dim, 40);
    EXPECT_EQ(c.audio.size(), size_t(n * 40));
    EXPECT_NE(c.audio_extractor.find("logmel:40"), std::string::npos);
    EXPECT_FALSE(c.face_emb_valid);  // no ArcFace model given
    // Masks: four levels at H/8 .. H/64, consistent with each other.
    ASSERT_EQ(c.lip_masks.size(), 4u);
    for (int l = 0; l < 4; ++l) {
      EXPECT_EQ(c.lip_masks[l].rows, 16 >> l);
      EXPECT_EQ(c.face_masks[l].cols, 16 >> l);
      EXPECT_EQ(c.pose_masks[l].rows, 16 >> l);
    }
    // The hard face box, and the lip mask's peak inside it.
    cv::Rect face = cv::boundingRect(c.face_region);
    ASSERT_GT(face.area(), 0);
    EXPECT_LT(face.area(), 128 * 128);
    cv::Point lip_peak;
    cv::minMaxLoc(c.lip_masks[0], nullptr, nullptr, nullptr, &lip_peak);
    const cv::Point lip_full(lip_peak.x * 8 + 4, lip_peak.y * 8 + 4);
    EXPECT_TRUE(face.contains(lip_full)) << face << " " << lip_full;
    // Lips are in the lower half of the face.
    EXPECT_GT(lip_full.y, face.y + face.height / 2);
    // Landmarks / boxes per frame, inside the frame.
    ASSERT_EQ(c.face_boxes.size(), size_t(n * 4));
    for (int f = 0; f < n; ++f) {
      EXPECT_GE(c.face_boxes[f * 4 + 0], -2.f);
      EXPECT_LE(c.face_boxes[f * 4 + 2], 130.f);
    }
    EXPECT_TRUE(c.meta.contains("scores"));
    std::cerr << c.id << " lip_audio_corr " << c.meta.at("scores").at("lip_audio_corr") << "\n";
    EXPECT_GE(c.meta.at("scores").at("lip_audio_corr").get<double>(), test_config().clean.min_lip_audio_corr);
  }
}

TEST_F(PrepareE2E, SamplersYieldShapedBatches) {
  auto reader = std::make_shared<const ShardReader>(*root_ / "out");
  SamplerConfig sc;
  sc.min_ref_distance = 10;
  sc.n_sample_frames = 8;
  sc.n_motion_frames = 2;
  Stage1Sampler s1(reader, sc);
  auto b1 = s1.next(2);
  EXPECT_EQ(b1.ref_image.sizes(), (std::vector<int64_t>{2, 3, 128, 128}));
  EXPECT_EQ(b1.target_image.sizes(), (std::vector<int64_t>{2, 3, 128, 128}));
  EXPECT_EQ(b1.face_emb.sizes(), (std::vector<int64_t>{2, 512}));
  EXPECT_EQ(b1.lip[3].sizes(), (std::vector<int64_t>{2, 1, 2, 2}));
  EXPECT_LE(b1.ref_image.max().item<float>(), 1.f);
  EXPECT_GE(b1.ref_image.min().item<float>(), -1.f);
  Stage2Sampler s2(reader, sc);
  auto b2 = s2.next(2);
  EXPECT_EQ(b2.frames.sizes(), (std::vector<int64_t>{2, 8, 3, 128, 128}));
  EXPECT_EQ(b2.motion_frames.sizes(), (std::vector<int64_t>{2, 2, 3, 128, 128}));
  EXPECT_EQ(b2.audio.sizes(), (std::vector<int64_t>{2, 8, 5, 1, 40}));
  EXPECT_EQ(b2.face_region.sizes(), (std::vector<int64_t>{2, 1, 128, 128}));
}

TEST_F(PrepareE2E, ResumeAfterKillGivesTheSameShards) {
  const fs::path out = *root_ / "resumed";
  PrepareOptions po;
  po.inputs = {*root_ / "in"};
  po.out = out;
  po.config = test_config();
  po.jobs = 2;
  po.stop_after = 4;  // "killed" after 4 videos, its open shard discarded
  run_prepare(po);
  EXPECT_FALSE(fs::exists(out / "prepare_report.json"));
  po.stop_after = -1;
  auto rep = run_prepare(po);
  // Same clips, same order, same checksums as the uninterrupted run.
  ShardReader a(*root_ / "out"), b(out);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a.index().clips()[i].clip_id, b.index().clips()[i].clip_id);
    EXPECT_EQ(a.index().clips()[i].shard, b.index().clips()[i].shard);
    EXPECT_EQ(a.index().clips()[i].checksum, b.index().clips()[i].checksum);
  }
  EXPECT_EQ(rep.json.at("totals"), report_->json.at("totals"));
  // A different config in the same folder is refused rather than mixed in.
  po.config.resolution = 256;
  EXPECT_THROW(run_prepare(po), Error);
}

// The suite's run tracks faces between detections (face.detect_every = 5, the
// default); detecting on every frame must decide the same: each video's fate,
// every rejected frame range with its reason, the same clips, landmarks within
// a pixel.
TEST_F(PrepareE2E, TrackingBetweenDetectionsDecidesAsPerFrameDetection) {
  ASSERT_EQ(test_config().face.detect_every, 5);
  PrepareOptions po;
  po.inputs = {*root_ / "in"};
  po.out = *root_ / "every_frame";
  po.config = test_config();
  po.config.face.detect_every = 1;
  po.jobs = 2;
  const auto rep = run_prepare(po);
  const auto& a = report_->json.at("videos");
  const auto& b = rep.json.at("videos");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE(a[i].at("video").get<std::string>());
    ASSERT_EQ(a[i].at("video"), b[i].at("video"));
    for (const char* k : {"status", "reason", "clip_ids", "seconds", "kept_seconds"}) EXPECT_EQ(a[i].value(k, nlohmann::json()), b[i].value(k, nlohmann::json())) << k;
    const auto ra = a[i].value("rejections", nlohmann::json::array());
    const auto rb = b[i].value("rejections", nlohmann::json::array());
    ASSERT_EQ(ra.size(), rb.size()) << ra.dump() << " vs " << rb.dump();
    for (size_t j = 0; j < ra.size(); ++j)
      for (const char* k : {"begin", "end", "reason"}) EXPECT_EQ(ra[j].at(k), rb[j].at(k)) << ra[j].dump();
  }
  ShardReader tracked(*root_ / "out"), every(po.out);
  ASSERT_EQ(tracked.size(), every.size());
  double sum = 0, worst = 0;
  size_t points = 0;
  for (size_t i = 0; i < tracked.size(); ++i) {
    const auto ca = tracked.read_clip(i), cb = every.read_clip(i);
    ASSERT_EQ(ca.id, cb.id);
    ASSERT_EQ(ca.landmarks.size(), cb.landmarks.size());
    for (size_t p = 0; p + 1 < ca.landmarks.size(); p += 2) {
      const double d = std::hypot(ca.landmarks[p] - cb.landmarks[p], ca.landmarks[p + 1] - cb.landmarks[p + 1]);
      sum += d;
      worst = std::max(worst, d);
      ++points;
    }
  }
  ASSERT_GT(points, 0u);
  EXPECT_LT(sum / points, 0.3) << "mean landmark distance in 128 px clip pixels (measured 0.11)";
  EXPECT_LT(worst, 3.0) << "measured 1.37";
  std::cerr << "landmarks tracked vs every frame: mean " << sum / points << " px, worst " << worst << " px\n";
}

// The model-backed options: wav2vec2 features, ArcFace embeddings, VAE latents,
// with the tiny upstream goldens and a seeded ArcFace stand-in.
TEST_F(PrepareE2E, ModelBackedFeaturesEmbeddingsAndLatents) {
  const fs::path golden = HALLO_GOLDEN_DIR;
  if (!fs::exists(golden / "wav2vec2.weights.safetensors") || !fs::exists(golden / "vae.weights.safetensors"))
    GTEST_SKIP() << "goldens absent";
  const fs::path arcface = *root_ / "tiny_arcface.onnx";
  const std::string gen = std::string("/usr/bin/python3 ") + HALLO_SOURCE_DIR + "/tests/face/make_tiny_arcface.py export " +
                          arcface.string() + " >/dev/null 2>&1";
  if (std::system(gen.c_str()) != 0) GTEST_SKIP() << "/usr/bin/python3 with torch unavailable";
  // VAE config beside its weights, as in a diffusers folder.
  fs::create_directories(*root_ / "vae");
  fs::copy_file(golden / "vae.weights.safetensors", *root_ / "vae" / "diffusion_pytorch_model.safetensors");
  fs::copy_file(golden / "vae.config.json", *root_ / "vae" / "config.json");

  PrepareOptions po;
  po.inputs = {*root_ / "in" / "synth_0000.mp4"};
  po.out = *root_ / "models";
  po.config = test_config();
  po.config.arcface_onnx = arcface.string();
  po.config.vae = (*root_ / "vae").string();
  po.config.audio.features.extractor = "wav2vec2";
  po.config.audio.features.wav2vec2_path = (golden / "wav2vec2.weights.safetensors").string();
  po.config.audio.features.wav2vec2_config = (golden / "wav2vec2.config.json").string();
  const auto rep = run_prepare(po);
  ASSERT_EQ(rep.json.at("totals").at("accepted"), 1) << rep.text;
  ShardReader r(po.out);
  ASSERT_GE(r.size(), 2u);
  const auto a = r.read_clip(0), b = r.read_clip(1);
  EXPECT_EQ(a.audio_layers, 4);  // the tiny wav2vec2's 4 layers x 32 dims
  EXPECT_EQ(a.audio_dim, 32);
  EXPECT_NE(a.audio_extractor.find("wav2vec2:all:4x32"), std::string::npos);
  EXPECT_TRUE(a.face_emb_valid);
  ASSERT_EQ(a.face_emb.size(), 512u);
  double norm = 0;
  for (float v : a.face_emb) norm += v * v;
  EXPECT_GT(norm, 0);
  // Same identity in both clips: embeddings close; a raw (unnormalised) embedding as upstream.
  double dot = 0, nb = 0;
  for (size_t i = 0; i < 512; ++i) dot += a.face_emb[i] * b.face_emb[i], nb += b.face_emb[i] * b.face_emb[i];
  EXPECT_GT(dot / std::sqrt(norm * nb), 0.9);
  // Latents: posterior mean/std per frame at H/8.
  EXPECT_EQ(a.latent_channels, 4);
  EXPECT_EQ(a.latent_mean.size(), size_t(25 * 4 * 16 * 16));
  EXPECT_EQ(a.latent_std.size(), a.latent_mean.size());
  for (float v : a.latent_std) ASSERT_GT(v, 0.f);
}

// Same file names in different folders, and a name that collides with a generated
// suffix, still get distinct dataset keys.
TEST_F(PrepareE2E, CollidingVideoNamesGetDistinctKeys) {
  const fs::path a = *root_ / "names" / "a", b = *root_ / "names" / "b";
  fs::create_directories(a);
  fs::create_directories(b);
  fs::copy_file(*root_ / "in" / "synth_0000.mp4", a / "talk.mp4");
  fs::copy_file(*root_ / "in" / "synth_0000.mp4", b / "talk.mp4");
  fs::copy_file(*root_ / "in" / "synth_0001.mp4", b / "talk_2.mp4");
  PrepareOptions po;
  po.inputs = {a, b};
  po.out = *root_ / "names_out";
  po.config = test_config();
  po.config.clip_length = 75;
  const auto rep = run_prepare(po);
  EXPECT_EQ(rep.json.at("totals").at("accepted"), 3) << rep.text;
  std::set<std::string> keys;
  for (const auto& v : rep.json.at("videos")) keys.insert(v.at("key").get<std::string>());
  EXPECT_EQ(keys, (std::set<std::string>{"talk", "talk_2", "talk_2_2"}));
  // The text report tells the two talk.mp4 apart: paths below the folder they share.
  for (const auto& n : {"a/talk.mp4 ", "b/talk.mp4 ", "b/talk_2.mp4 "})
    EXPECT_NE(rep.text.find(std::string("  ") + n), std::string::npos) << n << " in\n" << rep.text;
}

// A dataset folder prepared before face.detect_every existed (every frame
// detected, no such key in its prepare_config.json) resumes with detect_every 1
// and is refused with the new default.
TEST_F(PrepareE2E, FolderFromBeforeDetectEveryResumesWithDetectEveryOne) {
  const fs::path out = *root_ / "legacy";
  fs::create_directories(out);
  auto old = test_config();
  old.face.detect_every = 1;
  auto j = old.to_json();
  j["face"].erase("detect_every");
  std::ofstream(out / "prepare_config.json") << j.dump(2) << "\n";
  PrepareOptions po;
  po.inputs = {*root_ / "in" / "synth_0000.mp4"};
  po.out = out;
  po.config = test_config();
  try {
    run_prepare(po);
    ADD_FAILURE() << "detect_every 5 must not resume a folder detected on every frame";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("different settings"), std::string::npos) << e.what();
  }
  po.config.face.detect_every = 1;
  const auto rep = run_prepare(po);
  EXPECT_EQ(rep.json.at("totals").at("accepted"), 1) << rep.text;
}

// A model that cannot be loaded stops the run with its path instead of failing every video.
TEST_F(PrepareE2E, MissingModelFailsTheRun) {
  PrepareOptions po;
  po.inputs = {*root_ / "in" / "synth_0000.mp4"};
  po.out = *root_ / "missing_model";
  po.config = test_config();
  po.config.arcface_onnx = "/nonexistent/glintr100.onnx";
  try {
    run_prepare(po);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/glintr100.onnx"), std::string::npos) << e.what();
  }
}

TEST(PrepareConfig, YamlLikeJsonAndErrors) {
  nlohmann::json j = {{"resolution", 256}, {"clip_length", 16}, {"audio", {{"extractor", "logmel"}, {"n_mels", 64}}},
                      {"clean", {{"max_yaw", 30}}}, {"shards", {{"frames", "raw"}}}};
  auto c = PrepareConfig::from_json(j, "cfg.yaml");
  EXPECT_EQ(c.resolution, 256);
  EXPECT_EQ(c.audio.features.n_mels, 64);
  EXPECT_EQ(c.audio.features.fps, 25);
  EXPECT_EQ(c.clean.max_yaw, 30);
  EXPECT_EQ(c.shards.frames, FrameStorage::Raw);
  EXPECT_EQ(PrepareConfig::from_json(c.to_json(), "roundtrip").to_json(), c.to_json());
  for (const auto& bad : {nlohmann::json{{"resolution", 100}}, nlohmann::json{{"bogus", 1}},
                          nlohmann::json{{"audio", {{"extractor", "wav2vec2"}}}}}) {
    try {
      PrepareConfig::from_json(bad, "cfg.yaml");
      ADD_FAILURE() << "accepted " << bad.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cfg.yaml"), std::string::npos) << e.what();
    }
  }
  PrepareOptions po;
  po.inputs = {"/nonexistent/videos"};
  po.out = temp_root();
  EXPECT_THROW(run_prepare(po), Error);
}

}  // namespace
}  // namespace hallo::data
