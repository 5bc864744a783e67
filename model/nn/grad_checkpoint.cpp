#include "model/nn/grad_checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <ATen/core/ivalue.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <mutex>

#include "model/nn/autocast.h"

namespace hallo::nn {

namespace {

// What backward needs besides the saved tensors: the function, which saved
// tensors are parameters, and the RNG state to replay.
struct Closure : torch::CustomClassHolder {
  UnitFn fn;
  std::vector<int> slots;   // position in fn's input list of each saved input (-1: a parameter)
  size_t num_inputs = 0;    // size of fn's input list (undefined ones included)
  bool reentrant = false;
  at::Device device = at::kCPU;
  at::Tensor rng_state;
  AutocastState autocast;  // the forward's: the recompute runs under it (as torch.utils.checkpoint)
};

at::Generator generator_for(const at::Device& d) { return at::globalContext().defaultGenerator(d); }

at::Tensor get_rng(const at::Device& d) {
  auto gen = generator_for(d);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_rng(const at::Device& d, const at::Tensor& state) {
  auto gen = generator_for(d);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

struct CheckpointFunction : torch::autograd::Function<CheckpointFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, c10::intrusive_ptr<Closure> c,
                                                at::TensorList saved) {
    std::vector<at::Tensor> args(c->num_inputs);
    for (size_t i = 0; i < saved.size(); ++i)
      if (c->slots[i] >= 0) args[static_cast<size_t>(c->slots[i])] = saved[i];
    c->rng_state = get_rng(c->device);
    c->autocast = autocast_state(c->device.type());
    at::Tensor out = c->fn(args);  // grad mode is off here: nothing is kept
    ctx->save_for_backward(saved.vec());
    ctx->saved_data["closure"] = c10::IValue::make_capsule(c);
    return {out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto c = c10::static_intrusive_pointer_cast<Closure>(ctx->saved_data["closure"].toCapsule());
    const auto saved = ctx->get_saved_variables();
    std::vector<at::Tensor> args(c->num_inputs), leaves;
    std::vector<size_t> leaf_index;  // saved index of each leaf
    for (size_t i = 0; i < saved.size(); ++i) {
      if (c->slots[i] < 0) {  // a parameter: differentiate w.r.t. the real tensor
        leaves.push_back(saved[i]);
        leaf_index.push_back(i);
        continue;
      }
      at::Tensor d = saved[i].detach();
      d.requires_grad_(saved[i].requires_grad());
      args[static_cast<size_t>(c->slots[i])] = d;
      if (d.requires_grad()) {
        leaves.push_back(d);
        leaf_index.push_back(i);
      }
    }
    // Replay with the RNG as it was in forward, then put the current state back.
    const at::Tensor now = get_rng(c->device);
    set_rng(c->device, c->rng_state);
    at::Tensor out;
    {
      torch::AutoGradMode enable(true);
      AutocastGuard autocast(c->autocast);
      out = c->fn(args);
    }
    set_rng(c->device, now);

    torch::autograd::variable_list grads(saved.size() + 1);  // [closure, saved...]
    if (!out.requires_grad() || !grad_out[0].defined()) return grads;
    if (c->reentrant) {
      // As torch.utils.checkpoint (reentrant): backward accumulates into every leaf
      // the unit touched (its parameters included); the inputs' grads are returned.
      torch::autograd::backward({out}, {grad_out[0]});
      for (size_t k = 0; k < leaves.size(); ++k) grads[leaf_index[k] + 1] = leaves[k].grad();
    } else if (!leaves.empty()) {
      auto g = torch::autograd::grad({out}, leaves, {grad_out[0]}, /*retain_graph=*/false, /*create_graph=*/false,
                                     /*allow_unused=*/true);
      for (size_t k = 0; k < leaves.size(); ++k) grads[leaf_index[k] + 1] = g[k];
    }
    return grads;
  }
};

}  // namespace

CheckpointPolicy CheckpointPolicy::for_block(const std::string& path) const {
  CheckpointPolicy p = *this;
  if (std::find(keep.begin(), keep.end(), path) != keep.end()) p.recompute = false;
  return p;
}

at::Tensor run_unit(const CheckpointPolicy& policy, const torch::nn::Module& module, const UnitFn& fn,
                    const std::vector<at::Tensor>& inputs) {
  if (!policy.active() || !at::GradMode::is_enabled()) return fn(inputs);
  bool input_needs_grad = false;
  for (const auto& t : inputs) input_needs_grad |= t.defined() && t.requires_grad();
  std::vector<at::Tensor> params;
  for (const auto& p : module.parameters())
    if (p.requires_grad()) params.push_back(p);
  if (!policy.recompute) {
    // Activations kept; only the reentrant gradient rule applies.
    if (policy.reentrant && !input_needs_grad) {
      at::NoGradGuard no_grad;
      return fn(inputs);
    }
    return fn(inputs);
  }
  if (policy.reentrant ? !input_needs_grad : (!input_needs_grad && params.empty())) {
    at::NoGradGuard no_grad;  // nothing here can receive a gradient
    return fn(inputs);
  }
  auto c = c10::make_intrusive<Closure>();
  c->fn = fn;
  c->num_inputs = inputs.size();
  c->reentrant = policy.reentrant;
  std::vector<at::Tensor> saved;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) continue;
    saved.push_back(inputs[i]);
    c->slots.push_back(static_cast<int>(i));
    c->device = inputs[i].device();
  }
  if (!policy.reentrant)
    for (auto& p : params) {
      saved.push_back(p);
      c->slots.push_back(-1);
    }
  return CheckpointFunction::apply(c, at::TensorList(saved))[0];
}

}  // namespace hallo::nn
