#include "model/nn/lora.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <functional>
#include <set>

#include "core/error.h"
#include "core/name_patterns.h"
#include "model/io/safetensors.h"
#include "model/nn/attention.h"

namespace hallo::nn {

namespace {

constexpr const char* kPeftPrefix = "base_model.model.";
constexpr const char* kSuffixA = ".lora_A.weight";
constexpr const char* kSuffixB = ".lora_B.weight";

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// Every AttentionImpl under `root` with its name, in module order. Walks children
// by hand so it also works on a root that is not yet owned by a shared_ptr.
std::vector<std::pair<std::string, AttentionImpl*>> attentions(torch::nn::Module& root) {
  std::vector<std::pair<std::string, AttentionImpl*>> out;
  std::function<void(torch::nn::Module&, const std::string&)> walk = [&](torch::nn::Module& m, const std::string& name) {
    if (auto* a = dynamic_cast<AttentionImpl*>(&m)) out.emplace_back(name, a);
    for (const auto& c : m.named_children()) walk(*c.value(), name.empty() ? c.key() : name + "." + c.key());
  };
  walk(root, "");
  return out;
}

Proj proj_of(const std::string& target, const std::string& where) {
  for (size_t i = 0; i < kProjNames.size(); ++i)
    if (target == kProjNames[i]) return static_cast<Proj>(i);
  fail_at(where, "unknown LoRA target '{}' (to_q, to_k, to_v or to_out.0)", target);
}

struct Site {
  AttentionImpl* attention;
  Proj proj;
};

std::string site_name(const std::string& attention, size_t proj) {
  return attention.empty() ? std::string(kProjNames[proj]) : attention + "." + kProjNames[proj];
}

// The projections `c` selects, "<attention>.<target>" in module order.
std::vector<std::pair<std::string, Site>> selected_sites(torch::nn::Module& root, const LoraConfig& c) {
  NamePatterns chosen(c.patterns, "lora.patterns");
  std::vector<Proj> projs;
  for (const auto& t : c.targets) projs.push_back(proj_of(t, "lora.targets"));
  std::vector<std::pair<std::string, Site>> sites;
  for (const auto& [name, a] : attentions(root)) {
    if (!chosen.match(name)) continue;
    for (Proj p : projs) sites.push_back({site_name(name, static_cast<size_t>(p)), {a, p}});
  }
  chosen.require_all_used("attention module of the net");
  return sites;
}

}  // namespace

nlohmann::json LoraConfig::to_json() const {
  return {{"rank", rank}, {"alpha", alpha > 0 ? alpha : static_cast<double>(rank)}, {"targets", targets},
          {"patterns", patterns}};
}

LoraConfig LoraConfig::from_json(const nlohmann::json& j, const std::string& where) {
  LoraConfig c;
  if (j.is_null()) return c;
  if (!j.is_object()) fail_at(where, "'lora' must be a mapping");
  for (const auto& [k, v] : j.items()) {
    if (k == "dropout") {
      if (!v.is_number() || v.get<double>() != 0.0)
        fail_at(where, "lora.dropout is not supported (PEFT's default 0 is the only value)");
      continue;
    }
    if (k != "rank" && k != "alpha" && k != "targets" && k != "patterns") fail_at(where, "unknown key 'lora.{}'", k);
  }
  try {
    c.rank = j.value("rank", int64_t{0});
    c.alpha = j.value("alpha", 0.0);
    if (j.contains("targets")) c.targets = j.at("targets").get<std::vector<std::string>>();
    if (j.contains("patterns")) c.patterns = j.at("patterns").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    fail_at(where, "lora: {}", e.what());
  }
  if (c.rank < 0) fail_at(where, "lora.rank must be >= 0 (0: no adapters), got {}", c.rank);
  if (c.alpha < 0) fail_at(where, "lora.alpha must be >= 0 (0: alpha = rank), got {}", c.alpha);
  if (c.rank > 0 && (c.targets.empty() || c.patterns.empty()))
    fail_at(where, "lora: targets and patterns must not be empty");
  for (const auto& t : c.targets) proj_of(t, where);
  return c;
}

std::vector<std::string> lora_sites(torch::nn::Module& root, const LoraConfig& c) {
  std::vector<std::string> names;
  for (const auto& site : selected_sites(root, c)) names.push_back(site.first);
  return names;
}

std::vector<std::string> attach_lora(torch::nn::Module& root, const LoraConfig& c, uint64_t seed) {
  if (!c.enabled()) return {};
  at::Generator gen = at::detail::createCPUGenerator(seed);
  torch::NoGradGuard no_grad;
  std::vector<std::string> names;
  for (const auto& [name, site] : selected_sites(root, c)) {
    LoraAdapter& ad = site.attention->add_lora(site.proj, c.rank, c.scaling());
    // PEFT: kaiming_uniform_(A, a=sqrt(5)) -> U(-1/sqrt(in), 1/sqrt(in)); drawn in float32
    // on the CPU so the init does not depend on the device or dtype.
    const int64_t in = ad.down->weight.size(1);
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    ad.down->weight.copy_(at::empty({c.rank, in}, at::kFloat).uniform_(-bound, bound, gen));
    ad.up->weight.zero_();
    names.push_back(name);
  }
  return names;
}

size_t set_lora_multiplier(torch::nn::Module& root, double multiplier) {
  size_t n = 0;
  for (const auto& [name, a] : attentions(root))
    for (size_t i = 0; i < kProjNames.size(); ++i)
      if (LoraAdapter* ad = a->lora(static_cast<Proj>(i))) {
        ad->multiplier = multiplier;
        ++n;
      }
  return n;
}

std::vector<io::TensorRecord> lora_records(torch::nn::Module& root) {
  std::vector<io::TensorRecord> out;
  for (const auto& [name, a] : attentions(root))
    for (size_t i = 0; i < kProjNames.size(); ++i)
      if (LoraAdapter* ad = a->lora(static_cast<Proj>(i))) {
        const std::string m = site_name(name, i);
        out.push_back(io::from_tensor(m + kSuffixA, ad->down->weight.detach()));
        out.push_back(io::from_tensor(m + kSuffixB, ad->up->weight.detach()));
      }
  return out;
}

std::map<std::string, std::string> lora_metadata(const LoraConfig& c) {
  const nlohmann::json j = c.to_json();
  return {{"format", "hallo-lora"},
          {"rank", std::to_string(c.rank)},
          {"alpha", j.at("alpha").dump()},
          {"targets", j.at("targets").dump()},
          {"patterns", j.at("patterns").dump()}};
}

void save_lora(const std::filesystem::path& file, torch::nn::Module& root, const LoraConfig& c) {
  auto recs = lora_records(root);
  if (recs.empty()) fail_at(file.string(), "the net has no LoRA adapters to save");
  io::write_safetensors(file, recs, lora_metadata(c));
}

LoraFile read_lora(const std::filesystem::path& file) {
  const std::string where = file.string();
  if (!std::filesystem::exists(file)) fail_at(where, "no such LoRA adapter file");
  LoraFile f;
  f.path = file;
  io::WeightSet ws = io::StateDict::open(file).weights();
  ws = io::strip_prefix(ws, kPeftPrefix);
  f.adapters = io::StateDict(ws);
  if (f.adapters.size() == 0) fail_at(where, "no tensors (an adapter file holds <module>.lora_A/B.weight pairs)");
  int64_t rank = -1;
  for (const auto& r : ws.tensors) {
    const bool is_a = ends_with(r.name, kSuffixA), is_b = ends_with(r.name, kSuffixB);
    if (!is_a && !is_b) fail_at(where, "'{}' is not a LoRA tensor (<module>.lora_A.weight / .lora_B.weight)", r.name);
    const std::string m = r.name.substr(0, r.name.size() - std::string(kSuffixA).size());
    const std::string other = m + (is_a ? kSuffixB : kSuffixA);
    if (!f.adapters.contains(other)) fail_at(where, "'{}' has no partner '{}'", r.name, other);
    if (r.shape.size() != 2) fail_at(where, "'{}' must be 2-D, is {}-D", r.name, r.shape.size());
    const int64_t rr = is_a ? r.shape[0] : r.shape[1];
    if (rank >= 0 && rr != rank) fail_at(where, "'{}' has rank {}, other adapters {}", r.name, rr, rank);
    rank = rr;
  }
  f.config.rank = rank;
  const auto& md = ws.metadata;
  if (md.count("rank") && std::stoll(md.at("rank")) != rank)
    fail_at(where, "metadata says rank {}, the tensors have rank {}", md.at("rank"), rank);
  // PEFT keeps alpha in adapter_config.json; without it, alpha = rank (scaling 1), as PEFT's default.
  if (md.count("alpha")) {
    try {
      f.config.alpha = std::stod(md.at("alpha"));
    } catch (const std::exception&) {
      fail_at(where, "metadata 'alpha' is not a number: '{}'", md.at("alpha"));
    }
  } else {
    f.config.alpha = static_cast<double>(rank);
  }
  if (f.config.alpha <= 0) fail_at(where, "metadata 'alpha' must be > 0");
  return f;
}

void load_lora(torch::nn::Module& root, const LoraFile& f, double multiplier) {
  const std::string where = f.path.string();
  std::map<std::string, Site> index;  // every projection of every attention
  for (const auto& [name, a] : attentions(root))
    for (size_t i = 0; i < kProjNames.size(); ++i) index.emplace(site_name(name, i), Site{a, static_cast<Proj>(i)});
  torch::NoGradGuard no_grad;
  for (const auto& key : f.adapters.keys()) {
    if (!ends_with(key, kSuffixA)) continue;
    const std::string site = key.substr(0, key.size() - std::string(kSuffixA).size());
    const auto it = index.find(site);
    if (it == index.end()) fail_at(where, "adapter for '{}': the net has no attention projection of that name", site);
    AttentionImpl* a = it->second.attention;
    const Proj p = it->second.proj;
    if (a->lora(p)) fail_at(where, "adapter for '{}': that projection already has an adapter", site);
    const at::Tensor A = f.adapters.tensor(key), B = f.adapters.tensor(site + kSuffixB);
    auto& lin = a->projection(p);
    const int64_t in = lin->weight.size(1), out = lin->weight.size(0);
    if (A.size(1) != in || B.size(0) != out || B.size(1) != A.size(0))
      fail_at(where, "adapter for '{}' is A {} / B {}, the projection is [{}, {}]", site, c10::str(A.sizes()),
              c10::str(B.sizes()), out, in);
    LoraAdapter& ad = a->add_lora(p, A.size(0), f.config.scaling());
    ad.down->weight.copy_(A);
    ad.up->weight.copy_(B);
    ad.multiplier = multiplier;
  }
}

void merge_lora(std::vector<io::TensorRecord>& net, const io::StateDict& adapters, double factor,
                const std::string& where) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < net.size(); ++i) index[net[i].name] = i;
  std::set<std::string> drop;
  for (const auto& key : adapters.keys()) {
    if (!ends_with(key, kSuffixA)) continue;
    const std::string m = key.substr(0, key.size() - std::string(kSuffixA).size());
    const auto it = index.find(m + ".weight");
    if (it == index.end()) fail_at(where, "adapter for '{}': the net has no '{}.weight'", m, m);
    const at::Tensor A = adapters.tensor(key).to(at::kDouble), B = adapters.tensor(m + kSuffixB).to(at::kDouble);
    io::TensorRecord& w = net[it->second];
    const at::Tensor W = io::to_tensor(w);
    if (W.dim() != 2 || B.size(0) != W.size(0) || A.size(1) != W.size(1) || B.size(1) != A.size(0))
      fail_at(where, "adapter for '{}' is A {} / B {}, the weight is {}", m, c10::str(A.sizes()), c10::str(B.sizes()),
              c10::str(W.sizes()));
    const at::Tensor merged = (W.to(at::kDouble) + at::mm(B, A) * factor).to(W.scalar_type());
    w = io::from_tensor(w.name, merged);
    drop.insert(m + kSuffixA);
    drop.insert(m + kSuffixB);
  }
  net.erase(std::remove_if(net.begin(), net.end(), [&](const io::TensorRecord& r) { return drop.count(r.name) > 0; }),
            net.end());
}

void merge_own_lora(std::vector<io::TensorRecord>& net, double factor, const std::string& where) {
  io::WeightSet ws;
  ws.source = where;
  for (const auto& r : net)
    if (ends_with(r.name, kSuffixA) || ends_with(r.name, kSuffixB)) ws.tensors.push_back(r);
  ws.sort_by_name();  // StateDict lookups are by binary search
  merge_lora(net, io::StateDict(std::move(ws)), factor, where);
}

}  // namespace hallo::nn
