#include "eval/nets/frozen_bn.h"

#include <ATen/ATen.h>

namespace hallo::eval::nets {

FrozenBatchNormImpl::FrozenBatchNormImpl(int64_t channels, double eps_, bool with_num_batches_tracked) : eps(eps_) {
  weight = register_parameter("weight", at::ones({channels}), /*requires_grad=*/false);
  bias = register_parameter("bias", at::zeros({channels}), false);
  running_mean = register_buffer("running_mean", at::zeros({channels}));
  running_var = register_buffer("running_var", at::ones({channels}));
  if (with_num_batches_tracked) register_buffer("num_batches_tracked", at::zeros({}, at::kLong));
}

at::Tensor FrozenBatchNormImpl::forward(const at::Tensor& x) {
  return at::batch_norm(x, weight, bias, running_mean, running_var, /*training=*/false, 0.0, eps,
                        /*cudnn_enabled=*/true);
}

}  // namespace hallo::eval::nets
