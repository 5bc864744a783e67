#include "eval/stats_cache.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "core/error.h"

namespace hallo::eval {

namespace fs = std::filesystem;

namespace {

struct Sha256 {
  Sha256() : ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free) { EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr); }
  void update(const void* p, size_t n) { EVP_DigestUpdate(ctx.get(), p, n); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx.get(), md, &len);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) out += {digits[md[i] >> 4], digits[md[i] & 15]};
    return out;
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx;
};

}  // namespace

std::string sha256_file(const fs::path& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) fail_at(path.string(), "cannot open for hashing");
  Sha256 h;
  std::vector<char> buf(1 << 20);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) h.update(buf.data(), n);
  if (std::ferror(f.get())) fail_at(path.string(), "read error while hashing");
  return h.hex();
}

std::string sha256_text(const std::string& text) {
  Sha256 h;
  h.update(text.data(), text.size());
  return h.hex();
}

std::string StatsCache::hash_of(const fs::path& p) {
  for (const auto& [q, h] : hashes_)
    if (q == p) return h;
  hashes_.emplace_back(p, sha256_file(p));
  return hashes_.back().second;
}

std::string StatsCache::key(const std::string& metric, const std::string& settings, const fs::path& weights,
                            const std::vector<fs::path>& real) {
  std::string text = "hallo-eval-stats-v2\nmetric " + metric + "\nsettings " + settings + "\nweights " +
                     (weights.empty() ? std::string("-") : hash_of(weights)) + "\n";
  // Names and contents, in the order given (pairing order does not change a set's
  // statistics, but a different order is rare enough not to bother sorting).
  for (const auto& v : real) text += v.filename().string() + " " + hash_of(v) + "\n";
  return sha256_text(text);
}

fs::path StatsCache::path_for(const std::string& metric, const std::string& key) const {
  return dir_ / ("real-" + metric + "-" + key.substr(0, 24) + ".safetensors");
}

std::optional<GaussianStats> StatsCache::get(const std::string& metric, const std::string& key) const {
  if (!enabled()) return std::nullopt;
  const fs::path p = path_for(metric, key);
  if (!fs::exists(p)) return std::nullopt;
  try {
    return load_stats(p);
  } catch (const Error& e) {
    spdlog::warn("ignoring unreadable statistics cache {}: {}", p.string(), e.what());
    return std::nullopt;
  }
}

void StatsCache::put(const std::string& metric, const std::string& key, const GaussianStats& s) const {
  if (!enabled()) return;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    spdlog::warn("cannot create the statistics cache {}: {} (continuing without it)", dir_.string(), ec.message());
    return;
  }
  try {
    save_stats(path_for(metric, key), s);  // atomic: temp file + rename
  } catch (const std::exception& e) {
    // The statistics are computed either way; a full or read-only cache only costs the next run.
    spdlog::warn("cannot write the statistics cache {}: {} (continuing without it)", path_for(metric, key).string(), e.what());
  }
}

fs::path default_cache_dir() {
  if (const char* d = std::getenv("HALLO_CACHE_DIR"); d && *d) return fs::path(d) / "eval";
  if (const char* d = std::getenv("XDG_CACHE_HOME"); d && *d) return fs::path(d) / "hallo" / "eval";
  if (const char* d = std::getenv("HOME"); d && *d) return fs::path(d) / ".cache" / "hallo" / "eval";
  return {};
}

}  // namespace hallo::eval
