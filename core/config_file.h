#pragma once
// Config files: YAML (configs/*.yaml) or JSON, read into one JSON tree so every
// typed config has a single from_json. Errors name the file, line and problem.
#include <nlohmann/json.hpp>

#include <filesystem>

namespace hallo {

// .yaml/.yml through yaml-cpp (scalars typed as bool/int/float/string by their text), else JSON.
nlohmann::json load_config_file(const std::filesystem::path& path);
// A YAML document in memory (tests, inline overrides); `where` names it in errors.
nlohmann::json parse_yaml(const std::string& text, const std::string& where);

}  // namespace hallo
