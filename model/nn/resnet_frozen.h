#pragma once
// The input-gradient-only path of a frozen ResnetBlock2D (see ResnetBlock2DImpl::frozen).
#include <ATen/core/Tensor.h>

namespace hallo::nn {

class ResnetBlock2DImpl;

// x: [B, Cin, H, W] (requires grad), temb: [B, T] without grad or undefined.
at::Tensor frozen_resnet_forward(ResnetBlock2DImpl& block, const at::Tensor& x, const at::Tensor& temb);

}  // namespace hallo::nn
