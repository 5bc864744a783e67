// Write -> read round trips for both frame storages, corruption detection and
// interoperability with h5py.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include <opencv2/imgcodecs.hpp>

#include "tests/common/error_message.h"
#include "core/error.h"
#include "data/shard/shard_reader.h"
#include "data/shard/shard_writer.h"
#include "synthetic.h"

namespace hallo::data {
namespace {

namespace fs = std::filesystem;
using testing::make_clip;

double mean_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat d;
  cv::absdiff(a, b, d);
  const cv::Scalar s = cv::mean(d);
  return (s[0] + s[1] + s[2]) / 3.0;
}

bool mats_equal(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

void expect_fields_equal(const ClipRecord& got, const ClipRecord& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.source, want.source);
  EXPECT_DOUBLE_EQ(got.t_start, want.t_start);
  EXPECT_DOUBLE_EQ(got.t_end, want.t_end);
  EXPECT_DOUBLE_EQ(got.fps, want.fps);
  EXPECT_EQ(got.num_frames, want.num_frames);
  EXPECT_EQ(got.height, want.height);
  EXPECT_EQ(got.width, want.width);
  EXPECT_EQ(got.audio_extractor, want.audio_extractor);
  EXPECT_EQ(got.audio_layers, want.audio_layers);
  EXPECT_EQ(got.audio_dim, want.audio_dim);
  ASSERT_EQ(got.audio.size(), want.audio.size());
  for (size_t i = 0; i < want.audio.size(); ++i)
    ASSERT_NEAR(got.audio[i], want.audio[i], 1e-3 * std::abs(want.audio[i]) + 1e-7) << i;
  EXPECT_TRUE(mats_equal(got.face_region, want.face_region));
  ASSERT_EQ(got.lip_masks.size(), 4u);
  for (int l = 0; l < 4; ++l) {
    EXPECT_TRUE(mats_equal(got.lip_masks[l], want.lip_masks[l])) << l;
    EXPECT_TRUE(mats_equal(got.face_masks[l], want.face_masks[l])) << l;
    EXPECT_TRUE(mats_equal(got.pose_masks[l], want.pose_masks[l])) << l;
  }
  EXPECT_EQ(got.face_emb, want.face_emb);  // float32: exact
  EXPECT_EQ(got.face_emb_valid, want.face_emb_valid);
  EXPECT_EQ(got.latent_channels, want.latent_channels);
  ASSERT_EQ(got.latent_mean.size(), want.latent_mean.size());
  for (size_t i = 0; i < want.latent_mean.size(); ++i) {
    ASSERT_NEAR(got.latent_mean[i], want.latent_mean[i], 1e-3 * std::abs(want.latent_mean[i]) + 1e-7);
    ASSERT_NEAR(got.latent_std[i], want.latent_std[i], 1e-3 * std::abs(want.latent_std[i]) + 1e-7);
  }
  EXPECT_EQ(got.face_boxes, want.face_boxes);
  EXPECT_EQ(got.landmarks, want.landmarks);
  EXPECT_EQ(got.meta, want.meta);
}

std::vector<ClipRecord> sample_clips(bool noise) {
  std::vector<ClipRecord> clips;
  for (int i = 0; i < 3; ++i) {
    testing::SynthOptions o;
    o.num_frames = 6 + i;
    o.noise_frames = noise;
    o.latents = (i == 1);
    o.extras = (i != 2);  // the third clip has no boxes/landmarks/meta
    clips.push_back(make_clip("vid" + std::to_string(i) + "_s0_c0", i, o));
  }
  return clips;
}

fs::path write_dataset(const std::string& name, const std::vector<ClipRecord>& clips,
                       FrameStorage storage, int per_shard = 2) {
  const fs::path dir = testing::fresh_dir(name);
  ShardWriterConfig cfg;
  cfg.frames = storage;
  cfg.clips_per_shard = per_shard;
  ShardWriter w(dir, cfg);
  for (const auto& c : clips) w.add(c);
  w.finish();
  return dir;
}

TEST(ShardIO, RawRoundTripIsExact) {
  const auto clips = sample_clips(/*noise=*/true);
  const fs::path dir = write_dataset("raw", clips, FrameStorage::Raw);
  ShardReader r(dir);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_TRUE(r.index().complete());
  ASSERT_EQ(r.index().shards().size(), 2u);
  EXPECT_EQ(r.index().shards()[0].file, "shard-00000.h5");
  EXPECT_EQ(r.index().shards()[1].clips.size(), 1u);
  for (size_t i = 0; i < clips.size(); ++i) {
    const auto& e = r.index().clips()[i];
    EXPECT_EQ(e.clip_id, clips[i].id);
    EXPECT_EQ(e.num_frames, clips[i].num_frames);
    EXPECT_EQ(e.frame_storage, "raw");
    EXPECT_EQ(e.face_emb_dim, 512);
    EXPECT_TRUE(e.has_masks);
    const ClipRecord got = r.read_clip(i);
    expect_fields_equal(got, clips[i]);
    ASSERT_EQ(got.frames.size(), clips[i].frames.size());
    for (size_t f = 0; f < got.frames.size(); ++f)
      EXPECT_TRUE(mats_equal(got.frames[f], clips[i].frames[f])) << i << "/" << f;
    EXPECT_TRUE(mats_equal(r.read_frame(i, 3), clips[i].frames[3]));
  }
  EXPECT_TRUE(r.read_clip(0, /*frames=*/false).frames.empty());
}

TEST(ShardIO, JpegRoundTripKeepsMarkers) {
  const auto clips = sample_clips(/*noise=*/false);
  const fs::path dir = write_dataset("jpeg", clips, FrameStorage::Jpeg);
  ShardReader r(dir);
  for (size_t i = 0; i < clips.size(); ++i) {
    const ClipRecord got = r.read_clip(i);
    expect_fields_equal(got, clips[i]);
    for (size_t f = 0; f < got.frames.size(); ++f) {
      EXPECT_LT(mean_abs_diff(got.frames[f], clips[i].frames[f]), 2.0) << i << "/" << f;
      const cv::Scalar m = cv::mean(got.frames[f]);  // RGB order preserved
      EXPECT_NEAR(m[0], testing::clip_marker_value(static_cast<int>(i)), 2.0);
      EXPECT_NEAR(m[2], testing::frame_marker(static_cast<int>(f)), 2.0);
    }
    const cv::Mat one = r.read_frame(i, 5);
    EXPECT_NEAR(cv::mean(one)[2], testing::frame_marker(5), 2.0);
  }
  EXPECT_THROW(r.read_frame(0, 6), Error);   // clip 0 has 6 frames
  EXPECT_THROW(r.read_frame(0, -1), Error);
  EXPECT_THROW(r.read_clip(3), Error);
}

// Rewrites bytes of one dataset through HDF5 (the file stays valid HDF5).
void overwrite_dataset(const fs::path& shard, const std::string& path, const std::vector<float>& v) {
  hid_t f = H5Fopen(shard.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  hid_t d = H5Dopen2(f, path.c_str(), H5P_DEFAULT);
  ASSERT_GE(d, 0);
  ASSERT_GE(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), 0);
  H5Dclose(d);
  H5Fclose(f);
}

// Flips one byte of a contiguous dataset directly in the file.
void flip_byte(const fs::path& shard, const std::string& path, size_t byte) {
  hid_t f = H5Fopen(shard.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, path.c_str(), H5P_DEFAULT);
  const haddr_t off = H5Dget_offset(d);
  H5Dclose(d);
  H5Fclose(f);
  ASSERT_NE(off, HADDR_UNDEF);
  std::fstream io(shard, std::ios::in | std::ios::out | std::ios::binary);
  io.seekg(static_cast<std::streamoff>(off + byte));
  char c = 0;
  io.read(&c, 1);
  c = static_cast<char>(c ^ 0x10);
  io.seekp(static_cast<std::streamoff>(off + byte));
  io.write(&c, 1);
}

// Every use expects a throw: a missing error fails the test.
const auto error_of = ::hallo::test::error_message;

TEST(ShardIO, CorruptionIsReportedWithShardAndClip) {
  const auto clips = sample_clips(/*noise=*/true);
  const fs::path dir = write_dataset("corrupt", clips, FrameStorage::Raw);
  const fs::path shard0 = dir / "shard-00000.h5";
  const std::string id1 = clips[1].id;

  {  // a value changed through HDF5
    auto emb = clips[1].face_emb;
    emb[3] += 1.0f;
    overwrite_dataset(shard0, "clips/" + id1 + "/face_emb", emb);
    {
      ShardReader r(dir);
      const std::string msg = error_of([&] { r.read_clip(1, false); });
      EXPECT_NE(msg.find(shard0.string()), std::string::npos) << msg;
      EXPECT_NE(msg.find("clip '" + id1 + "'"), std::string::npos) << msg;
      EXPECT_NE(msg.find("checksum mismatch"), std::string::npos) << msg;
      EXPECT_NO_THROW(r.read_clip(0));  // the other clip in the shard is fine
    }  // HDF5 refuses a read-write open while the reader holds the file
    overwrite_dataset(shard0, "clips/" + id1 + "/face_emb", clips[1].face_emb);
    EXPECT_NO_THROW(ShardReader(dir).read_clip(1));
  }
  {  // one byte flipped in the file itself
    flip_byte(shard0, "clips/" + id1 + "/face_boxes", 5);
    ShardReader r(dir);
    const std::string msg = error_of([&] { r.read_clip(1, false); });
    EXPECT_NE(msg.find(shard0.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(id1), std::string::npos) << msg;
    flip_byte(shard0, "clips/" + id1 + "/face_boxes", 5);  // undo
  }
  {  // a frame pixel changed: caught by the frame checksum, also on single-frame reads
    hid_t f = H5Fopen(shard0.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, ("clips/" + clips[0].id + "/frames").c_str(), H5P_DEFAULT);
    hid_t fs_ = H5Dget_space(d);
    const hsize_t start[4] = {2, 10, 10, 1}, count[4] = {1, 1, 1, 1};
    H5Sselect_hyperslab(fs_, H5S_SELECT_SET, start, nullptr, count, nullptr);
    hid_t ms = H5Screate_simple(1, count, nullptr);
    const uint8_t v = static_cast<uint8_t>(clips[0].frames[2].at<cv::Vec3b>(10, 10)[1] ^ 0xff);
    ASSERT_GE(H5Dwrite(d, H5T_NATIVE_UINT8, ms, fs_, H5P_DEFAULT, &v), 0);
    H5Sclose(ms);
    H5Sclose(fs_);
    H5Dclose(d);
    H5Fclose(f);
    ShardReader r(dir);
    const std::string msg = error_of([&] { r.read_frame(0, 2); });
    EXPECT_NE(msg.find(shard0.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("clip '" + clips[0].id + "' frame 2"), std::string::npos) << msg;
    EXPECT_NE(error_of([&] { r.read_clip(0); }).find("frame 2"), std::string::npos);
    EXPECT_NO_THROW(r.read_frame(0, 1));
  }
}

TEST(ShardIO, MissingOrGarbageIndexIsAnError) {
  const fs::path dir = testing::fresh_dir("noindex");
  EXPECT_NE(error_of([&] { ShardReader r(dir); }).find("index.json"), std::string::npos);
  std::ofstream(dir / "index.json") << "{not json";
  EXPECT_NE(error_of([&] { ShardReader r(dir); }).find("not valid JSON"), std::string::npos);
}

TEST(ShardIO, H5pyReadsTheShard) {
  auto clips = sample_clips(/*noise=*/false);
  const fs::path dir = write_dataset("h5py", clips, FrameStorage::Jpeg);
  const fs::path out = dir / "h5py.json";
  const std::string cmd = "/usr/bin/python3 " HALLO_SHARD_TEST_DIR "/read_with_h5py.py '" +
                          (dir / "shard-00000.h5").string() + "' '" + clips[1].id + "' '" +
                          out.string() + "'";
  const int rc = std::system(cmd.c_str());
  if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77) GTEST_SKIP() << "h5py is not installed";
  ASSERT_EQ(rc, 0) << cmd;
  std::ifstream in(out);
  const auto j = nlohmann::json::parse(in);
  const ClipRecord& c = clips[1];
  EXPECT_EQ(j["id"], c.id);
  EXPECT_EQ(j["source"], c.source);
  EXPECT_EQ(j["audio_dtype"], "float16");
  EXPECT_EQ(j["audio_shape"], nlohmann::json({c.num_frames, c.audio_layers, c.audio_dim}));
  EXPECT_EQ(j["audio_4_1_0"].get<double>(), 4.0);  // the frame marker
  EXPECT_NEAR(j["audio_2_1_2"].get<double>(), c.audio[(2 * 2 + 1) * 3 + 2], 2e-3 * std::abs(c.audio[11]));
  EXPECT_EQ(j["face_emb_7"].get<float>(), c.face_emb[7]);
  EXPECT_EQ(j["meta"], c.meta);
  EXPECT_EQ(j["num_frames"], c.num_frames);
  EXPECT_EQ(j["lip_mask_1_shape"], nlohmann::json({c.height / 16, c.width / 16}));
  // The stored frame is a standard JPEG of the RGB frame.
  const cv::Mat bgr = cv::imread((dir / "frame3.jpg").string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(bgr.empty());
  EXPECT_NEAR(cv::mean(bgr)[0], testing::frame_marker(3), 2.0);  // blue
  EXPECT_NEAR(cv::mean(bgr)[2], testing::clip_marker_value(1), 2.0);  // red
  EXPECT_EQ(j["checksum_matches"], true);  // Python re-computes the documented checksum
  EXPECT_EQ(j["frame_checksums_match"], true);
}

}  // namespace
}  // namespace hallo::data
