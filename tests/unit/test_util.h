#pragma once
// Shared helpers for the unit tests: fixture paths, temp dirs, byte access.
#include <gtest/gtest.h>

#include "tests/common/temp_dir.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace hallo::test {

inline std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(HALLO_FIXTURES_DIR) / name;
}
inline std::filesystem::path golden_dir() { return std::filesystem::path(HALLO_GOLDEN_DIR); }

// A fresh empty directory removed at scope exit.
using TempDir = ::hallo::test::TempDir;

inline std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
inline void write_bytes(const std::filesystem::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out.write(s.data(), static_cast<std::streamsize>(s.size()));
}

// Builds a safetensors file from a literal header and data bytes.
inline std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header + data;
}

// Expects `fn` to throw a std::exception whose message contains every needle.
template <typename Fn>
void expect_error(Fn&& fn, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception containing '" << needles.front() << "'";
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "message: " << msg << "\nmissing: " << n;
  }
}

}  // namespace hallo::test
