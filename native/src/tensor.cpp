// Tensor handles: creation from and copy back to JS memory, metadata,
// release, live counting and V8 external-memory reporting.
#include "common.h"

#include <c10/util/Exception.h>

#include <cstring>

namespace vlm {

std::atomic<int64_t> gLiveTensors{0};

namespace {

// Type tags make sure an External passed in is one of ours (napi_type_tag).
const napi_type_tag kTensorTag = {0x766c6d2d6772706fULL, 0x74656e736f720001ULL};
const napi_type_tag kGeneratorTag = {0x766c6d2d6772706fULL, 0x67656e0000000001ULL};

int64_t ReportableBytes(const at::Tensor& t) {
  // Views share their base's storage; count each allocation once, at the
  // handle that made it.
  if (!t.defined() || t.is_view() || !t.has_storage()) return 0;
  return static_cast<int64_t>(t.nbytes());
}

// V8 is told about tensor memory in batches: one AdjustExternalMemory call
// per handle would cost more than a small op itself.
int64_t gPendingExternalBytes = 0;
constexpr int64_t kExternalReportBatch = 1 << 20;

void ReportExternal(Napi::Env env, int64_t delta) {
  gPendingExternalBytes += delta;
  if (gPendingExternalBytes >= kExternalReportBatch || gPendingExternalBytes <= -kExternalReportBatch) {
    Napi::MemoryManagement::AdjustExternalMemory(env, gPendingExternalBytes);
    gPendingExternalBytes = 0;
  }
}

void FinalizeTensor(Napi::Env env, TensorHandle* handle) {
  ReleaseHandle(env, handle);
  delete handle;
}

void FinalizeGenerator(Napi::Env, GeneratorHandle* handle) { delete handle; }

bool HasTag(Napi::Env env, const Napi::Value& value, const napi_type_tag& tag) {
  if (!value.IsExternal()) return false;
  bool result = false;
  napi_status status = napi_check_object_type_tag(env, value, &tag, &result);
  return status == napi_ok && result;
}

std::string TypeName(const Napi::Value& value) {
  if (value.IsUndefined()) return "undefined";
  if (value.IsNull()) return "null";
  if (value.IsNumber()) return "number";
  if (value.IsBoolean()) return "boolean";
  if (value.IsString()) return "string";
  if (value.IsArray()) return "array";
  if (value.IsTypedArray()) return "typed array";
  if (value.IsExternal()) return "foreign handle";
  if (value.IsFunction()) return "function";
  return "object";
}

}  // namespace

std::string ExceptionMessage(const std::exception& e) {
  if (auto* ce = dynamic_cast<const c10::Error*>(&e)) return ce->what_without_backtrace();
  return e.what();
}

std::string DeviceString(const c10::Device& device) { return device.str(); }

Napi::Value WrapTensor(Napi::Env env, at::Tensor tensor) {
  auto* handle = new TensorHandle();
  handle->tensor = std::move(tensor);
  handle->reportedBytes = ReportableBytes(handle->tensor);
  auto external = Napi::External<TensorHandle>::New(env, handle, FinalizeTensor);
  napi_type_tag_object(env, external, &kTensorTag);
  if (handle->reportedBytes > 0) ReportExternal(env, handle->reportedBytes);
  gLiveTensors.fetch_add(1, std::memory_order_relaxed);
  return external;
}

void ReleaseHandle(Napi::Env env, TensorHandle* handle) {
  if (!handle->live) return;
  handle->live = false;
  handle->tensor = at::Tensor();
  if (handle->reportedBytes > 0) ReportExternal(env, -handle->reportedBytes);
  handle->reportedBytes = 0;
  gLiveTensors.fetch_sub(1, std::memory_order_relaxed);
}

bool IsTensorHandle(Napi::Env env, const Napi::Value& value) { return HasTag(env, value, kTensorTag); }

TensorHandle* GetHandle(Napi::Env env, const Napi::Value& value, const std::string& what) {
  if (!HasTag(env, value, kTensorTag)) {
    throw Napi::TypeError::New(env, what + " expected a Tensor, got " + TypeName(value));
  }
  return value.As<Napi::External<TensorHandle>>().Data();
}

const at::Tensor& GetTensor(Napi::Env env, const Napi::Value& value, const std::string& what) {
  TensorHandle* handle = GetHandle(env, value, what);
  if (!handle->live) {
    throw Napi::Error::New(env, what + " is a released tensor (it was disposed, or the scope that made it ended)");
  }
  return handle->tensor;
}

Napi::Value WrapGenerator(Napi::Env env, at::Generator generator) {
  auto* handle = new GeneratorHandle{std::move(generator)};
  auto external = Napi::External<GeneratorHandle>::New(env, handle, FinalizeGenerator);
  napi_type_tag_object(env, external, &kGeneratorTag);
  return external;
}

bool IsGeneratorHandle(Napi::Env env, const Napi::Value& value) { return HasTag(env, value, kGeneratorTag); }

GeneratorHandle* GetGenerator(Napi::Env env, const Napi::Value& value, const std::string& what) {
  if (!HasTag(env, value, kGeneratorTag)) {
    throw Napi::TypeError::New(env, what + " expected a Generator, got " + TypeName(value));
  }
  return value.As<Napi::External<GeneratorHandle>>().Data();
}

int64_t ToInt64(Napi::Env env, const Napi::Value& value, const std::string& what) {
  if (value.IsNumber()) {
    double d = value.As<Napi::Number>().DoubleValue();
    if (d != static_cast<double>(static_cast<int64_t>(d))) {
      throw Napi::TypeError::New(env, what + " expected an integer, got " + std::to_string(d));
    }
    return static_cast<int64_t>(d);
  }
  if (value.IsBigInt()) {
    bool lossless = true;
    int64_t v = value.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(env, what + " BigInt does not fit in int64");
    return v;
  }
  if (value.IsBoolean()) return value.As<Napi::Boolean>().Value() ? 1 : 0;
  throw Napi::TypeError::New(env, what + " expected an integer, got " + TypeName(value));
}

std::vector<int64_t> ToIntVector(Napi::Env env, const Napi::Value& value, const std::string& what) {
  if (!value.IsArray()) throw Napi::TypeError::New(env, what + " expected an array of integers, got " + TypeName(value));
  auto arr = value.As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) out[i] = ToInt64(env, arr.Get(i), what + "[" + std::to_string(i) + "]");
  return out;
}

at::ScalarType ToScalarType(Napi::Env env, const Napi::Value& value, const std::string& what) {
  int64_t code = ToInt64(env, value, what);
  if (code < 0 || code >= static_cast<int64_t>(at::ScalarType::NumOptions)) {
    throw Napi::RangeError::New(env, what + " is not a valid dtype code: " + std::to_string(code));
  }
  return static_cast<at::ScalarType>(code);
}

c10::Device ToDevice(Napi::Env env, const Napi::Value& value, const std::string& what) {
  if (!value.IsString()) throw Napi::TypeError::New(env, what + " expected a device string like 'cpu' or 'cuda:0', got " + TypeName(value));
  std::string s = value.As<Napi::String>().Utf8Value();
  try {
    return c10::Device(s);
  } catch (const std::exception&) {
    throw Napi::Error::New(env, what + " is not a valid device: '" + s + "' (expected 'cpu', 'cuda' or 'cuda:N')");
  }
}

namespace {

// fromBuffer(typedArrayOrArrayBuffer, dtypeCode, shape[], device?) -> handle.
// Copies the bytes once into a fresh tensor.
Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "fromBuffer", {
    const uint8_t* data = nullptr;
    size_t length = 0;
    if (info[0].IsTypedArray()) {
      auto ta = info[0].As<Napi::TypedArray>();
      auto ab = ta.ArrayBuffer();
      data = static_cast<const uint8_t*>(ab.Data()) + ta.ByteOffset();
      length = ta.ByteLength();
    } else if (info[0].IsArrayBuffer()) {
      auto ab = info[0].As<Napi::ArrayBuffer>();
      data = static_cast<const uint8_t*>(ab.Data());
      length = ab.ByteLength();
    } else if (info[0].IsDataView()) {
      auto dv = info[0].As<Napi::DataView>();
      data = static_cast<const uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
      length = dv.ByteLength();
    } else {
      throw Napi::TypeError::New(env, "fromBuffer: expected a typed array or ArrayBuffer");
    }
    at::ScalarType dtype = ToScalarType(env, info[1], "fromBuffer: dtype");
    std::vector<int64_t> shape = ToIntVector(env, info[2], "fromBuffer: shape");
    int64_t numel = 1;
    for (int64_t d : shape) {
      if (d < 0) throw Napi::RangeError::New(env, "fromBuffer: negative dimension in shape");
      numel *= d;
    }
    size_t expected = static_cast<size_t>(numel) * c10::elementSize(dtype);
    if (expected != length) {
      throw Napi::RangeError::New(env, "fromBuffer: shape needs " + std::to_string(expected) + " bytes of " +
                                           std::string(c10::toString(dtype)) + " but the buffer holds " +
                                           std::to_string(length));
    }
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
    if (length > 0) std::memcpy(t.data_ptr(), data, length);
    if (info.Length() > 3 && info[3].IsString()) {
      c10::Device device = ToDevice(env, info[3], "fromBuffer: device");
      if (device != t.device()) t = t.to(device);
    }
    return WrapTensor(env, std::move(t));
  })
}

// toBuffer(handle) -> ArrayBuffer with the tensor's elements (contiguous, CPU).
Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "toBuffer", {
    at::Tensor t = GetTensor(env, info[0], "toBuffer: argument 'self'");
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    auto ab = Napi::ArrayBuffer::New(env, c.nbytes());
    if (c.nbytes() > 0) std::memcpy(ab.Data(), c.data_ptr(), c.nbytes());
    return ab;
  })
}

Napi::Value Release(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ReleaseHandle(env, GetHandle(env, info[0], "dispose: argument"));
  return env.Undefined();
}

Napi::Value IsReleased(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Boolean::New(env, !GetHandle(env, info[0], "isReleased: argument")->live);
}

Napi::Value LiveTensors(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(gLiveTensors.load()));
}

// meta(handle) -> [shape[], dtypeCode, deviceString, requiresGrad]
Napi::Value Meta(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "meta", {
    const at::Tensor& t = GetTensor(env, info[0], "meta: argument 'self'");
    if (!t.defined()) throw Napi::Error::New(env, "meta: undefined tensor");
    auto sizes = t.sizes();
    auto shape = Napi::Array::New(env, sizes.size());
    for (size_t i = 0; i < sizes.size(); ++i) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(sizes[i])));
    auto out = Napi::Array::New(env, 4);
    out.Set(0u, shape);
    out.Set(1u, Napi::Number::New(env, static_cast<int>(t.scalar_type())));
    out.Set(2u, Napi::String::New(env, DeviceString(t.device())));
    out.Set(3u, Napi::Boolean::New(env, t.requires_grad()));
    return out;
  })
}

// item(handle) -> number | boolean
Napi::Value Item(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "item", {
    const at::Tensor& t = GetTensor(env, info[0], "item: argument 'self'");
    if (t.numel() != 1) {
      throw Napi::Error::New(env, "item: a tensor with " + std::to_string(t.numel()) + " elements cannot be converted to a number (expected exactly 1)");
    }
    c10::Scalar s = t.item();
    if (s.isBoolean()) return Napi::Boolean::New(env, s.toBool());
    if (s.isIntegral(false)) return Napi::Number::New(env, static_cast<double>(s.toLong()));
    return Napi::Number::New(env, s.toDouble());
  })
}

// scalarTensor(value, dtypeCode, device?) -> 0-d tensor
Napi::Value ScalarTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "scalarTensor", {
    at::ScalarType dtype = ToScalarType(env, info[1], "scalarTensor: dtype");
    at::Tensor t;
    if (info[0].IsBoolean()) {
      t = at::scalar_tensor(c10::Scalar(info[0].As<Napi::Boolean>().Value()), at::TensorOptions().dtype(dtype));
    } else if (info[0].IsNumber()) {
      double d = info[0].As<Napi::Number>().DoubleValue();
      t = at::scalar_tensor(c10::Scalar(d), at::TensorOptions().dtype(dtype));
    } else if (info[0].IsBigInt()) {
      bool lossless = true;
      int64_t v = info[0].As<Napi::BigInt>().Int64Value(&lossless);
      t = at::scalar_tensor(c10::Scalar(v), at::TensorOptions().dtype(dtype));
    } else {
      throw Napi::TypeError::New(env, "scalarTensor: expected a number, bigint or boolean");
    }
    if (info.Length() > 2 && info[2].IsString()) {
      c10::Device device = ToDevice(env, info[2], "scalarTensor: device");
      if (device != t.device()) t = t.to(device);
    }
    return WrapTensor(env, std::move(t));
  })
}

// sameStorage(a, b): whether two handles alias the same storage (tests).
Napi::Value SameTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& a = GetTensor(env, info[0], "sameTensor: argument 'a'");
  const at::Tensor& b = GetTensor(env, info[1], "sameTensor: argument 'b'");
  return Napi::Boolean::New(env, a.unsafeGetTensorImpl() == b.unsafeGetTensorImpl());
}

// dataPtr(handle): address of the first element, as a number (aliasing checks).
Napi::Value DataPtr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = GetTensor(env, info[0], "dataPtr: argument 'self'");
  return Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(t.data_ptr())));
}

}  // namespace

void RegisterTensor(Napi::Env env, Napi::Object exports) {
  exports.Set("fromBuffer", Napi::Function::New(env, FromBuffer, "fromBuffer"));
  exports.Set("toBuffer", Napi::Function::New(env, ToBuffer, "toBuffer"));
  exports.Set("release", Napi::Function::New(env, Release, "release"));
  exports.Set("isReleased", Napi::Function::New(env, IsReleased, "isReleased"));
  exports.Set("liveTensors", Napi::Function::New(env, LiveTensors, "liveTensors"));
  exports.Set("meta", Napi::Function::New(env, Meta, "meta"));
  exports.Set("item", Napi::Function::New(env, Item, "item"));
  exports.Set("scalarTensor", Napi::Function::New(env, ScalarTensor, "scalarTensor"));
  exports.Set("sameTensor", Napi::Function::New(env, SameTensor, "sameTensor"));
  exports.Set("dataPtr", Napi::Function::New(env, DataPtr, "dataPtr"));
}

}  // namespace vlm
