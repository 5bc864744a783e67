#include "eval/nets/hash24.h"

#include <ATen/ATen.h>
#include <openssl/evp.h>

#include <cmath>

#include "core/error.h"
#include "model/io/dtype.h"

namespace hallo::eval {

uint32_t fnv1a32(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char b : s) h = (h ^ b) * 16777619u;
  return h;
}

namespace {

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

inline uint32_t mix(uint32_t i, uint32_t h) {
  uint32_t u = i * 2654435761u + h;
  u ^= u >> 16;
  u *= 0x85EBCA6Bu;
  u ^= u >> 13;
  u *= 0xC2B2AE35u;
  u ^= u >> 16;
  return u & 0xFFFFFFu;
}

}  // namespace

at::Tensor hash24_tensor(const std::string& key, at::ScalarType dtype, const std::vector<int64_t>& shape,
                         const Hash24Override& ov) {
  if (dtype == at::kLong) return at::zeros(shape, at::kLong);  // rule step 3
  if (dtype != at::kFloat) fail("hash24: tensor '{}' has dtype {}; the rule defines F32 and I64", key, c10::toString(dtype));
  at::Tensor t = at::empty(shape, at::kFloat);
  float* p = t.data_ptr<float>();
  const int64_t n = t.numel();
  const uint32_t h = fnv1a32(ov.hash_key.empty() ? key : ov.hash_key);
  enum { kVar, kMean, kGamma, kOther } kind = kOther;
  if (ends_with(key, "running_var")) kind = kVar;
  else if (ends_with(key, "running_mean")) kind = kMean;
  else if (shape.size() == 1 && ends_with(key, "weight")) kind = kGamma;
  int e = -3;  // 1-D and 0-dim
  if (shape.size() >= 2) {
    const int64_t fan_in = n / std::max<int64_t>(shape[0], 1);
    int s = 0;
    while ((int64_t{1} << (2 * s)) < fan_in) ++s;  // smallest s with 4^s >= fan_in
    e = 2 - s;
  }
  if (ov.e) e = *ov.e;
  const float scale_other = std::ldexp(1.0f, e - 23), two_m23 = std::ldexp(1.0f, -23), two_m26 = std::ldexp(1.0f, -26);
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t x = mix(static_cast<uint32_t>(i), h);
    switch (kind) {
      case kVar: p[i] = 1.0f + static_cast<float>(x >> 1) * two_m23; break;
      case kMean: p[i] = static_cast<float>(static_cast<int32_t>(x) - (1 << 23)) * two_m26; break;
      case kGamma: p[i] = 0.5f + static_cast<float>(x >> 1) * two_m23; break;
      case kOther: p[i] = static_cast<float>(static_cast<int32_t>(x) - (1 << 23)) * scale_other; break;
    }
  }
  return t;
}

io::StateDict hash24_state_dict(torch::nn::Module& m) {
  io::WeightSet ws;
  ws.format = "hash24";
  ws.source = "hash24";
  auto add = [&](const std::string& name, const at::Tensor& t) {
    ws.tensors.push_back(io::from_tensor(name, hash24_tensor(name, t.scalar_type(), t.sizes().vec())));
  };
  for (const auto& p : m.named_parameters()) add(p.key(), p.value());
  for (const auto& b : m.named_buffers()) add(b.key(), b.value());
  ws.sort_by_name();
  return io::StateDict(std::move(ws));
}

std::string sha256_tensors(const std::vector<at::Tensor>& tensors) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (const auto& t : tensors) {
    const at::Tensor c = t.contiguous().cpu();
    EVP_DigestUpdate(ctx, c.data_ptr(), c.numel() * c.element_size());
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

io::StateDict hash24_state_dict(const nlohmann::json& harness, const std::string& where) {
  if (!harness.contains("weights_manifest") || !harness["weights_manifest"].is_array())
    fail_at(where, "_harness.weights_manifest missing: cannot generate the procedural weights");
  const auto& rule = harness.contains("weights_rule") ? harness["weights_rule"] : nlohmann::json::object();
  const std::string name = rule.is_object() ? rule.value("name", std::string("hash24")) : rule.get<std::string>();
  if (name != "hash24") fail_at(where, "weights rule '{}' is not known (known: hash24)", name);
  const auto overrides = rule.is_object() && rule.contains("overrides") ? rule["overrides"] : nlohmann::json::object();
  io::WeightSet ws;
  ws.source = where + " (hash24 rule)";
  std::vector<at::Tensor> all;
  for (const auto& e : harness["weights_manifest"]) {
    const std::string key = e.at("name").get<std::string>();
    const std::string dname = e.at("dtype").get<std::string>();
    const auto dt = io::dtype_from_name(dname);
    if (!dt) fail_at(where, "weights_manifest entry '{}' has unknown dtype '{}'", key, dname);
    const auto dtype = io::to_scalar_type(*dt);
    Hash24Override ov;
    if (overrides.contains(key)) {
      const auto& o = overrides[key];
      ov.hash_key = o.value("hash_key", std::string());
      if (o.contains("e")) ov.e = o["e"].get<int>();
    }
    at::Tensor t = hash24_tensor(key, dtype, e.at("shape").get<std::vector<int64_t>>(), ov);
    all.push_back(t);
    ws.tensors.push_back(io::from_tensor(key, t));
  }
  ws.format = "hash24";
  ws.sort_by_name();
  if (rule.is_object() && rule.contains("check") && rule["check"].contains("sha256_all")) {
    const std::string want = rule["check"]["sha256_all"].get<std::string>();
    const std::string got = sha256_tensors(all);
    if (got != want)
      fail_at(where, "hash24 weights do not match the rule's check (sha256 {} vs expected {})", got, want);
  }
  return io::StateDict(std::move(ws));
}

}  // namespace hallo::eval
