#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/threads.h"
#include "test_util.h"

using namespace hallo;

TEST(Threads, FlagBeatsEnvBeatsHardware) {
  ::setenv("HALLO_THREADS", "3", 1);
  EXPECT_EQ(resolve_thread_count(5), 5);
  EXPECT_EQ(resolve_thread_count(0), 3);
  ::unsetenv("HALLO_THREADS");
  EXPECT_EQ(resolve_thread_count(0), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

TEST(Threads, BadEnvIsAnError) {
  ::setenv("HALLO_THREADS", "two", 1);
  test::expect_error([] { resolve_thread_count(0); }, {"HALLO_THREADS", "two"});
  ::unsetenv("HALLO_THREADS");
}

TEST(Threads, ConfigureAppliesToLibtorch) {
  EXPECT_EQ(configure_threads(2), 2);
  EXPECT_EQ(at::get_num_threads(), 2);
}

TEST(AtomicFile, CommitRenamesAndLeavesNoTemp) {
  test::TempDir d;
  auto target = d / "out.bin";
  {
    AtomicFile f(target);
    f.write("hello");
    EXPECT_FALSE(std::filesystem::exists(target));
    EXPECT_TRUE(std::filesystem::exists(f.temp_path()));
    f.commit();
  }
  EXPECT_EQ(test::read_bytes(target), "hello");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(d.path()), {}), 1);
}

TEST(AtomicFile, AbandonedWriteKeepsOldContents) {
  test::TempDir d;
  auto target = d / "out.bin";
  test::write_bytes(target, "old");
  {
    AtomicFile f(target);
    f.write("partial new contents");
    // destroyed without commit, as when an exception unwinds
  }
  EXPECT_EQ(test::read_bytes(target), "old");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(d.path()), {}), 1);
}

TEST(AtomicFile, MissingDirectoryNamesThePath) {
  test::expect_error([] { AtomicFile f("/nonexistent_dir_xyz/out.bin"); }, {"/nonexistent_dir_xyz/out.bin", "does not exist"});
}
