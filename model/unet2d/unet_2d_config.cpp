#include "model/unet2d/unet_2d_config.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "core/error.h"
#include "model/io/hf_config.h"

namespace hallo::model {

UNet2DConfig UNet2DConfig::sd15() { return UNet2DConfig{}; }

UNet2DConfig UNet2DConfig::tiny() {
  UNet2DConfig c;
  c.block_out_channels = {32, 32, 64, 64};
  c.cross_attention_dim = 40;
  c.norm_num_groups = 8;
  return c;
}

UNet2DConfig UNet2DConfig::from_json(const nlohmann::json& j, const std::string& where) {
  io::JsonFields f(j, where);
  UNet2DConfig c;
  c.in_channels = f.get_or<int64_t>("in_channels", c.in_channels);
  c.out_channels = f.get_or<int64_t>("out_channels", c.out_channels);
  c.block_out_channels = f.get_or<std::vector<int64_t>>("block_out_channels", c.block_out_channels);
  c.down_block_types = f.get_or<std::vector<std::string>>("down_block_types", c.down_block_types);
  c.up_block_types = f.get_or<std::vector<std::string>>("up_block_types", c.up_block_types);
  c.mid_block_type = f.get_or<std::string>("mid_block_type", c.mid_block_type);
  c.layers_per_block = f.get_or<int64_t>("layers_per_block", c.layers_per_block);
  c.cross_attention_dim = f.get_or<int64_t>("cross_attention_dim", c.cross_attention_dim);
  c.norm_num_groups = f.get_or<int64_t>("norm_num_groups", c.norm_num_groups);
  c.norm_eps = f.get_or<double>("norm_eps", c.norm_eps);
  c.flip_sin_to_cos = f.get_or<bool>("flip_sin_to_cos", c.flip_sin_to_cos);
  c.freq_shift = f.get_or<double>("freq_shift", c.freq_shift);
  c.use_linear_projection = f.get_or<bool>("use_linear_projection", c.use_linear_projection);
  c.downsample_padding = f.get_or<int64_t>("downsample_padding", c.downsample_padding);
  c.mid_block_scale_factor = f.get_or<double>("mid_block_scale_factor", c.mid_block_scale_factor);
  c.transformer_layers_per_block = f.get_or<int64_t>("transformer_layers_per_block", 1);

  // Heads: num_attention_heads if given, else attention_head_dim (diffusers' naming quirk).
  const char* heads_key = f.has("num_attention_heads") ? "num_attention_heads" : "attention_head_dim";
  const size_t nb = c.block_out_channels.size();
  if (f.has(heads_key)) {
    if (f.raw().at(heads_key).is_array()) c.num_attention_heads = f.get<std::vector<int64_t>>(heads_key);
    else c.num_attention_heads.assign(nb, f.get<int64_t>(heads_key));
  } else {
    c.num_attention_heads.assign(nb, 8);
  }

  // Options this implementation does not support must not be silently ignored.
  auto require = [&](const char* key, auto expected) {
    using T = decltype(expected);
    if (f.has(key) && f.get<T>(key) != expected) fail_at(where, "unsupported {} = {}", key, f.raw().at(key).dump());
  };
  require("act_fn", std::string("silu"));
  require("center_input_sample", false);
  require("only_cross_attention", false);
  require("upcast_attention", false);
  require("resnet_time_scale_shift", std::string("default"));
  require("time_embedding_type", std::string("positional"));
  require("conv_in_kernel", int64_t{3});
  require("conv_out_kernel", int64_t{3});
  require("dual_cross_attention", false);
  for (const char* k : {"class_embed_type", "addition_embed_type", "encoder_hid_dim", "time_cond_proj_dim",
                        "num_class_embeds", "time_embedding_dim"})
    if (f.has(k)) fail_at(where, "unsupported {} = {}", k, f.raw().at(k).dump());
  if (f.has("transformer_layers_per_block") && f.raw().at("transformer_layers_per_block").is_array())
    fail_at(where, "per-block transformer_layers_per_block is not supported");
  c.validate(where);
  return c;
}

BlockPlan UNet2DConfig::down_block(int64_t i) const {
  const auto& ch = block_out_channels;
  const int64_t n = static_cast<int64_t>(ch.size());
  BlockPlan p;
  p.in_channels = i == 0 ? ch[0] : ch[i - 1];
  p.out_channels = ch[i];
  p.layers = layers_per_block;
  p.heads = num_attention_heads[i];
  p.cross_attention = down_block_types[i].rfind("CrossAttnDownBlock", 0) == 0;
  p.resample = i != n - 1;
  return p;
}

BlockPlan UNet2DConfig::up_block(int64_t i) const {
  const auto& ch = block_out_channels;
  const int64_t n = static_cast<int64_t>(ch.size());
  BlockPlan p;
  p.out_channels = ch[n - 1 - i];
  p.in_channels = ch[std::max<int64_t>(n - 2 - i, 0)];
  p.prev_output_channels = i == 0 ? ch.back() : ch[n - i];
  p.layers = layers_per_block + 1;
  p.heads = num_attention_heads[n - 1 - i];
  p.cross_attention = up_block_types[i].rfind("CrossAttnUpBlock", 0) == 0;
  p.resample = i != n - 1;
  return p;
}

void UNet2DConfig::validate(const std::string& where) const {
  const size_t n = block_out_channels.size();
  if (n == 0) fail_at(where, "block_out_channels is empty");
  if (down_block_types.size() != n || up_block_types.size() != n)
    fail_at(where, "down_block_types ({}) and up_block_types ({}) must both have {} entries like block_out_channels",
            down_block_types.size(), up_block_types.size(), n);
  if (num_attention_heads.size() != n) fail_at(where, "attention heads list must have {} entries", n);
  for (const auto& t : down_block_types)
    if (t != "CrossAttnDownBlock2D" && t != "DownBlock2D") fail_at(where, "unsupported down block type '{}'", t);
  for (const auto& t : up_block_types)
    if (t != "CrossAttnUpBlock2D" && t != "UpBlock2D") fail_at(where, "unsupported up block type '{}'", t);
  if (mid_block_type != "UNetMidBlock2DCrossAttn") fail_at(where, "unsupported mid_block_type '{}'", mid_block_type);
  for (size_t i = 0; i < n; ++i) {
    if (block_out_channels[i] % norm_num_groups != 0)
      fail_at(where, "block_out_channels[{}] = {} is not divisible by norm_num_groups {}", i, block_out_channels[i], norm_num_groups);
    if (num_attention_heads[i] <= 0 || block_out_channels[i] % num_attention_heads[i] != 0)
      fail_at(where, "block_out_channels[{}] = {} is not divisible by {} heads", i, block_out_channels[i], num_attention_heads[i]);
  }
  if (layers_per_block <= 0) fail_at(where, "layers_per_block must be positive");
}

}  // namespace hallo::model
