#pragma once
// Typed config of diffusers UNet2DConditionModel (only what SD1.x/2.x-style
// UNets and Hallo use; unsupported options are rejected, not ignored).
#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

namespace hallo::model {

// Channel layout of one down or up block, derived from the config (shared by the
// 2D UNet, the ReferenceNet and the inflated UNet3D so the bookkeeping lives once).
struct BlockPlan {
  int64_t in_channels = 0, out_channels = 0;
  int64_t prev_output_channels = 0;  // up blocks: channels arriving from the block below
  int64_t layers = 0, heads = 0;
  bool cross_attention = false, resample = false;
};

// Copies a plan into any block-options struct with the same field names
// (BlockOptions for 2D, Block3DOptions for the inflated UNet3D).
template <typename Options>
void apply_plan(Options& o, const BlockPlan& p) {
  o.in_channels = p.in_channels;
  o.out_channels = p.out_channels;
  o.prev_output_channels = p.prev_output_channels;
  o.layers = p.layers;
  o.heads = p.heads;
  o.cross_attention = p.cross_attention;
  o.resample = p.resample;
}

struct UNet2DConfig {
  int64_t in_channels = 4, out_channels = 4;
  std::vector<int64_t> block_out_channels{320, 640, 1280, 1280};
  std::vector<std::string> down_block_types{"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"};
  std::vector<std::string> up_block_types{"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"};
  std::string mid_block_type = "UNetMidBlock2DCrossAttn";
  int64_t layers_per_block = 2;
  // Heads per block. diffusers reads `attention_head_dim` as the head count when
  // `num_attention_heads` is null (SD1.5: 8 heads); both forms are accepted.
  std::vector<int64_t> num_attention_heads{8, 8, 8, 8};
  int64_t cross_attention_dim = 768;
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-5;
  bool flip_sin_to_cos = true;
  double freq_shift = 0;
  bool use_linear_projection = false;
  int64_t downsample_padding = 1;
  double mid_block_scale_factor = 1.0;
  int64_t transformer_layers_per_block = 1;
  // Hallo's ReferenceNet: no conv_norm_out / conv_out; forward returns the last
  // up-block's features (net.pth's reference_unet.* has 680 of the 684 keys).
  bool reference_net = false;

  static UNet2DConfig sd15();
  static UNet2DConfig tiny();  // the goldens' widths: [32,32,64,64], 8 groups, cross dim 40
  static UNet2DConfig from_json(const nlohmann::json& j, const std::string& where);
  void validate(const std::string& where) const;
  int64_t time_embed_dim() const { return block_out_channels.front() * 4; }
  BlockPlan down_block(int64_t i) const;
  BlockPlan up_block(int64_t i) const;
};

}  // namespace hallo::model
