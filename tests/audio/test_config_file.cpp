// core/config_file: YAML scalars get the JSON type a reader expects, JSON passes
// through unchanged, and every failure names the file (and line for YAML).
#include <gtest/gtest.h>

#include <functional>

#include "audio_test_util.h"
#include "core/config_file.h"
#include "core/error.h"

namespace hallo {
namespace {

using audio::testing::TempDir;
using audio::testing::message_of;
using audio::testing::write_text;

TEST(ConfigFile, YamlScalarsAreTyped) {
  TempDir tmp;
  const auto p = tmp.path() / "audio.yaml";
  write_text(p,
             "count: 42\n"
             "negative: -7\n"
             "ratio: 2.5\n"
             "tiny: 1e-3\n"
             "on: true\n"
             "off: False\n"
             "name: wav2vec2\n"
             "quoted_int: \"123\"\n"
             "single_quoted: '4.5'\n"
             "quoted_bool: \"true\"\n"
             "nothing: null\n"
             "tilde: ~\n"
             "empty:\n"
             "path: ./weights/model.bin\n");
  const auto j = load_config_file(p);
  ASSERT_TRUE(j.is_object());
  EXPECT_TRUE(j["count"].is_number_integer());
  EXPECT_EQ(j["count"].get<int64_t>(), 42);
  EXPECT_EQ(j["negative"].get<int64_t>(), -7);
  EXPECT_TRUE(j["ratio"].is_number_float());
  EXPECT_DOUBLE_EQ(j["ratio"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(j["tiny"].get<double>(), 1e-3);
  EXPECT_EQ(j["on"], nlohmann::json(true));
  EXPECT_EQ(j["off"], nlohmann::json(false));
  EXPECT_EQ(j["name"], nlohmann::json("wav2vec2"));
  EXPECT_TRUE(j["quoted_int"].is_string());
  EXPECT_EQ(j["quoted_int"].get<std::string>(), "123");
  EXPECT_EQ(j["single_quoted"], nlohmann::json("4.5"));
  EXPECT_EQ(j["quoted_bool"], nlohmann::json("true"));
  EXPECT_TRUE(j["nothing"].is_null());
  EXPECT_TRUE(j["tilde"].is_null());
  EXPECT_TRUE(j.contains("empty"));
  EXPECT_TRUE(j["empty"].is_null());
  EXPECT_EQ(j["path"], nlohmann::json("./weights/model.bin"));
}

TEST(ConfigFile, YamlListsAndNestedMaps) {
  TempDir tmp;
  const auto p = tmp.path() / "nested.yml";  // the .yml spelling too
  write_text(p,
             "flow: [1, 2.5, x, \"7\"]\n"
             "block:\n"
             "  - a\n"
             "  - 3\n"
             "audio:\n"
             "  extractor: logmel\n"
             "  separator:\n"
             "    dim_t: 256\n"
             "    overlap: 0.5\n"
             "    output_is_vocals: false\n"
             "  layers_list:\n"
             "    - {k: 1}\n"
             "    - [true, null]\n");
  const auto j = load_config_file(p);
  EXPECT_EQ(j["flow"], nlohmann::json::parse(R"([1, 2.5, "x", "7"])"));
  EXPECT_EQ(j["block"], nlohmann::json::parse(R"(["a", 3])"));
  const auto& a = j["audio"];
  EXPECT_EQ(a["extractor"], nlohmann::json("logmel"));
  EXPECT_EQ(a["separator"]["dim_t"].get<int64_t>(), 256);
  EXPECT_DOUBLE_EQ(a["separator"]["overlap"].get<double>(), 0.5);
  EXPECT_EQ(a["separator"]["output_is_vocals"], nlohmann::json(false));
  EXPECT_EQ(a["layers_list"], nlohmann::json::parse(R"([{"k": 1}, [true, null]])"));
}

TEST(ConfigFile, JsonPassesThrough) {
  TempDir tmp;
  const auto p = tmp.path() / "audio.json";
  const std::string text =
      R"({"fps": 30, "ratio": 2.0, "quoted": "123", "flag": true, "none": null,
          "list": [1, "a", {"b": [2]}], "nested": {"x": {"y": -1.5}}})";
  write_text(p, text);
  const auto j = load_config_file(p);
  EXPECT_EQ(j, nlohmann::json::parse(text));
  EXPECT_TRUE(j["ratio"].is_number_float());  // JSON keeps 2.0 a float
  EXPECT_TRUE(j["quoted"].is_string());
}

TEST(ConfigFile, InlineYamlMatchesTheFile) {
  const auto j = parse_yaml("a: 1\nb: [x, 2]\n", "inline");
  EXPECT_EQ(j, nlohmann::json::parse(R"({"a": 1, "b": ["x", 2]})"));
}

TEST(ConfigFile, YamlSyntaxErrorNamesFileAndLine) {
  TempDir tmp;
  const auto p = tmp.path() / "broken.yaml";
  write_text(p,
             "fps: 25\n"
             "layers: all\n"
             "name: wav2vec2: base\n"  // a second ':' on one line: illegal map value
             "other: 1\n");
  const std::string msg = message_of([&] { load_config_file(p); });
  EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 3"), std::string::npos) << msg;
}

TEST(ConfigFile, YamlSyntaxErrorLaterInTheFile) {
  TempDir tmp;
  const auto p = tmp.path() / "broken2.yaml";
  write_text(p, "a: 1\nb: 2\nc: 3\nd: [1, 2]]\ne: 5\n");  // stray ']' on line 4
  const std::string msg = message_of([&] { load_config_file(p); });
  EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 4"), std::string::npos) << msg;
}

TEST(ConfigFile, InlineYamlErrorNamesItsSource) {
  const std::string msg = message_of([] { parse_yaml("a: [1, 2\n", "--set override"); });
  EXPECT_EQ(msg.rfind("--set override", 0), 0u) << msg;
}

TEST(ConfigFile, JsonSyntaxErrorNamesFile) {
  TempDir tmp;
  const auto p = tmp.path() / "broken.json";
  write_text(p, "{\"fps\": 25,\n \"layers\": }\n");
  const std::string msg = message_of([&] { load_config_file(p); });
  EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("JSON"), std::string::npos) << msg;
}

TEST(ConfigFile, MissingFileIsNamed) {
  TempDir tmp;
  for (const char* name : {"absent.yaml", "absent.json"}) {
    const auto p = tmp.path() / name;
    const std::string msg = message_of([&] { load_config_file(p); });
    EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace hallo
