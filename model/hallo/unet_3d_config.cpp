#include "model/hallo/unet_3d_config.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "core/error.h"
#include "model/io/hf_config.h"

namespace hallo::model {

namespace {

// "CrossAttnDownBlock3D" -> "CrossAttnDownBlock2D" so UNet2DConfig parses the shared fields.
std::string to_2d(std::string t, const std::string& where, const char* field) {
  const auto pos = t.rfind("3D");
  if (pos == std::string::npos) fail_at(where, "field '{}': '{}' is not a 3D block type", field, t);
  t.replace(pos, 2, "2D");
  return t;
}

}  // namespace

UNet3DConfig UNet3DConfig::hallo() { return UNet3DConfig{}; }

UNet3DConfig UNet3DConfig::tiny() {
  UNet3DConfig c;
  c.base = UNet2DConfig::tiny();
  c.audio_attention_dim = 48;
  return c;
}

UNet3DConfig UNet3DConfig::from_json(const nlohmann::json& j, const std::string& where) {
  nlohmann::json j2 = j;
  for (const char* k : {"down_block_types", "up_block_types"}) {
    if (!j2.contains(k) || !j2[k].is_array()) continue;
    for (auto& t : j2[k])
      if (t.is_string()) t = to_2d(t.get<std::string>(), where, k);
  }
  if (j2.contains("mid_block_type") && j2["mid_block_type"].is_string())
    j2["mid_block_type"] = to_2d(j2["mid_block_type"].get<std::string>(), where, "mid_block_type");
  UNet3DConfig c;
  c.base = UNet2DConfig::from_json(j2, where);

  io::JsonFields f(j, where);
  c.use_motion_module = f.get_or<bool>("use_motion_module", c.use_motion_module);
  c.use_audio_module = f.get_or<bool>("use_audio_module", c.use_audio_module);
  c.motion_module_mid_block = f.get_or<bool>("motion_module_mid_block", c.motion_module_mid_block);
  c.motion_module_decoder_only = f.get_or<bool>("motion_module_decoder_only", c.motion_module_decoder_only);
  c.motion_module_resolutions = f.get_or<std::vector<int64_t>>("motion_module_resolutions", c.motion_module_resolutions);
  c.audio_attention_dim = f.get_or<int64_t>("audio_attention_dim", c.audio_attention_dim);
  c.stack_enable_blocks_name = f.get_or<std::vector<std::string>>("stack_enable_blocks_name", c.stack_enable_blocks_name);
  c.stack_enable_blocks_depth = f.get_or<std::vector<int64_t>>("stack_enable_blocks_depth", c.stack_enable_blocks_depth);
  c.use_inflated_groupnorm = f.get_or<bool>("use_inflated_groupnorm", c.use_inflated_groupnorm);
  const auto type = f.get_or<std::string>("motion_module_type", "Vanilla");
  if (type != "Vanilla") fail_at(where, "unsupported motion_module_type = '{}' (only Vanilla)", type);
  for (const char* k : {"unet_use_cross_frame_attention", "unet_use_temporal_attention"})
    if (f.get_or<bool>(k, false)) fail_at(where, "unsupported {} = true", k);
  if (f.has("motion_module_kwargs")) {
    auto m = f.object("motion_module_kwargs");
    auto& mm = c.motion;
    mm.num_attention_heads = m.get_or<int64_t>("num_attention_heads", mm.num_attention_heads);
    mm.num_transformer_block = m.get_or<int64_t>("num_transformer_block", mm.num_transformer_block);
    mm.attention_block_types = m.get_or<std::vector<std::string>>("attention_block_types", mm.attention_block_types);
    mm.temporal_position_encoding = m.get_or<bool>("temporal_position_encoding", mm.temporal_position_encoding);
    mm.temporal_position_encoding_max_len =
        m.get_or<int64_t>("temporal_position_encoding_max_len", mm.temporal_position_encoding_max_len);
    mm.temporal_attention_dim_div = m.get_or<int64_t>("temporal_attention_dim_div", mm.temporal_attention_dim_div);
    if (m.has("cross_frame_attention_mode")) fail_at(where, "unsupported motion_module_kwargs.cross_frame_attention_mode");
  }
  c.validate(where);
  return c;
}

void UNet3DConfig::validate(const std::string& where) const {
  base.validate(where);
  if (zero_motion_frames < 0) fail_at(where, "zero_motion_frames must be >= 0");
  if (audio_attention_dim <= 0) fail_at(where, "audio_attention_dim must be positive");
  const auto& m = motion;
  for (const auto& t : m.attention_block_types)
    if (t != "Temporal_Self") fail_at(where, "motion_module_kwargs.attention_block_types: unsupported '{}'", t);
  if (m.num_attention_heads <= 0 || m.temporal_attention_dim_div <= 0 || m.num_transformer_block <= 0)
    fail_at(where, "motion_module_kwargs: heads, blocks and temporal_attention_dim_div must be positive");
  if (use_motion_module)
    for (auto ch : base.block_out_channels) {
      if (ch % m.norm_num_groups != 0)
        fail_at(where, "block_out_channels {} is not divisible by the motion module's 32 norm groups", ch);
      if (ch % (m.num_attention_heads * m.temporal_attention_dim_div) != 0)
        fail_at(where, "block_out_channels {} is not divisible by motion_module_kwargs.num_attention_heads", ch);
    }
}

bool UNet3DConfig::stack_enabled(const std::string& block_name, int64_t depth) const {
  return std::find(stack_enable_blocks_name.begin(), stack_enable_blocks_name.end(), block_name) !=
             stack_enable_blocks_name.end() &&
         std::find(stack_enable_blocks_depth.begin(), stack_enable_blocks_depth.end(), depth) !=
             stack_enable_blocks_depth.end();
}

}  // namespace hallo::model
