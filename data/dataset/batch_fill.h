#pragma once
// Per-clip conditioning tensors shared by both stages: face-locator region,
// face embedding and the three mask pyramids.
#include <ATen/ATen.h>

#include <array>
#include <string>
#include <vector>

#include "data/dataset/samplers.h"
#include "data/shard/clip_record.h"

namespace hallo::data {

using ConditionTensors = ClipConditions;

ConditionTensors alloc_conditions(int64_t batch, int height, int width, int emb_dim);

// Fills element b from a clip read with ShardReader::read_clip(i, false).
void fill_conditions(ConditionTensors& t, int64_t b, const ClipRecord& clip,
                     const std::string& where);

// Latent tensors [batch, C, height/8, width/8] (uninitialised), or undefined when channels is 0.
at::Tensor alloc_latents(at::IntArrayRef batch_dims, int channels, int height, int width);

// Copies the VAE posterior mean/std of `frames` of a clip read with
// ShardReader::read_clip(i, false) into mean_dst / std_dst [K,C,h,w], K = frames.size().
void put_latents(at::Tensor mean_dst, at::Tensor std_dst, const ClipRecord& clip,
                 const std::vector<int>& frames, const std::string& where);

// Runs fn(b) for every batch element, in parallel where libtorch has threads.
// Exceptions propagate (the first one wins).
template <typename Fn>
void for_each_sample(int64_t batch, Fn&& fn);

}  // namespace hallo::data

#include <ATen/Parallel.h>

namespace hallo::data {

template <typename Fn>
void for_each_sample(int64_t batch, Fn&& fn) {
  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) fn(b);
  });
}

}  // namespace hallo::data
