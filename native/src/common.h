// Shared helpers of the vlm-grpo libtorch addon.
//
// The addon is deliberately thin: it exposes ATen ops (through the boxed
// dispatcher), autograd, RNG, raw I/O and c10d. Everything model-specific
// lives in TypeScript. Every entry point converts C++ exceptions into a JS
// Error that names the op (the PROTECT pattern of tch-rs), so bad input can
// never crash the process.
#pragma once

#include <napi.h>

#include <ATen/ATen.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace vlm {

// A tensor owned by JavaScript. `live` turns false on dispose (or finalize);
// a released handle keeps its memory slot until V8 collects the External,
// but its tensor storage is freed at once.
struct TensorHandle {
  at::Tensor tensor;
  int64_t reportedBytes = 0;
  bool live = true;
};

// Number of TensorHandles that are live (created and not released).
extern std::atomic<int64_t> gLiveTensors;

// Wraps a tensor into a new JS handle (an External tagged as ours).
Napi::Value WrapTensor(Napi::Env env, at::Tensor tensor);

// Returns the handle behind `value`, or throws a JS-bound error naming
// `what` (e.g. "aten::add.Tensor: argument 'other'").
TensorHandle* GetHandle(Napi::Env env, const Napi::Value& value, const std::string& what);

// Returns the live tensor behind `value`; throws if it is not a tensor handle
// or if the tensor was released.
const at::Tensor& GetTensor(Napi::Env env, const Napi::Value& value, const std::string& what);

// True when `value` is one of our tensor handles (live or released).
bool IsTensorHandle(Napi::Env env, const Napi::Value& value);

// Releases the tensor of a handle (idempotent).
void ReleaseHandle(Napi::Env env, TensorHandle* handle);

// Generators (seeded RNG streams), wrapped the same way.
struct GeneratorHandle {
  at::Generator generator;
};
Napi::Value WrapGenerator(Napi::Env env, at::Generator generator);
GeneratorHandle* GetGenerator(Napi::Env env, const Napi::Value& value, const std::string& what);
bool IsGeneratorHandle(Napi::Env env, const Napi::Value& value);

// Conversions shared by several files.
at::ScalarType ToScalarType(Napi::Env env, const Napi::Value& value, const std::string& what);
c10::Device ToDevice(Napi::Env env, const Napi::Value& value, const std::string& what);
std::vector<int64_t> ToIntVector(Napi::Env env, const Napi::Value& value, const std::string& what);
int64_t ToInt64(Napi::Env env, const Napi::Value& value, const std::string& what);
std::string DeviceString(const c10::Device& device);

// Message of a C++ exception without libtorch's C++ backtrace.
std::string ExceptionMessage(const std::exception& e);

// The registration functions of each source file.
void RegisterTensor(Napi::Env env, Napi::Object exports);
void RegisterDispatch(Napi::Env env, Napi::Object exports);
void RegisterAutograd(Napi::Env env, Napi::Object exports);
void RegisterRuntime(Napi::Env env, Napi::Object exports);
void RegisterFileIO(Napi::Env env, Napi::Object exports);
void RegisterDistributed(Napi::Env env, Napi::Object exports);
void RegisterAllocator(Napi::Env env, Napi::Object exports);
void RegisterAttention(Napi::Env env, Napi::Object exports);

}  // namespace vlm

// Runs `body`, turning any C++ exception into a JS Error whose message starts
// with `opname`. Use in every entry point.
#define VLM_PROTECT(env, opname, ...)                                                     \
  try {                                                                                    \
    __VA_ARGS__                                                                            \
  } catch (const Napi::Error&) {                                                           \
    throw;                                                                                 \
  } catch (const std::exception& e) {                                                      \
    throw Napi::Error::New(env, std::string(opname) + ": " + ::vlm::ExceptionMessage(e));  \
  } catch (...) {                                                                          \
    throw Napi::Error::New(env, std::string(opname) + ": unknown native error");           \
  }
