#include "core/config_file.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace hallo {

namespace {

// YAML scalars are untyped text; give them the JSON type a reader would expect.
nlohmann::json scalar_to_json(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted: always a string
  if (s == "null" || s == "~" || s.empty()) return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  char* end = nullptr;
  const long long i = std::strtoll(s.c_str(), &end, 10);
  if (end && *end == '\0') return i;
  const double d = std::strtod(s.c_str(), &end);
  if (end && *end == '\0') return d;
  return s;
}

nlohmann::json to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalar_to_json(n);
    case YAML::NodeType::Sequence: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& e : n) a.push_back(to_json(e));
      return a;
    }
    case YAML::NodeType::Map: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = to_json(kv.second);
      return o;
    }
  }
  return nullptr;
}

}  // namespace

nlohmann::json parse_yaml(const std::string& text, const std::string& where) {
  try {
    return to_json(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    fail_at(where, "invalid YAML at line {}, column {}: {}", e.mark.line + 1, e.mark.column + 1, e.msg);
  }
}

nlohmann::json load_config_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) fail_at(path.string(), "cannot open config file (no such file or not readable)");
  std::stringstream ss;
  ss << in.rdbuf();
  const auto ext = path.extension().string();
  if (ext == ".yaml" || ext == ".yml") return parse_yaml(ss.str(), path.string());
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::parse_error& e) {
    fail_at(path.string(), "invalid JSON: {}", e.what());
  }
}

}  // namespace hallo
