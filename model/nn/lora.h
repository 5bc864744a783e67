#pragma once
// LoRA (Hu et al. 2021) on the attention projections of any module tree, with PEFT's
// conventions so adapters move between hallo-cpp and Python:
//  - an adapter sits on a projection of a diffusers Attention (to_q, to_k, to_v,
//    to_out.0): reference net, spatial, audio and motion attention alike;
//  - its tensors are "<module>.lora_A.weight" [rank, in] and "<module>.lora_B.weight"
//    [out, rank], <module> in net.pth layout ("denoising_unet.up_blocks.1.attentions.0.
//    transformer_blocks.0.attn1.to_q"); a "base_model.model." prefix (PEFT) is accepted;
//  - init: A kaiming-uniform (a = sqrt 5, PEFT's default), B zeros, so a fresh adapter
//    leaves the outputs exactly the base net's;
//  - output = W x + b + alpha / rank * multiplier * B A x; the multiplier is the
//    inference-time scale (`--lora-scale`).
// An adapter file is safetensors with the adapters only and
// {"format": "hallo-lora", "rank", "alpha", "targets", "patterns"} in its metadata.
#include <torch/nn/module.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "model/io/state_dict.h"
#include "model/nn/lora_config.h"

namespace hallo::nn {

// The projections `c` selects under `root`: "<attention name>.<target>" in module order.
// Throws when a pattern is not a regex or matches no attention, or a target is unknown.
std::vector<std::string> lora_sites(torch::nn::Module& root, const LoraConfig& c);

// Fresh adapters on every site (A kaiming-uniform from a generator seeded with `seed`,
// B zeros), on the projections' device and dtype. Returns the sites.
std::vector<std::string> attach_lora(torch::nn::Module& root, const LoraConfig& c, uint64_t seed);

// Sets every adapter's runtime multiplier (1: as trained, 0: the base net); returns
// how many adapters there are.
size_t set_lora_multiplier(torch::nn::Module& root, double multiplier);

// The adapters' tensors (PEFT names, module order) and the file's metadata.
std::vector<io::TensorRecord> lora_records(torch::nn::Module& root);
std::map<std::string, std::string> lora_metadata(const LoraConfig& c);
// Writes the adapters of `root` (atomic: temp name, then rename).
void save_lora(const std::filesystem::path& file, torch::nn::Module& root, const LoraConfig& c);

struct LoraFile {
  std::filesystem::path path;
  LoraConfig config;  // rank and alpha from the metadata (rank also checked against the tensors)
  io::StateDict adapters;  // names without any "base_model.model." prefix
};
// Reads and checks an adapter file: metadata present, every lora_A has its lora_B,
// ranks agree. Throws naming the file and the problem.
LoraFile read_lora(const std::filesystem::path& file);

// Attaches the file's adapters to `root` (which has none on those projections) and loads
// them. Strict: an adapter for a module that does not exist or is not an attention
// projection, or with the wrong shape, is an error naming it.
void load_lora(torch::nn::Module& root, const LoraFile& f, double multiplier = 1);

// Folds adapters into their base weights: W += factor * B A for every "<m>.lora_A.weight"
// / "<m>.lora_B.weight" pair in `adapters`, and removes those pairs from `net` if present
// there. `factor` = alpha / rank * multiplier. A pair whose "<m>.weight" is not in `net`,
// or whose shapes do not fit, is an error naming it. Arithmetic in float64, stored back
// in the weight's dtype.
void merge_lora(std::vector<io::TensorRecord>& net, const io::StateDict& adapters, double factor,
                const std::string& where);
// The same with the adapters `net` carries itself (a LoRA run's model folder).
void merge_own_lora(std::vector<io::TensorRecord>& net, double factor, const std::string& where);

}  // namespace hallo::nn
