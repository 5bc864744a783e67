#include "model/io/hf_config.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"

namespace hallo::io {

using nlohmann::json;

json parse_json_text(const std::string& text, const std::string& where) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    fail_at(where, "invalid JSON: {}", e.what());
  }
}

json load_json_file(const std::filesystem::path& path) {
  const std::string where = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_at(where, "cannot open (no such file?)");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_json_text(ss.str(), where);
}

JsonFields::JsonFields(const json& obj, std::string where)
    : obj_(std::make_unique<json>(obj)), where_(std::move(where)) {
  if (!obj_->is_object()) fail_at(where_, "expected a JSON object, got {}", obj_->type_name());
}
JsonFields::~JsonFields() = default;

const json& JsonFields::raw() const { return *obj_; }

bool JsonFields::has(const std::string& key) const {
  auto it = obj_->find(key);
  return it != obj_->end() && !it->is_null();
}

namespace {

template <typename T>
struct Conv;

template <>
struct Conv<bool> {
  static constexpr const char* name = "a boolean";
  static bool ok(const json& j) { return j.is_boolean(); }
  static bool get(const json& j) { return j.get<bool>(); }
};
template <>
struct Conv<int64_t> {
  static constexpr const char* name = "an integer";
  static bool ok(const json& j) {
    if (j.is_number_integer()) return true;
    // 2.0 is a fine integer in hand-edited configs; 2.5 is not.
    if (j.is_number_float()) { double d = j.get<double>(); return std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9e15; }
    return false;
  }
  static int64_t get(const json& j) { return j.is_number_float() ? static_cast<int64_t>(j.get<double>()) : j.get<int64_t>(); }
};
template <>
struct Conv<int> {
  static constexpr const char* name = "an integer";
  static bool ok(const json& j) {
    if (!Conv<int64_t>::ok(j)) return false;
    int64_t v = Conv<int64_t>::get(j);
    return v >= std::numeric_limits<int>::min() && v <= std::numeric_limits<int>::max();
  }
  static int get(const json& j) { return static_cast<int>(Conv<int64_t>::get(j)); }
};
template <>
struct Conv<double> {
  static constexpr const char* name = "a number";
  static bool ok(const json& j) { return j.is_number(); }
  static double get(const json& j) { return j.get<double>(); }
};
template <>
struct Conv<float> {
  static constexpr const char* name = "a number";
  static bool ok(const json& j) { return j.is_number(); }
  static float get(const json& j) { return static_cast<float>(j.get<double>()); }
};
template <>
struct Conv<std::string> {
  static constexpr const char* name = "a string";
  static bool ok(const json& j) { return j.is_string(); }
  static std::string get(const json& j) { return j.get<std::string>(); }
};
template <typename E>
struct Conv<std::vector<E>> {
  static std::string name_str() {
    std::string n = Conv<E>::name;  // "an integer" -> "integers"
    return "an array of " + n.substr(n.find(' ') + 1) + "s";
  }
  static constexpr const char* name = "an array";
  static bool ok(const json& j) {
    if (!j.is_array()) return false;
    for (const auto& e : j)
      if (!Conv<E>::ok(e)) return false;
    return true;
  }
  static std::vector<E> get(const json& j) {
    std::vector<E> v;
    for (const auto& e : j) v.push_back(Conv<E>::get(e));
    return v;
  }
};

template <typename T>
std::string expected_name() {
  if constexpr (std::is_same_v<T, std::vector<bool>> || std::is_same_v<T, std::vector<int>> ||
                std::is_same_v<T, std::vector<int64_t>> || std::is_same_v<T, std::vector<double>> ||
                std::is_same_v<T, std::vector<std::string>>)
    return Conv<T>::name_str();
  else
    return Conv<T>::name;
}

std::string describe(const json& j) {
  std::string v = j.dump();
  if (v.size() > 40) v = v.substr(0, 37) + "...";
  return fmt::format("{} {}", j.type_name(), v);
}

}  // namespace

template <typename T>
T JsonFields::get(const std::string& key) const {
  auto it = obj_->find(key);
  if (it == obj_->end() || it->is_null()) fail_at(where_, "missing required field '{}'", key);
  if (!Conv<T>::ok(*it)) fail_at(where_, "field '{}' is {}, expected {}", key, describe(*it), expected_name<T>());
  return Conv<T>::get(*it);
}

template <typename T>
T JsonFields::get_or(const std::string& key, T fallback) const {
  if (!has(key)) return fallback;
  return get<T>(key);
}

JsonFields JsonFields::object(const std::string& key) const {
  auto it = obj_->find(key);
  if (it == obj_->end() || it->is_null()) fail_at(where_, "missing required field '{}'", key);
  if (!it->is_object()) fail_at(where_, "field '{}' is {}, expected an object", key, describe(*it));
  return JsonFields(*it, where_ + ":" + key);
}

std::vector<std::string> JsonFields::unknown_keys(const std::set<std::string>& known) const {
  std::vector<std::string> out;
  for (auto it = obj_->begin(); it != obj_->end(); ++it)
    if (!known.count(it.key()) && it.key().rfind('_', 0) != 0) out.push_back(it.key());
  return out;
}

#define HALLO_INSTANTIATE(T)                                   \
  template T JsonFields::get<T>(const std::string&) const;     \
  template T JsonFields::get_or<T>(const std::string&, T) const;
HALLO_INSTANTIATE(bool)
HALLO_INSTANTIATE(int)
HALLO_INSTANTIATE(int64_t)
HALLO_INSTANTIATE(double)
HALLO_INSTANTIATE(float)
HALLO_INSTANTIATE(std::string)
HALLO_INSTANTIATE(std::vector<int>)
HALLO_INSTANTIATE(std::vector<int64_t>)
HALLO_INSTANTIATE(std::vector<double>)
HALLO_INSTANTIATE(std::vector<std::string>)
#undef HALLO_INSTANTIATE

}  // namespace hallo::io
