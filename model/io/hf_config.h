#pragma once
// JSON plumbing for diffusers / HF config.json files. Model config structs
// (UNet2DConditionModelConfig, ...) read their fields through JsonFields so
// every missing or mistyped field is reported with the file and field name.
#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace hallo::io {

// Parses a JSON file; errors name the file and the parse position.
nlohmann::json load_json_file(const std::filesystem::path& path);
nlohmann::json parse_json_text(const std::string& text, const std::string& where);

class JsonFields {
 public:
  // `where` is used in messages, e.g. "unet/config.json".
  JsonFields(const nlohmann::json& obj, std::string where);
  ~JsonFields();

  bool has(const std::string& key) const;  // present and not null
  // Required field: throws "<where>: missing required field 'k'" or
  // "<where>: field 'k' is <type>, expected <type>".
  template <typename T>
  T get(const std::string& key) const;
  // Optional field: absent or null gives `fallback`; a wrong type still throws.
  template <typename T>
  T get_or(const std::string& key, T fallback) const;
  // A nested object (e.g. "_harness").
  JsonFields object(const std::string& key) const;
  // Keys present in the file that the model does not know (for warnings).
  std::vector<std::string> unknown_keys(const std::set<std::string>& known) const;
  const std::string& where() const { return where_; }
  const nlohmann::json& raw() const;

 private:
  std::unique_ptr<nlohmann::json> obj_;
  std::string where_;
};

// Supported T: bool, int, int64_t, double, float, std::string and std::vector of those.
extern template bool JsonFields::get<bool>(const std::string&) const;
extern template int JsonFields::get<int>(const std::string&) const;
extern template int64_t JsonFields::get<int64_t>(const std::string&) const;
extern template double JsonFields::get<double>(const std::string&) const;
extern template float JsonFields::get<float>(const std::string&) const;
extern template std::string JsonFields::get<std::string>(const std::string&) const;
extern template std::vector<int> JsonFields::get<std::vector<int>>(const std::string&) const;
extern template std::vector<int64_t> JsonFields::get<std::vector<int64_t>>(const std::string&) const;
extern template std::vector<double> JsonFields::get<std::vector<double>>(const std::string&) const;
extern template std::vector<std::string> JsonFields::get<std::vector<std::string>>(const std::string&) const;
extern template bool JsonFields::get_or<bool>(const std::string&, bool) const;
extern template int JsonFields::get_or<int>(const std::string&, int) const;
extern template int64_t JsonFields::get_or<int64_t>(const std::string&, int64_t) const;
extern template double JsonFields::get_or<double>(const std::string&, double) const;
extern template float JsonFields::get_or<float>(const std::string&, float) const;
extern template std::string JsonFields::get_or<std::string>(const std::string&, std::string) const;
extern template std::vector<int> JsonFields::get_or<std::vector<int>>(const std::string&, std::vector<int>) const;
extern template std::vector<int64_t> JsonFields::get_or<std::vector<int64_t>>(const std::string&, std::vector<int64_t>) const;
extern template std::vector<double> JsonFields::get_or<std::vector<double>>(const std::string&, std::vector<double>) const;
extern template std::vector<std::string> JsonFields::get_or<std::vector<std::string>>(const std::string&, std::vector<std::string>) const;

}  // namespace hallo::io
