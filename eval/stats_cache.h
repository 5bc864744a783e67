#pragma once
// Cache of real-set statistics (FID / FVD / E-FID Gaussians): a file per key,
// key = SHA-256 of the metric, its settings, the network weights' content and every
// real video's name and content. Re-running `hallo eval` against the same real set
// skips decoding and featurising it; touching any input changes the key.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "eval/frechet.h"

namespace hallo::eval {

// Streamed SHA-256 of a file's bytes (lower-case hex); throws naming the file.
std::string sha256_file(const std::filesystem::path& path);
std::string sha256_text(const std::string& text);

class StatsCache {
 public:
  explicit StatsCache(std::filesystem::path dir) : dir_(std::move(dir)) {}  // empty: disabled
  bool enabled() const { return !dir_.empty(); }

  // Key over the metric, its settings, the weights file and the real videos (content hashed
  // once per file and remembered).
  std::string key(const std::string& metric, const std::string& settings, const std::filesystem::path& weights,
                  const std::vector<std::filesystem::path>& real);
  std::filesystem::path path_for(const std::string& metric, const std::string& key) const;
  std::optional<GaussianStats> get(const std::string& metric, const std::string& key) const;
  // Atomic; a failed write (read-only or full disk) is a warning, never an error.
  void put(const std::string& metric, const std::string& key, const GaussianStats& s) const;

 private:
  std::string hash_of(const std::filesystem::path& p);
  std::filesystem::path dir_;
  std::vector<std::pair<std::filesystem::path, std::string>> hashes_;
};

// $HALLO_CACHE_DIR/eval, else $XDG_CACHE_HOME/hallo/eval, else ~/.cache/hallo/eval.
std::filesystem::path default_cache_dir();

}  // namespace hallo::eval
