// Autograd entry points: requires_grad, backward, .grad, grad mode, autocast.
#include "common.h"

#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/version.h>

namespace vlm {
namespace {

Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "requiresGrad_", {
    at::Tensor t = GetTensor(env, info[0], "requiresGrad_: argument 'self'");
    t.set_requires_grad(info[1].ToBoolean().Value());
    return env.Undefined();
  })
}

// grad(handle) -> handle | null
Napi::Value Grad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "grad", {
    const at::Tensor& t = GetTensor(env, info[0], "grad: argument 'self'");
    const at::Tensor& g = t.grad();
    if (!g.defined()) return env.Null();
    return WrapTensor(env, g);
  })
}

// setGrad(handle, gradHandle | null): null clears the gradient.
Napi::Value SetGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "setGrad", {
    at::Tensor t = GetTensor(env, info[0], "setGrad: argument 'self'");
    if (info[1].IsNull() || info[1].IsUndefined()) {
      t.mutable_grad() = at::Tensor();
    } else {
      const at::Tensor& g = GetTensor(env, info[1], "setGrad: argument 'grad'");
      if (g.sizes() != t.sizes()) throw Napi::Error::New(env, "setGrad: gradient shape does not match the tensor's");
      t.mutable_grad() = g;
    }
    return env.Undefined();
  })
}

// backward(outputs[], grads[] | null, retainGraph, createGraph)
Napi::Value Backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "backward", {
    if (!info[0].IsArray()) throw Napi::TypeError::New(env, "backward: expected an array of tensors");
    auto outs = info[0].As<Napi::Array>();
    std::vector<at::Tensor> tensors;
    for (uint32_t i = 0; i < outs.Length(); ++i) {
      const at::Tensor& t = GetTensor(env, outs.Get(i), "backward: output " + std::to_string(i));
      if (!t.requires_grad()) {
        throw Napi::Error::New(env, "backward: output " + std::to_string(i) +
                                        " does not require grad (no parameter it depends on has requiresGrad, or it was made under noGrad)");
      }
      tensors.push_back(t);
    }
    std::vector<at::Tensor> grads;
    if (info[1].IsArray()) {
      auto gs = info[1].As<Napi::Array>();
      if (gs.Length() != outs.Length()) throw Napi::Error::New(env, "backward: needs one gradient per output");
      for (uint32_t i = 0; i < gs.Length(); ++i) {
        Napi::Value g = gs.Get(i);
        if (g.IsNull() || g.IsUndefined()) {
          if (tensors[i].numel() != 1) throw Napi::Error::New(env, "backward: a gradient is required for a non-scalar output");
          grads.emplace_back();
        } else {
          const at::Tensor& gt = GetTensor(env, g, "backward: gradient " + std::to_string(i));
          if (gt.sizes() != tensors[i].sizes()) throw Napi::Error::New(env, "backward: gradient " + std::to_string(i) + " has a different shape from its output");
          grads.push_back(gt);
        }
      }
    } else {
      for (size_t i = 0; i < tensors.size(); ++i) {
        if (tensors[i].numel() != 1) {
          throw Napi::Error::New(env, "backward: output of shape " + c10::str(tensors[i].sizes()) +
                                          " is not a scalar; pass a gradient of the same shape");
        }
      }
    }
    bool retain = info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
    bool create = info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
    torch::autograd::backward(tensors, grads, retain ? c10::optional<bool>(true) : c10::nullopt, create);
    return env.Undefined();
  })
}

// isLeaf(handle), gradFnName(handle) for debugging and tests.
Napi::Value IsLeaf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Boolean::New(env, GetTensor(env, info[0], "isLeaf: argument 'self'").is_leaf());
}

Napi::Value GradFnName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = GetTensor(env, info[0], "gradFn: argument 'self'");
  auto fn = t.grad_fn();
  if (!fn) return env.Null();
  return Napi::String::New(env, fn->name());
}

Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), c10::GradMode::is_enabled());
}

Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  c10::GradMode::set_enabled(info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

// Autocast state per device type. libtorch 2.4 replaced the per-device
// functions with ones taking a DeviceType; branch once, here.
#if (TORCH_VERSION_MAJOR > 2) || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define VLM_AUTOCAST_BY_DEVICE_TYPE 1
#endif

c10::DeviceType AutocastDeviceType(Napi::Env env, const Napi::Value& v) {
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "cpu") return c10::DeviceType::CPU;
  if (s == "cuda") return c10::DeviceType::CUDA;
  throw Napi::Error::New(env, "autocast: device type must be 'cpu' or 'cuda', got '" + s + "'");
}

// getAutocast(deviceType) -> [enabled, dtypeCode]
Napi::Value GetAutocast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  c10::DeviceType dt = AutocastDeviceType(env, info[0]);
  bool enabled;
  at::ScalarType dtype;
#ifdef VLM_AUTOCAST_BY_DEVICE_TYPE
  enabled = at::autocast::is_autocast_enabled(dt);
  dtype = at::autocast::get_autocast_dtype(dt);
#else
  if (dt == c10::DeviceType::CPU) {
    enabled = at::autocast::is_cpu_enabled();
    dtype = at::autocast::get_autocast_cpu_dtype();
  } else {
    enabled = at::autocast::is_enabled();
    dtype = at::autocast::get_autocast_gpu_dtype();
  }
#endif
  auto out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Boolean::New(env, enabled));
  out.Set(1u, Napi::Number::New(env, static_cast<int>(dtype)));
  return out;
}

// setAutocast(deviceType, enabled, dtypeCode)
Napi::Value SetAutocast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "autocast", {
    c10::DeviceType dt = AutocastDeviceType(env, info[0]);
    bool enabled = info[1].ToBoolean().Value();
    at::ScalarType dtype = ToScalarType(env, info[2], "autocast: dtype");
#ifdef VLM_AUTOCAST_BY_DEVICE_TYPE
    at::autocast::set_autocast_dtype(dt, dtype);
    at::autocast::set_autocast_enabled(dt, enabled);
#else
    if (dt == c10::DeviceType::CPU) {
      at::autocast::set_autocast_cpu_dtype(dtype);
      at::autocast::set_cpu_enabled(enabled);
    } else {
      at::autocast::set_autocast_gpu_dtype(dtype);
      at::autocast::set_enabled(enabled);
    }
#endif
    // Leaving the outermost autocast region drops cached casts of weights.
    if (!enabled) at::autocast::clear_cache();
    return env.Undefined();
  })
}

}  // namespace

void RegisterAutograd(Napi::Env env, Napi::Object exports) {
  exports.Set("setRequiresGrad", Napi::Function::New(env, SetRequiresGrad, "setRequiresGrad"));
  exports.Set("grad", Napi::Function::New(env, Grad, "grad"));
  exports.Set("setGrad", Napi::Function::New(env, SetGrad, "setGrad"));
  exports.Set("backward", Napi::Function::New(env, Backward, "backward"));
  exports.Set("isLeaf", Napi::Function::New(env, IsLeaf, "isLeaf"));
  exports.Set("gradFnName", Napi::Function::New(env, GradFnName, "gradFnName"));
  exports.Set("isGradEnabled", Napi::Function::New(env, IsGradEnabled, "isGradEnabled"));
  exports.Set("setGradEnabled", Napi::Function::New(env, SetGradEnabled, "setGradEnabled"));
  exports.Set("getAutocast", Napi::Function::New(env, GetAutocast, "getAutocast"));
  exports.Set("setAutocast", Napi::Function::New(env, SetAutocast, "setAutocast"));
}

}  // namespace vlm
