// Runtime facts and settings: libtorch version, threads, devices, RNG.
#include "common.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <dlfcn.h>

#include <mutex>

namespace vlm {
namespace {

Napi::Value Version(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  out.Set("torch", Napi::String::New(env, TORCH_VERSION));
  out.Set("major", Napi::Number::New(env, TORCH_VERSION_MAJOR));
  out.Set("minor", Napi::Number::New(env, TORCH_VERSION_MINOR));
  out.Set("patch", Napi::Number::New(env, TORCH_VERSION_PATCH));
#ifdef VLM_WITH_GLOO
  out.Set("gloo", Napi::Boolean::New(env, true));
#else
  out.Set("gloo", Napi::Boolean::New(env, false));
#endif
#ifdef VLM_WITH_NCCL
  out.Set("nccl", Napi::Boolean::New(env, true));
#else
  out.Set("nccl", Napi::Boolean::New(env, false));
#endif
  out.Set("cxx11Abi", Napi::Boolean::New(env, _GLIBCXX_USE_CXX11_ABI != 0));
  out.Set("parallelInfo", Napi::String::New(env, at::get_parallel_info()));
  return out;
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t n = ToInt64(env, info[0], "setNumThreads: n");
  if (n < 1) throw Napi::RangeError::New(env, "setNumThreads: n must be at least 1");
  VLM_PROTECT(env, "setNumThreads", { at::set_num_threads(static_cast<int>(n)); })
  return env.Undefined();
}

// The BLAS behind libtorch keeps its own thread pool (OpenBLAS's pthreads
// build on Debian), apart from ATen's intra-op threads: with both at the core
// count, small matmuls oversubscribe the cores and spin in sched_yield. These
// reach OpenBLAS's own setters when the loaded BLAS exports them (looked up at
// run time, so any other BLAS simply reports "not available").
using BlasSetThreads = void (*)(int);
using BlasGetThreads = int (*)();

Napi::Value SetBlasThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t n = ToInt64(env, info[0], "setBlasThreads: n");
  if (n < 1) throw Napi::RangeError::New(env, "setBlasThreads: n must be at least 1");
  auto set = reinterpret_cast<BlasSetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (set == nullptr) return Napi::Boolean::New(env, false);
  set(static_cast<int>(n));
  return Napi::Boolean::New(env, true);
}

Napi::Value GetBlasThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto get = reinterpret_cast<BlasGetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (get == nullptr) return env.Null();
  return Napi::Number::New(env, get());
}

Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "cudaDeviceCount", {
    return Napi::Number::New(env, static_cast<double>(torch::cuda::device_count()));
  })
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "synchronize", {
    c10::Device device = ToDevice(env, info[0], "synchronize: device");
    if (device.is_cuda()) torch::cuda::synchronize(device.has_index() ? device.index() : -1);
    return env.Undefined();
  })
}

// manualSeed(seed): seeds the default CPU generator and every CUDA one, as
// torch.manual_seed does.
Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "manualSeed", {
    uint64_t seed = static_cast<uint64_t>(ToInt64(env, info[0], "manualSeed: seed"));
    {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_current_seed(seed);
    }
    if (torch::cuda::is_available()) torch::cuda::manual_seed_all(seed);
    return env.Undefined();
  })
}

// createGenerator(seed, device = "cpu") -> generator handle
Napi::Value CreateGenerator(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "createGenerator", {
    uint64_t seed = static_cast<uint64_t>(ToInt64(env, info[0], "createGenerator: seed"));
    c10::Device device = info.Length() > 1 && info[1].IsString() ? ToDevice(env, info[1], "createGenerator: device") : c10::Device(c10::kCPU);
    at::Generator gen;
    if (device.is_cpu()) {
      gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    } else if (device.is_cuda()) {
      // Context::defaultGenerator exists in 1.13 and 2.x alike (the CUDA hooks'
      // getDefaultCUDAGenerator was renamed getDefaultGenerator in 2.x).
      gen = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, device.has_index() ? device.index() : 0)).clone();
      gen.set_current_seed(seed);
    } else {
      throw Napi::Error::New(env, "createGenerator: unsupported device " + device.str());
    }
    return WrapGenerator(env, gen);
  })
}

at::Generator GeneratorArg(Napi::Env env, const Napi::Value& v, const std::string& what) {
  if (v.IsNull() || v.IsUndefined()) return at::detail::getDefaultCPUGenerator();
  return GetGenerator(env, v, what)->generator;
}

// generatorGetState(gen | null) -> uint8 tensor; null means the default CPU one.
Napi::Value GeneratorGetState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "generatorGetState", {
    at::Generator gen = GeneratorArg(env, info[0], "generatorGetState: generator");
    std::lock_guard<std::mutex> lock(gen.mutex());
    return WrapTensor(env, gen.get_state());
  })
}

Napi::Value GeneratorSetState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "generatorSetState", {
    at::Generator gen = GeneratorArg(env, info[0], "generatorSetState: generator");
    const at::Tensor& state = GetTensor(env, info[1], "generatorSetState: state");
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
    return env.Undefined();
  })
}

Napi::Value GeneratorSeed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  at::Generator gen = GeneratorArg(env, info[0], "generatorSeed: generator");
  return Napi::Number::New(env, static_cast<double>(gen.current_seed()));
}

}  // namespace

void RegisterRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::Function::New(env, Version, "version"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("setBlasThreads", Napi::Function::New(env, SetBlasThreads, "setBlasThreads"));
  exports.Set("getBlasThreads", Napi::Function::New(env, GetBlasThreads, "getBlasThreads"));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, CudaDeviceCount, "cudaDeviceCount"));
  exports.Set("synchronize", Napi::Function::New(env, Synchronize, "synchronize"));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed, "manualSeed"));
  exports.Set("createGenerator", Napi::Function::New(env, CreateGenerator, "createGenerator"));
  exports.Set("generatorGetState", Napi::Function::New(env, GeneratorGetState, "generatorGetState"));
  exports.Set("generatorSetState", Napi::Function::New(env, GeneratorSetState, "generatorSetState"));
  exports.Set("generatorSeed", Napi::Function::New(env, GeneratorSeed, "generatorSeed"));
}

}  // namespace vlm
