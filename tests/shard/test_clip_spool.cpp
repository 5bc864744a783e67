// ClipSpool: encoded clips parked on disk come back byte for byte, in order,
// one at a time; the file goes away; a cut file is named; stale files go.
#include <gtest/gtest.h>

#include <fstream>
#include <tuple>

#include "core/error.h"
#include "data/shard/clip_codec.h"
#include "data/shard/clip_spool.h"
#include "data/shard/shard_writer.h"
#include "synthetic.h"

namespace hallo::data {
namespace {

namespace fs = std::filesystem;
using testing::fresh_dir;
using testing::make_clip;

std::vector<EncodedShardClip> sample_clips() {
  testing::SynthOptions raw;
  raw.noise_frames = true;
  raw.latents = true;
  ShardWriterConfig jpeg, exact;
  exact.frames = FrameStorage::Raw;
  return {ShardWriter::encode(make_clip("v_s000_c000", 1), jpeg),
          ShardWriter::encode(make_clip("v_s000_c001", 2, raw), exact),
          ShardWriter::encode(make_clip("v_s001_c002", 3, testing::with_frames(21)), jpeg)};
}

// Field by field through the shard's own hashing: the clip checksum covers every
// attribute and dataset byte (clip_checksum), the rest is compared directly.
void expect_same(const EncodedShardClip& a, const EncodedShardClip& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(clip_checksum(a.data.attrs, a.data.datasets), clip_checksum(b.data.attrs, b.data.datasets));
  EXPECT_EQ(clip_checksum(b.data.attrs, b.data.datasets), b.data.checksum) << "the stored checksum still verifies";
  ASSERT_EQ(a.data.attrs.size(), b.data.attrs.size());
  for (size_t i = 0; i < a.data.attrs.size(); ++i) EXPECT_EQ(a.data.attrs[i].kind, b.data.attrs[i].kind) << a.data.attrs[i].name;
  ASSERT_EQ(a.data.datasets.size(), b.data.datasets.size());
  for (size_t i = 0; i < a.data.datasets.size(); ++i) {
    EXPECT_EQ(a.data.datasets[i].elem, b.data.datasets[i].elem) << a.data.datasets[i].name;
    EXPECT_EQ(a.data.datasets[i].chunk_rows, b.data.datasets[i].chunk_rows) << a.data.datasets[i].name;
    EXPECT_EQ(a.data.datasets[i].compress, b.data.datasets[i].compress) << a.data.datasets[i].name;
  }
  EXPECT_EQ(a.data.storage, b.data.storage);
  EXPECT_EQ(a.data.height, b.data.height);
  EXPECT_EQ(a.data.width, b.data.width);
  EXPECT_EQ(a.data.frames, b.data.frames);
  EXPECT_EQ(a.data.checksum, b.data.checksum);
  const auto &x = a.entry, &y = b.entry;
  EXPECT_EQ(std::tie(x.shard, x.clip_id, x.num_frames, x.height, x.width, x.frame_storage, x.audio_extractor,
                     x.audio_layers, x.audio_dim, x.face_emb_dim, x.has_masks, x.checksum),
            std::tie(y.shard, y.clip_id, y.num_frames, y.height, y.width, y.frame_storage, y.audio_extractor,
                     y.audio_layers, y.audio_dim, y.face_emb_dim, y.has_masks, y.checksum));
}

TEST(ClipSpool, ClipsComeBackByteForByteInOrderAndTheFileGoes) {
  const auto dir = fresh_dir("spool_roundtrip");
  const auto clips = sample_clips();
  const fs::path file = dir / (std::string("video") + ClipSpool::kSuffix);
  ClipSpool spool(file);
  EXPECT_FALSE(fs::exists(file)) << "created on the first clip";
  for (const auto& c : clips) spool.push(c);
  EXPECT_EQ(spool.size(), 3u);
  ASSERT_TRUE(fs::exists(file));
  EXPECT_EQ(fs::file_size(file), spool.bytes());
  size_t frame_bytes = 0;
  for (const auto& c : clips)
    for (const auto& f : c.data.frames) frame_bytes += f.size();
  EXPECT_GT(spool.bytes(), frame_bytes);
  size_t k = 0;
  spool.drain([&](const EncodedShardClip& c) {
    ASSERT_LT(k, clips.size());
    SCOPED_TRACE(clips[k].id);
    expect_same(c, clips[k]);
    ++k;
  });
  EXPECT_EQ(k, 3u);
  EXPECT_FALSE(fs::exists(file));
  EXPECT_EQ(spool.size(), 0u);
}

TEST(ClipSpool, DestroyedUndrainedRemovesItsFile) {
  const auto dir = fresh_dir("spool_destroy");
  const fs::path file = dir / (std::string("v") + ClipSpool::kSuffix);
  {
    ClipSpool spool(file);
    spool.push(sample_clips()[0]);
    ASSERT_TRUE(fs::exists(file));
  }
  EXPECT_FALSE(fs::exists(file));
}

TEST(ClipSpool, ACutFileIsNamed) {
  const auto dir = fresh_dir("spool_cut");
  const fs::path file = dir / (std::string("v") + ClipSpool::kSuffix);
  ClipSpool spool(file);
  const auto clips = sample_clips();
  spool.push(clips[0]);
  spool.push(clips[1]);
  fs::resize_file(file, fs::file_size(file) - 100);
  int seen = 0;
  try {
    spool.drain([&](const EncodedShardClip&) { ++seen; });
    FAIL() << "a cut spool file must not drain";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ends early"), std::string::npos) << e.what();
  }
  EXPECT_EQ(seen, 1) << "the whole first clip is still readable";
}

TEST(ClipSpool, RemoveStaleTakesOnlySpoolFiles) {
  const auto dir = fresh_dir("spool_stale");
  for (const char* n : {"a.tmp-spool", "b_2.tmp-spool", "shard-00000.h5", "index.json", "x.tmp-spool.keep"})
    std::ofstream(dir / n) << "x";
  fs::create_directories(dir / "sub.tmp-spool");
  EXPECT_EQ(ClipSpool::remove_stale(dir), 2);
  EXPECT_FALSE(fs::exists(dir / "a.tmp-spool"));
  EXPECT_FALSE(fs::exists(dir / "b_2.tmp-spool"));
  for (const char* n : {"shard-00000.h5", "index.json", "x.tmp-spool.keep", "sub.tmp-spool"})
    EXPECT_TRUE(fs::exists(dir / n)) << n;
  EXPECT_EQ(ClipSpool::remove_stale(dir / "missing"), 0);
}

}  // namespace
}  // namespace hallo::data
