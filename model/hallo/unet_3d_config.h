#pragma once
// Typed config of Hallo's denoising UNet3DConditionModel: the SD UNet2D fields
// (block types mapped 3D -> 2D) plus the Hallo kwargs (motion / audio modules)
// and switches for upstream quirks.
#include <c10/core/ScalarType.h>
#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

#include "model/unet2d/unet_2d_config.h"

namespace hallo::model {

// AnimateDiff "Vanilla" motion module kwargs (Hallo: 8 heads, 1 block, 2 temporal self-attentions, PE 32).
struct MotionModuleConfig {
  int64_t num_attention_heads = 8;
  int64_t num_transformer_block = 1;
  std::vector<std::string> attention_block_types{"Temporal_Self", "Temporal_Self"};
  bool temporal_position_encoding = true;
  int64_t temporal_position_encoding_max_len = 32;
  int64_t temporal_attention_dim_div = 1;
  int64_t norm_num_groups = 32;  // upstream never passes it: always the default 32
};

struct UNet3DConfig {
  UNet2DConfig base;  // block types kept in their 2D spelling (same topology)
  bool use_motion_module = true;
  bool use_audio_module = true;
  bool motion_module_mid_block = true;
  bool motion_module_decoder_only = false;
  std::vector<int64_t> motion_module_resolutions{1, 2, 4, 8};
  MotionModuleConfig motion;
  int64_t audio_attention_dim = 768;
  std::vector<std::string> stack_enable_blocks_name{"up", "down", "mid"};
  std::vector<int64_t> stack_enable_blocks_depth{0, 1, 2, 3};
  // true: GroupNorm per frame. false (upstream's stage-1 UNet) normalises over all
  // frames at once; identical for the single frames of stage 1, the only case supported.
  bool use_inflated_groupnorm = true;
  // Quirk (upstream train mode + gradient checkpointing, also used at inference):
  // DownBlock3D / UpBlock3D run only their resnets. false runs their motion modules
  // on the current frames (upstream's non-checkpointed path).
  bool skip_motion_in_plain_blocks = true;
  // Quirk: upstream hands the reference bank over as float16 even in float32 runs.
  c10::ScalarType bank_dtype = c10::ScalarType::Half;
  // Quirk: frame rows read sample (row % B)'s reference (see ReadOptions).
  bool tile_reference_rows = true;
  // Quirk: without a reference bank (image condition dropped in training) the motion
  // modules get 4 zero frames in front, whatever the number of motion frames.
  int64_t zero_motion_frames = 4;

  static UNet3DConfig hallo();  // SD1.5 sizes, Hallo kwargs (768-d audio)
  static UNet3DConfig tiny();   // the goldens' widths, audio dim 48
  static UNet3DConfig from_json(const nlohmann::json& j, const std::string& where);
  void validate(const std::string& where) const;

  bool stack_enabled(const std::string& block_name, int64_t depth) const;
};

}  // namespace hallo::model
