#pragma once
// HalloNet: the five trained networks of upstream's `Net`, registered under the
// net.pth prefixes (reference_unet., denoising_unet., face_locator., imageproj.,
// audioproj.) so a released net.pth loads strictly, name for name.
#include <nlohmann/json_fwd.hpp>
#include <torch/nn/module.h>

#include <filesystem>
#include <string>

#include "model/hallo/audio_proj.h"
#include "model/hallo/face_locator.h"
#include "model/hallo/image_proj.h"
#include "model/hallo/unet_3d.h"
#include "model/io/state_dict.h"
#include "model/nn/loader.h"
#include "model/nn/lora.h"
#include "model/unet2d/unet_2d_condition.h"

namespace hallo::model {

struct HalloNetConfig {
  UNet2DConfig reference_unet;  // reference_net = true
  UNet3DConfig denoising_unet;
  FaceLocatorConfig face_locator;
  ImageProjConfig imageproj;
  AudioProjConfig audioproj;
  // Upstream's stage-1 Net has no audio projection (and its UNet no audio or motion
  // modules); such nets, and their checkpoints, have no audioproj.* keys.
  bool has_audioproj = true;
  // LoRA adapters the net carries (a run that trained them, unmerged): built with the
  // net so its weights, adapters included, load strictly. Absent: none.
  nn::LoraConfig lora;

  static HalloNetConfig hallo();  // SD1.5 sizes, Hallo's modules
  // {"reference_unet": {...}, "denoising_unet": {...}, "face_locator": {...}, "imageproj": {...}, "audioproj": {...}}
  // ("audioproj" optional: absent in stage-1 nets; "lora" optional: nn::LoraConfig)
  static HalloNetConfig from_json(const nlohmann::json& j, const std::string& where);
};

class HalloNetImpl : public torch::nn::Module {
 public:
  explicit HalloNetImpl(const HalloNetConfig& c);

  // Strict by default: every missing, unexpected or mis-shaped key is named.
  nn::LoadReport load(const io::StateDict& net_pth, bool strict = true);

  // Training from scratch: SD1.5 UNet weights into both UNets (minus the reference
  // net's output head), AnimateDiff motion-module weights into the denoising UNet;
  // audio modules, projections and the face locator keep their fresh init. Every
  // shape mismatch is reported (never silently re-initialised); in strict mode it throws.
  struct AssembleReport {
    nn::LoadReport reference, denoising, motion;
    std::string summary() const;
  };
  AssembleReport assemble(const io::StateDict& sd_unet, const io::StateDict& motion_module, bool strict = true);

  UNet2DConditionModel reference_unet{nullptr};
  UNet3DConditionModel denoising_unet{nullptr};
  FaceLocator face_locator{nullptr};
  ImageProjModel imageproj{nullptr};
  AudioProjModel audioproj{nullptr};  // null in stage-1 nets
};
TORCH_MODULE(HalloNet);

}  // namespace hallo::model
