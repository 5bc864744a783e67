#include "model/hallo/hallo_net.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace hallo::model {

HalloNetConfig HalloNetConfig::hallo() {
  HalloNetConfig c;
  c.reference_unet = UNet2DConfig::sd15();
  c.reference_unet.reference_net = true;
  c.denoising_unet = UNet3DConfig::hallo();
  c.face_locator = FaceLocatorConfig::hallo();
  c.imageproj = ImageProjConfig::hallo();
  c.audioproj = AudioProjConfig::hallo();
  return c;
}

HalloNetConfig HalloNetConfig::from_json(const nlohmann::json& j, const std::string& where) {
  auto part = [&](const char* key) -> const nlohmann::json& {
    if (!j.is_object() || !j.contains(key) || !j.at(key).is_object()) fail_at(where, "missing object '{}'", key);
    return j.at(key);
  };
  HalloNetConfig c;
  c.reference_unet = UNet2DConfig::from_json(part("reference_unet"), where + ":reference_unet");
  c.reference_unet.reference_net = true;
  c.denoising_unet = UNet3DConfig::from_json(part("denoising_unet"), where + ":denoising_unet");
  c.face_locator = FaceLocatorConfig::from_json(part("face_locator"), where + ":face_locator");
  c.imageproj = ImageProjConfig::from_json(part("imageproj"), where + ":imageproj");
  c.has_audioproj = j.contains("audioproj") && !j.at("audioproj").is_null();
  if (c.has_audioproj) c.audioproj = AudioProjConfig::from_json(part("audioproj"), where + ":audioproj");
  if (j.contains("lora")) c.lora = nn::LoraConfig::from_json(j.at("lora"), where + ":lora");
  return c;
}

HalloNetImpl::HalloNetImpl(const HalloNetConfig& c) {
  reference_unet = register_module("reference_unet", UNet2DConditionModel(c.reference_unet));
  denoising_unet = register_module("denoising_unet", UNet3DConditionModel(c.denoising_unet));
  face_locator = register_module("face_locator", FaceLocator(c.face_locator));
  imageproj = register_module("imageproj", ImageProjModel(c.imageproj));
  if (c.has_audioproj) audioproj = register_module("audioproj", AudioProjModel(c.audioproj));
  // Adapters' values come from the weights loaded next; the init seed is irrelevant.
  if (c.lora.enabled()) nn::attach_lora(*this, c.lora, 0);
}

nn::LoadReport HalloNetImpl::load(const io::StateDict& net_pth, bool strict) {
  return nn::load_weights(*this, net_pth, nn::LoadOptions{strict, {}});
}

std::string HalloNetImpl::AssembleReport::summary() const {
  return "reference_unet <- " + reference.summary() + "\ndenoising_unet <- " + denoising.summary() +
         "\ndenoising_unet motion modules <- " + motion.summary();
}

HalloNetImpl::AssembleReport HalloNetImpl::assemble(const io::StateDict& sd_unet, const io::StateDict& motion_module,
                                                    bool strict) {
  AssembleReport rep;
  // The reference net has no output head: drop those SD keys instead of calling them unexpected.
  nn::LoadOptions ref_opts{false, [](const std::string& k) {
                             return (k.rfind("conv_norm_out.", 0) == 0 || k.rfind("conv_out.", 0) == 0) ? std::string() : k;
                           }};
  rep.reference = nn::load_weights(*reference_unet, sd_unet, ref_opts);
  // The denoising UNet gets every SD key; its audio/motion modules stay "missing" here by design.
  rep.denoising = nn::load_weights(*denoising_unet, sd_unet, nn::LoadOptions{false, {}});
  rep.motion = nn::load_weights(*denoising_unet, motion_module, nn::LoadOptions{false, {}});
  if (strict) {
    std::vector<std::string> problems;
    auto add = [&](const char* what, const std::vector<std::string>& v) {
      for (const auto& k : v) problems.push_back(std::string(what) + k);
    };
    add("reference_unet unexpected: ", rep.reference.unexpected);
    add("reference_unet missing: ", rep.reference.missing);
    add("reference_unet mis-shaped: ", rep.reference.mismatched);
    add("denoising_unet unexpected (SD UNet): ", rep.denoising.unexpected);
    add("denoising_unet mis-shaped (SD UNet): ", rep.denoising.mismatched);
    for (const auto& k : rep.motion.unexpected) problems.push_back("motion module unexpected: " + k);
    add("motion module mis-shaped: ", rep.motion.mismatched);
    // What neither source covers must be exactly the audio modules (trained fresh in stage 2).
    for (const auto& k : rep.denoising.missing) {
      const bool motion = k.find("motion_modules.") != std::string::npos;
      const bool audio = k.find("audio_modules.") != std::string::npos;
      if (!motion && !audio) problems.push_back("denoising_unet missing from the SD UNet: " + k);
    }
    for (const auto& k : rep.motion.missing)
      if (k.find("motion_modules.") != std::string::npos) problems.push_back("motion module missing: " + k);
    if (!problems.empty()) {
      std::string msg = "assembling HalloNet from " + sd_unet.weights().source + " and " + motion_module.weights().source + ":";
      for (const auto& p : problems) msg += "\n  " + p;
      throw Error(msg);
    }
  }
  return rep;
}

}  // namespace hallo::model
