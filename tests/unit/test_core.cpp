#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "core/atomic_file.h"
#include "core/cpu_allocator.h"
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

namespace {
// Anonymous mappings in this process (lines of /proc/self/maps without a file).
int anonymous_mappings() {
  std::ifstream maps("/proc/self/maps");
  int n = 0;
  for (std::string line; std::getline(maps, line);) n += line.find('/') == std::string::npos;
  return n;
}
}  // namespace

TEST(CpuAllocator, LargeBlocksAreHugePageAlignedAndUnmappedWhenFreed) {
  ASSERT_TRUE(hallo::install_cpu_allocator());  // test_main installs it; a second call is a no-op
  const size_t huge = size_t{2} << 20;
  {
    auto big = at::empty({3 << 20}, at::kByte);  // 3 MiB: its own mapping
    EXPECT_EQ(reinterpret_cast<uintptr_t>(big.data_ptr()) % huge, 0u);
    big.fill_(7);
    EXPECT_EQ(big.sum().item<int64_t>(), int64_t{7} * (3 << 20));
    auto small = at::ones({100});  // heap block, freed through the same deleter
    EXPECT_EQ(small.sum().item<float>(), 100.f);
  }
  // Freed blocks go back to the kernel: many cycles leave the mapping count flat.
  const int before = anonymous_mappings();
  for (int i = 0; i < 200; ++i) {
    auto t = at::empty({(5 << 20) + i * 4096}, at::kByte);
    t.data_ptr<uint8_t>()[0] = 1;
  }
  EXPECT_LE(anonymous_mappings(), before + 2);
  // Live and peak bytes: exact for mapped blocks, malloc's usable size for heap blocks.
  hallo::reset_cpu_memory_peak();
  const auto s0 = hallo::cpu_memory_stats();
  ASSERT_TRUE(s0.tracked);
  {
    auto a = at::empty({3 << 20}, at::kByte);
    auto b = at::empty({1000}, at::kFloat);
    const auto s1 = hallo::cpu_memory_stats();
    EXPECT_GE(s1.live - s0.live, (3 << 20) + 4000);
    EXPECT_LT(s1.live - s0.live, (3 << 20) + 4000 + 8192);
  }
  const auto s2 = hallo::cpu_memory_stats();
  EXPECT_EQ(s2.live, s0.live) << "every byte counted in is counted out";
  EXPECT_GE(s2.peak - s0.live, (3 << 20) + 4000) << "the peak remembers the freed tensors";
  hallo::reset_cpu_memory_peak();
  EXPECT_EQ(hallo::cpu_memory_stats().peak, s2.live);
  // Tensors from libtorch's own ops (resize, clone) use it too and free cleanly.
  auto grown = at::empty({0});
  grown.resize_({1 << 20});  // 4 MiB of float
  EXPECT_EQ(reinterpret_cast<uintptr_t>(grown.data_ptr()) % huge, 0u);
}
