// The async all-reduce (pgAllReduceAsync, pgWorkWait, pgWorkDone) and the
// rendezvous store's key/value API (pgStoreSet, pgStoreGet, pgStoreAdd); see
// distributed.cpp's header for the whole c10d surface.
#include "distributed.h"

#include <memory>

namespace vlm {
namespace {

const napi_type_tag kWorkTag = {0x766c6d2d6772706fULL, 0x776f726b00000001ULL};

// An all-reduce in flight. It owns the tensors the backend works on, so the
// JS handle of the input may be released meanwhile.
struct WorkHandle {
#ifdef VLM_WITH_C10D
  c10::intrusive_ptr<c10d::Work> work;
#endif
  at::Tensor target;  // the caller's tensor
  at::Tensor buffer;  // what the backend reduces: target itself when contiguous, else a copy
  bool avg = false;
  int worldSize = 1;
  std::chrono::milliseconds timeout{0};
  std::shared_ptr<std::atomic<int>> pending;
  bool waited = false;
};

void FinalizeWork(Napi::Env, WorkHandle* w) {
#ifdef VLM_WITH_C10D
  // Dropped without a wait: it stays counted as pending unless it finished,
  // so that teardown never joins a backend that may still be blocked in it.
  if (!w->waited && w->work && w->work->isCompleted()) w->pending->fetch_sub(1);
#endif
  delete w;
}

WorkHandle* GetWork(Napi::Env env, const Napi::Value& value, const std::string& what) {
  bool ok = false;
  if (value.IsExternal()) napi_check_object_type_tag(env, value, &kWorkTag, &ok);
  if (!ok) throw Napi::TypeError::New(env, what + ": expected a work handle (from pgAllReduceAsync)");
  return value.As<Napi::External<WorkHandle>>().Data();
}

Napi::Value PgAllReduceAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "pgAllReduceAsync", {
    PgHandle* h = GetGroup(env, info[0], "pgAllReduceAsync");
    const at::Tensor& t = GetTensor(env, info[1], "pgAllReduceAsync: argument 'tensor'");
    auto* w = new WorkHandle();
    std::unique_ptr<WorkHandle> guard(w);
#ifdef VLM_WITH_C10D
    c10d::ReduceOp op = ParseReduceOp(env, info[2], &w->avg);
    if (w->avg && !at::isFloatingType(t.scalar_type()) && !at::isComplexType(t.scalar_type())) {
      throw Napi::TypeError::New(env, "pgAllReduceAsync: op 'avg' needs a floating-point tensor, got " +
                                          std::string(c10::toString(t.scalar_type())) + " (use 'sum' and divide yourself)");
    }
    w->target = t;
    w->buffer = Contiguous(t);
    w->worldSize = h->worldSize;
    w->timeout = h->timeout;
    w->pending = h->pending;
    std::vector<at::Tensor> tensors{w->buffer};
    c10d::AllreduceOptions ro;
    ro.reduceOp = op;
    ro.timeout = h->timeout;
    w->work = h->pg->allreduce(tensors, ro);
    h->pending->fetch_add(1);
#endif
    auto external = Napi::External<WorkHandle>::New(env, guard.release(), FinalizeWork);
    napi_type_tag_object(env, external, &kWorkTag);
    return external;
  })
}

Napi::Value PgWorkWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "pgWorkWait", {
    WorkHandle* w = GetWork(env, info[0], "pgWorkWait");
    if (w->waited) throw Napi::Error::New(env, "pgWorkWait: this all-reduce was already waited for");
#ifdef VLM_WITH_C10D
    w->waited = true;
    struct Done {
      std::shared_ptr<std::atomic<int>> p;
      ~Done() { p->fetch_sub(1); }
    } done{w->pending};
    w->work->wait(w->timeout);
    if (w->avg) {
      at::NoGradGuard g;
      w->buffer.div_(static_cast<double>(w->worldSize));
    }
    WriteBack(w->target, w->buffer);
#endif
    // The tensors are the caller's again; the handle no longer pins them.
    w->target = at::Tensor();
    w->buffer = at::Tensor();
    return env.Undefined();
  })
}

Napi::Value PgWorkDone(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "pgWorkDone", {
    WorkHandle* w = GetWork(env, info[0], "pgWorkDone");
    bool done = w->waited;
#ifdef VLM_WITH_C10D
    if (!done && w->work) done = w->work->isCompleted();
#endif
    return Napi::Boolean::New(env, done);
  })
}

// ---- the rendezvous store --------------------------------------------------

std::string StoreKey(Napi::Env env, const Napi::Value& v, const char* op) {
  if (!v.IsString()) throw Napi::TypeError::New(env, std::string(op) + ": key must be a string");
  std::string key = v.As<Napi::String>().Utf8Value();
  if (key.empty()) throw Napi::Error::New(env, std::string(op) + ": key is empty");
  return key;
}

Napi::Value PgStoreSet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "pgStoreSet", {
    PgHandle* h = GetGroup(env, info[0], "pgStoreSet");
    std::string key = StoreKey(env, info[1], "pgStoreSet");
    if (!info[2].IsString()) throw Napi::TypeError::New(env, "pgStoreSet: value must be a string");
    std::string value = info[2].As<Napi::String>().Utf8Value();
#ifdef VLM_WITH_C10D
    h->store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
#endif
    return env.Undefined();
  })
}

Napi::Value PgStoreGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "pgStoreGet", {
    PgHandle* h = GetGroup(env, info[0], "pgStoreGet");
    std::string key = StoreKey(env, info[1], "pgStoreGet");
#ifdef VLM_WITH_C10D
    // check() first: get() would wait for a missing key up to the store's timeout.
    if (!h->store->check({key})) return env.Null();
    std::vector<uint8_t> v = h->store->get(key);
    return Napi::String::New(env, std::string(v.begin(), v.end()));
#else
    return env.Null();
#endif
  })
}

Napi::Value PgStoreAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "pgStoreAdd", {
    PgHandle* h = GetGroup(env, info[0], "pgStoreAdd");
    std::string key = StoreKey(env, info[1], "pgStoreAdd");
    int64_t n = ToInt64(env, info[2], "pgStoreAdd: n");
#ifdef VLM_WITH_C10D
    return Napi::Number::New(env, static_cast<double>(h->store->add(key, n)));
#else
    return Napi::Number::New(env, static_cast<double>(n));
#endif
  })
}

}  // namespace

void RegisterDistributedAsync(Napi::Env env, Napi::Object exports) {
  exports.Set("pgAllReduceAsync", Napi::Function::New(env, PgAllReduceAsync, "pgAllReduceAsync"));
  exports.Set("pgWorkWait", Napi::Function::New(env, PgWorkWait, "pgWorkWait"));
  exports.Set("pgWorkDone", Napi::Function::New(env, PgWorkDone, "pgWorkDone"));
  exports.Set("pgStoreSet", Napi::Function::New(env, PgStoreSet, "pgStoreSet"));
  exports.Set("pgStoreGet", Napi::Function::New(env, PgStoreGet, "pgStoreGet"));
  exports.Set("pgStoreAdd", Napi::Function::New(env, PgStoreAdd, "pgStoreAdd"));
}

}  // namespace vlm
