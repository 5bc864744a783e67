#include "synthetic.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <random>

namespace hallo::data::testing {

namespace {

cv::Mat random_mask(std::mt19937& rng, int h, int w) {
  cv::Mat m(h, w, CV_8UC1);
  std::uniform_int_distribution<int> d(0, 255);
  for (int i = 0; i < h * w; ++i) m.data[i] = static_cast<uint8_t>(d(rng));
  return m;
}

}  // namespace

ClipRecord make_clip(const std::string& id, int clip_marker, const SynthOptions& o) {
  std::mt19937 rng(o.seed * 7919u + static_cast<unsigned>(clip_marker));
  std::uniform_int_distribution<int> byte(0, 255);
  std::normal_distribution<float> normal(0.f, 2.f);
  ClipRecord c;
  c.id = id;
  c.source = "/videos/" + id + ".mp4";
  c.t_start = 1.25 * clip_marker;
  c.t_end = c.t_start + o.num_frames / 25.0;
  c.fps = 25;
  c.num_frames = o.num_frames;
  c.height = o.height;
  c.width = o.width;
  for (int f = 0; f < o.num_frames; ++f) {
    cv::Mat m(o.height, o.width, CV_8UC3);
    for (int y = 0; y < o.height; ++y) {
      for (int x = 0; x < o.width; ++x) {
        auto* px = m.ptr<uint8_t>(y, x);
        px[0] = static_cast<uint8_t>(clip_marker_value(clip_marker));
        px[1] = o.noise_frames ? static_cast<uint8_t>(byte(rng))
                               : static_cast<uint8_t>(y * 255 / std::max(1, o.height - 1));
        px[2] = static_cast<uint8_t>(frame_marker(f));
      }
    }
    c.frames.push_back(m);
  }
  c.audio_layers = o.audio_layers;
  c.audio_dim = o.audio_dim;
  c.audio_extractor = o.audio_layers > 0 ? o.audio_extractor : "";
  for (int f = 0; f < o.num_frames; ++f)
    for (int l = 0; l < o.audio_layers; ++l)
      for (int d = 0; d < o.audio_dim; ++d) c.audio.push_back(d == 0 ? static_cast<float>(f) : normal(rng));
  c.face_region = cv::Mat::zeros(o.height, o.width, CV_8UC1);
  c.face_region(cv::Rect(o.width / 4, o.height / 4, o.width / 2, o.height / 2)).setTo(255);
  for (int l = 0; l < kMaskLevels; ++l) {
    const int s = 8 << l;
    c.lip_masks.push_back(random_mask(rng, o.height / s, o.width / s));
    c.face_masks.push_back(random_mask(rng, o.height / s, o.width / s));
    c.pose_masks.push_back(random_mask(rng, o.height / s, o.width / s));
  }
  for (int i = 0; i < 512; ++i) c.face_emb.push_back(normal(rng));
  c.face_emb_valid = true;
  if (o.latents) {
    c.latent_channels = 4;
    const size_t n = static_cast<size_t>(o.num_frames) * 4 * (o.height / 8) * (o.width / 8);
    for (size_t i = 0; i < n; ++i) {
      c.latent_mean.push_back(normal(rng));
      c.latent_std.push_back(std::abs(normal(rng)) + 0.01f);
    }
  }
  if (o.extras) {
    for (int f = 0; f < o.num_frames; ++f) {
      c.face_boxes.insert(c.face_boxes.end(), {10.5f + f, 12.f, 50.f, 52.25f});
      for (int k = 0; k < 68; ++k) c.landmarks.insert(c.landmarks.end(), {k + 0.5f, f + 0.25f});
    }
    c.meta = {{"sync_confidence", 7.5}, {"video", id}, {"pose", {1, 2, 3}}};
  }
  return c;
}

namespace {

// Removes every directory fresh_dir() made once all tests have run.
class TempDirs : public ::testing::Environment {
 public:
  void TearDown() override {
    std::lock_guard<std::mutex> g(mu);
    for (const auto& d : dirs) {
      std::error_code ec;
      std::filesystem::remove_all(d, ec);
    }
    dirs.clear();
  }
  std::mutex mu;
  std::vector<std::filesystem::path> dirs;
};

TempDirs* const g_temp_dirs =
    static_cast<TempDirs*>(::testing::AddGlobalTestEnvironment(new TempDirs));

}  // namespace

std::filesystem::path fresh_dir(const std::string& name) {
  static std::atomic<int> counter{0};
  auto p = std::filesystem::path(::testing::TempDir()) /
           ("hallo_shard_" + name + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  std::lock_guard<std::mutex> g(g_temp_dirs->mu);
  g_temp_dirs->dirs.push_back(p);
  return p;
}

}  // namespace hallo::data::testing
