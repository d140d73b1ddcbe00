// Generic op calls through libtorch's boxed dispatcher.
//
// `findOp("aten::add", "Tensor")` resolves an operator once and returns a
// small integer id; `callOp(id, mode, ...args)` converts the JS arguments by
// the operator's schema, calls it (autograd, autocast and the device kernels
// all apply, as in PyTorch) and converts the results back. This keeps the
// native layer one uniform entry instead of hundreds of hand-written ones,
// and it works unchanged across libtorch 1.13 and 2.x, whose op sets differ.
#include "common.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>

namespace vlm {
namespace {

struct OpEntry {
  c10::OperatorHandle handle;
  std::string displayName;  // "aten::add.Tensor"
};

std::vector<OpEntry>& Ops() {
  static std::vector<OpEntry> ops;
  return ops;
}

std::string ArgWhat(const OpEntry& op, const c10::Argument& arg) {
  return op.displayName + ": argument '" + arg.name() + "'";
}

c10::IValue ToIValue(Napi::Env env, const Napi::Value& v, const c10::TypePtr& type, const OpEntry& op,
                     const c10::Argument& arg);

bool IsIntLike(const Napi::Value& v) { return v.IsNumber() || v.IsBigInt(); }

c10::IValue ScalarFromJs(Napi::Env env, const Napi::Value& v, const OpEntry& op, const c10::Argument& arg) {
  if (v.IsBoolean()) return c10::IValue(c10::Scalar(v.As<Napi::Boolean>().Value()));
  if (v.IsBigInt()) return c10::IValue(c10::Scalar(ToInt64(env, v, ArgWhat(op, arg))));
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    // An integral JS number becomes an integer Scalar, as a Python int would;
    // a float tensor still keeps its dtype (wrapped-number promotion).
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9007199254740992.0) {
      return c10::IValue(c10::Scalar(static_cast<int64_t>(d)));
    }
    return c10::IValue(c10::Scalar(d));
  }
  if (v.IsObject() && !v.IsExternal() && v.As<Napi::Object>().Has("float")) {
    // { float: x } forces a floating Scalar even for an integral value.
    return c10::IValue(c10::Scalar(v.As<Napi::Object>().Get("float").As<Napi::Number>().DoubleValue()));
  }
  throw Napi::TypeError::New(env, ArgWhat(op, arg) + " expected a number or boolean (Scalar)");
}

c10::IValue ListFromJs(Napi::Env env, const Napi::Value& v, const c10::TypePtr& elem, const OpEntry& op,
                       const c10::Argument& arg) {
  std::string what = ArgWhat(op, arg);
  auto kind = elem->kind();
  // A single int stands for a fixed-size list: `int[2] stride=1` or `int[1] dim`.
  if (!v.IsArray()) {
    if ((kind == c10::TypeKind::IntType || kind == c10::TypeKind::SymIntType) && IsIntLike(v)) {
      int64_t x = ToInt64(env, v, what);
      int64_t n = arg.N() ? *arg.N() : 1;
      return c10::IValue(std::vector<int64_t>(static_cast<size_t>(n), x));
    }
    throw Napi::TypeError::New(env, what + " expected an array");
  }
  auto arr = v.As<Napi::Array>();
  uint32_t n = arr.Length();
  switch (kind) {
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType: {
      std::vector<int64_t> out(n);
      for (uint32_t i = 0; i < n; ++i) out[i] = ToInt64(env, arr.Get(i), what + "[" + std::to_string(i) + "]");
      return c10::IValue(out);
    }
    case c10::TypeKind::FloatType: {
      std::vector<double> out(n);
      for (uint32_t i = 0; i < n; ++i) {
        Napi::Value e = arr.Get(i);
        if (!e.IsNumber()) throw Napi::TypeError::New(env, what + "[" + std::to_string(i) + "] expected a number");
        out[i] = e.As<Napi::Number>().DoubleValue();
      }
      return c10::IValue(out);
    }
    case c10::TypeKind::BoolType: {
      c10::List<bool> out;
      for (uint32_t i = 0; i < n; ++i) {
        Napi::Value e = arr.Get(i);
        if (!e.IsBoolean()) throw Napi::TypeError::New(env, what + "[" + std::to_string(i) + "] expected a boolean");
        out.push_back(e.As<Napi::Boolean>().Value());
      }
      return c10::IValue(out);
    }
    case c10::TypeKind::TensorType: {
      c10::List<at::Tensor> out;
      out.reserve(n);
      for (uint32_t i = 0; i < n; ++i) out.push_back(GetTensor(env, arr.Get(i), what + "[" + std::to_string(i) + "]"));
      return c10::IValue(out);
    }
    case c10::TypeKind::OptionalType: {
      auto inner = elem->castRaw<c10::OptionalType>()->getElementType();
      if (inner->kind() == c10::TypeKind::TensorType) {
        c10::List<c10::optional<at::Tensor>> out;
        out.reserve(n);
        for (uint32_t i = 0; i < n; ++i) {
          Napi::Value e = arr.Get(i);
          if (e.IsNull() || e.IsUndefined()) {
            out.push_back(c10::nullopt);
          } else {
            out.push_back(GetTensor(env, e, what + "[" + std::to_string(i) + "]"));
          }
        }
        return c10::IValue(out);
      }
      break;
    }
    default:
      break;
  }
  throw Napi::TypeError::New(env, what + ": list element type " + elem->str() + " is not supported by the binding");
}

c10::IValue ToIValue(Napi::Env env, const Napi::Value& v, const c10::TypePtr& type, const OpEntry& op,
                     const c10::Argument& arg) {
  switch (type->kind()) {
    case c10::TypeKind::TensorType:
      return c10::IValue(GetTensor(env, v, ArgWhat(op, arg)));
    case c10::TypeKind::OptionalType: {
      if (v.IsNull() || v.IsUndefined()) return c10::IValue();
      return ToIValue(env, v, type->castRaw<c10::OptionalType>()->getElementType(), op, arg);
    }
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType:
    case c10::TypeKind::ScalarTypeType:
    case c10::TypeKind::LayoutType:
    case c10::TypeKind::MemoryFormatType:
      return c10::IValue(ToInt64(env, v, ArgWhat(op, arg)));
    case c10::TypeKind::FloatType:
      if (!v.IsNumber()) throw Napi::TypeError::New(env, ArgWhat(op, arg) + " expected a number");
      return c10::IValue(v.As<Napi::Number>().DoubleValue());
    case c10::TypeKind::BoolType:
      if (!v.IsBoolean()) throw Napi::TypeError::New(env, ArgWhat(op, arg) + " expected a boolean");
      return c10::IValue(v.As<Napi::Boolean>().Value());
    case c10::TypeKind::NumberType:
      return ScalarFromJs(env, v, op, arg);
    case c10::TypeKind::StringType:
      if (!v.IsString()) throw Napi::TypeError::New(env, ArgWhat(op, arg) + " expected a string");
      return c10::IValue(v.As<Napi::String>().Utf8Value());
    case c10::TypeKind::DeviceObjType:
      return c10::IValue(ToDevice(env, v, ArgWhat(op, arg)));
    case c10::TypeKind::GeneratorType:
      return c10::IValue(GetGenerator(env, v, ArgWhat(op, arg))->generator);
    case c10::TypeKind::ListType:
      return ListFromJs(env, v, type->castRaw<c10::ListType>()->getElementType(), op, arg);
    default:
      break;
  }
  throw Napi::TypeError::New(env, ArgWhat(op, arg) + ": argument type " + type->str() + " is not supported by the binding");
}

Napi::Value FromIValue(Napi::Env env, const c10::IValue& v) {
  if (v.isTensor()) {
    const at::Tensor& t = v.toTensor();
    if (!t.defined()) return env.Null();
    return WrapTensor(env, t);
  }
  if (v.isNone()) return env.Null();
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isTensorList()) {
    auto list = v.toTensorList();
    auto arr = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      at::Tensor t = list.get(i);
      arr.Set(static_cast<uint32_t>(i), t.defined() ? WrapTensor(env, t) : env.Null());
    }
    return arr;
  }
  if (v.isIntList()) {
    auto list = v.toIntVector();
    auto arr = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); ++i) arr.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(list[i])));
    return arr;
  }
  if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    auto arr = Napi::Array::New(env, elems.size());
    for (size_t i = 0; i < elems.size(); ++i) arr.Set(static_cast<uint32_t>(i), FromIValue(env, elems[i]));
    return arr;
  }
  if (v.isScalar()) {
    auto s = v.toScalar();
    if (s.isBoolean()) return Napi::Boolean::New(env, s.toBool());
    return Napi::Number::New(env, s.toDouble());
  }
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  throw Napi::Error::New(env, "result type " + v.tagKind() + " is not supported by the binding");
}

// findOp(name, overload) -> id, or null when libtorch lacks the operator.
Napi::Value FindOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "findOp", {
    if (!info[0].IsString() || !info[1].IsString()) throw Napi::TypeError::New(env, "findOp: expected (name, overload) strings");
    std::string name = info[0].As<Napi::String>().Utf8Value();
    std::string overload = info[1].As<Napi::String>().Utf8Value();
    auto handle = c10::Dispatcher::singleton().findSchema(c10::OperatorName(name, overload));
    if (!handle.has_value()) return env.Null();
    auto& ops = Ops();
    ops.push_back(OpEntry{*handle, overload.empty() ? name : name + "." + overload});
    return Napi::Number::New(env, static_cast<double>(ops.size() - 1));
  })
}

// opSchema(id) -> the schema string, for error messages and docs.
Napi::Value OpSchema(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t id = ToInt64(env, info[0], "opSchema: id");
  auto& ops = Ops();
  if (id < 0 || id >= static_cast<int64_t>(ops.size())) throw Napi::RangeError::New(env, "opSchema: unknown op id");
  std::ostringstream ss;
  ss << ops[id].handle.schema();
  return Napi::String::New(env, ss.str());
}

// callOp(id, mode, ...args). mode 0: return the results (one value, or an
// array when the op has several); mode 1: discard them (in-place ops whose
// result aliases an argument the caller already holds).
Napi::Value CallOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto& ops = Ops();
  int64_t id = info[0].IsNumber() ? info[0].As<Napi::Number>().Int64Value() : -1;
  if (id < 0 || id >= static_cast<int64_t>(ops.size())) throw Napi::RangeError::New(env, "callOp: unknown op id");
  const OpEntry& op = ops[id];
  bool discard = info[1].IsNumber() && info[1].As<Napi::Number>().Int32Value() == 1;
  VLM_PROTECT(env, op.displayName, {
    const c10::FunctionSchema& schema = op.handle.schema();
    const auto& args = schema.arguments();
    size_t given = info.Length() - 2;
    if (given > args.size()) {
      throw Napi::TypeError::New(env, op.displayName + ": takes " + std::to_string(args.size()) + " arguments but " +
                                          std::to_string(given) + " were given");
    }
    torch::jit::Stack stack;
    stack.reserve(args.size());
    for (size_t i = 0; i < args.size(); ++i) {
      const c10::Argument& arg = args[i];
      Napi::Value v = i < given ? info[i + 2] : env.Undefined();
      if (v.IsUndefined()) {
        if (arg.default_value().has_value()) {
          stack.push_back(*arg.default_value());
          continue;
        }
        if (arg.type()->kind() == c10::TypeKind::OptionalType) {
          stack.emplace_back();
          continue;
        }
        throw Napi::TypeError::New(env, ArgWhat(op, arg) + " is required");
      }
      stack.push_back(ToIValue(env, v, arg.type(), op, arg));
    }
    op.handle.callBoxed(&stack);
    if (discard) return env.Undefined();
    if (stack.size() == 1) return FromIValue(env, stack[0]);
    auto out = Napi::Array::New(env, stack.size());
    for (size_t i = 0; i < stack.size(); ++i) out.Set(static_cast<uint32_t>(i), FromIValue(env, stack[i]));
    return out;
  })
}

}  // namespace

void RegisterDispatch(Napi::Env env, Napi::Object exports) {
  exports.Set("findOp", Napi::Function::New(env, FindOp, "findOp"));
  exports.Set("opSchema", Napi::Function::New(env, OpSchema, "opSchema"));
  exports.Set("callOp", Napi::Function::New(env, CallOp, "callOp"));
}

}  // namespace vlm
