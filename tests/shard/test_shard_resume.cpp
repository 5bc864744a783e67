// Crash safety and resume: a writer destroyed before finish() leaves only
// complete shards, and a second run that skips existing_clip_ids() produces
// exactly what one uninterrupted run produces.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "data/shard/checksum.h"
#include "data/shard/shard_reader.h"
#include "data/shard/shard_writer.h"
#include "synthetic.h"

namespace hallo::data {
namespace {

namespace fs = std::filesystem;

std::vector<ClipRecord> five_clips() {
  std::vector<ClipRecord> v;
  for (int i = 0; i < 5; ++i) v.push_back(testing::make_clip("c" + std::to_string(i), i, testing::with_frames(5)));
  return v;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

ShardWriterConfig two_per_shard() {
  ShardWriterConfig cfg;
  cfg.clips_per_shard = 2;
  return cfg;
}

TEST(ShardResume, KilledWriterLeavesOnlyCompleteShards) {
  const auto clips = five_clips();
  const fs::path dir = testing::fresh_dir("killed");
  {
    ShardWriter w(dir, two_per_shard());
    for (const auto& c : clips) w.add(c);
    // The fifth clip sits in an open temp shard.
    bool temp_seen = false;
    for (const auto& n : listing(dir)) temp_seen |= n.find(".h5.tmp-") != std::string::npos;
    EXPECT_TRUE(temp_seen);
  }  // destroyed without finish()
  EXPECT_EQ(listing(dir), (std::vector<std::string>{".writer.lock", "index.json", "shard-00000.h5",
                                                    "shard-00001.h5"}));
  ShardReader r(dir);
  EXPECT_FALSE(r.index().complete());
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r.read_clip(3).id, "c3");
}

TEST(ShardResume, SecondRunMatchesOneUninterruptedRun) {
  const auto clips = five_clips();
  const fs::path once = testing::fresh_dir("once");
  {
    ShardWriter w(once, two_per_shard());
    for (const auto& c : clips) w.add(c);
    w.finish();
  }
  const fs::path resumed = testing::fresh_dir("resumed");
  {
    ShardWriter w(resumed, two_per_shard());
    for (int i = 0; i < 4; ++i) w.add(clips[i]);
  }
  // Leftovers a killed process could leave behind: a temp shard and an unlisted shard.
  std::ofstream(resumed / "shard-00002.h5.tmp-999-0") << "partial";
  std::ofstream(resumed / "shard-00007.h5") << "renamed but never indexed";
  {
    ShardWriter w(resumed, two_per_shard());
    const auto done = w.existing_clip_ids();
    EXPECT_EQ(done, (std::set<std::string>{"c0", "c1", "c2", "c3"}));
    for (const auto& c : clips)
      if (!done.count(c.id)) w.add(c);
    w.finish();
  }
  EXPECT_EQ(listing(resumed), listing(once));
  EXPECT_EQ(slurp(resumed / "index.json"), slurp(once / "index.json"));
  for (const char* s : {"shard-00000.h5", "shard-00001.h5", "shard-00002.h5"})
    EXPECT_EQ(fnv1a64_file(resumed / s), fnv1a64_file(once / s)) << s;
  ShardReader r(resumed);
  EXPECT_TRUE(r.index().complete());
  EXPECT_EQ(r.size(), 5u);
}

TEST(ShardResume, DamagedShardIsDroppedAndRedone) {
  const auto clips = five_clips();
  const fs::path dir = testing::fresh_dir("damaged");
  {
    ShardWriter w(dir, two_per_shard());
    for (const auto& c : clips) w.add(c);
    w.finish();
  }
  {  // append garbage: the size no longer matches index.json
    std::ofstream(dir / "shard-00001.h5", std::ios::app) << "x";
  }
  {
    ShardWriter w(dir, two_per_shard());
    const auto done = w.existing_clip_ids();
    EXPECT_EQ(done, (std::set<std::string>{"c0", "c1", "c4"}));
    EXPECT_FALSE(fs::exists(dir / "shard-00001.h5"));
    for (const auto& c : clips)
      if (!done.count(c.id)) w.add(c);
    w.finish();
  }
  ShardReader r(dir);
  std::set<std::string> ids;
  for (size_t i = 0; i < r.size(); ++i) ids.insert(r.read_clip(i).id);
  EXPECT_EQ(ids, (std::set<std::string>{"c0", "c1", "c2", "c3", "c4"}));
}

TEST(ShardResume, DuplicatesAndMisuseAreErrors) {
  const auto clips = five_clips();
  const fs::path dir = testing::fresh_dir("dup");
  ShardWriter w(dir, two_per_shard());
  w.add(clips[0]);
  EXPECT_THROW(w.add(clips[0]), Error);
  EXPECT_THROW((ShardWriter{dir, two_per_shard()}), Error);  // one writer per directory
  ClipRecord bad = clips[1];
  bad.frames.pop_back();
  EXPECT_THROW(w.add(bad), Error);
  w.add(clips[1]);  // a rejected record does not poison the writer
  w.finish();
  w.finish();  // idempotent
  EXPECT_THROW(w.add(clips[2]), Error);
  ShardWriterConfig cfg;
  cfg.clips_per_shard = 0;
  EXPECT_THROW((ShardWriter{testing::fresh_dir("cfg"), cfg}), Error);
}

TEST(ShardResume, ConcurrentAddsAreSafe) {
  const fs::path dir = testing::fresh_dir("threads");
  {
    ShardWriter w(dir, two_per_shard());
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t)
      threads.emplace_back([&w, t] {
        for (int i = 0; i < 3; ++i)
          w.add(testing::make_clip("t" + std::to_string(t) + "_" + std::to_string(i), t * 3 + i,
                                   testing::with_frames(4)));
      });
    for (auto& th : threads) th.join();
    w.finish();
  }
  ShardReader r(dir);
  ASSERT_EQ(r.size(), 9u);
  EXPECT_EQ(r.index().shards().size(), 5u);
  for (size_t i = 0; i < r.size(); ++i) EXPECT_NO_THROW(r.read_clip(i));
}

}  // namespace
}  // namespace hallo::data
