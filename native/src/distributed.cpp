// c10d process groups: Gloo (CPU, and CUDA tensors where Gloo has CUDA) and
// NCCL (CUDA), rendezvous through a TCPStore hosted by rank 0.
//
// Entries (all registered whatever was compiled in; pgInit says what is missing):
//   pgInit({backend, rank, worldSize, masterAddr, masterPort, timeoutMs, hostStore, storePrefix}) -> Promise<pg>
//       Connects off the JS thread (rendezvous can wait for peers). hostStore:
//       this process runs the TCPStore server (rank 0 when nothing else does;
//       under torchrun 2.x the agent hosts it and every rank is a client).
//       storePrefix: every key goes under it (a restarted torchrun attempt
//       must not see the keys of the previous one).
//   pgAllReduce(pg, tensor, op)      in place; op: "sum"|"avg"|"max"|"min"|"product"
//   pgBroadcast(pg, tensor, src)     in place
//   pgAllGather(pg, tensor) -> [tensor per rank]
//   pgBarrier(pg)
//   pgAllReduceAsync(pg, tensor, op) -> work   starts an all-reduce and returns at once
//   pgWorkWait(work)                 waits for it (then divides for "avg" and writes back)
//   pgWorkDone(work) -> bool         whether it finished (without waiting)
//   pgStoreSet(pg, key, value)       the rendezvous store's key/value API (strings),
//   pgStoreGet(pg, key) -> string|null   without waiting for missing keys,
//   pgStoreAdd(pg, key, n) -> number     for failure reports between ranks
//   pgInfo(pg) -> {backend, rank, worldSize, address, destroyed}
//   pgDestroy(pg)                    idempotent
// The blocking collectives wait on the calling (JS) thread (work->wait). The
// async all-reduce runs on the backend's own threads (Gloo's worker pool,
// NCCL's stream) so that the JS thread can prepare the next gradient bucket
// meanwhile; its work handle keeps the tensors alive until it is waited for.
#include "distributed.h"

namespace vlm {
namespace {

const napi_type_tag kProcessGroupTag = {0x766c6d2d6772706fULL, 0x7067000000000001ULL};

// Live groups, torn down when their JS environment ends so that Gloo's
// worker threads and the store's server thread never outlive it. Global
// (worker threads load the addon once per process), hence the mutex.
std::mutex gGroupsMutex;
std::set<PgHandle*> gLiveGroups;
std::set<napi_env> gEnvsWithHook;

void Teardown(PgHandle* h) {
  {
    std::lock_guard<std::mutex> lock(gGroupsMutex);
    if (!h->live) return;
    h->live = false;
    gLiveGroups.erase(h);
  }
#ifdef VLM_WITH_C10D
  if (h->pending->load() > 0) {
    (void)h->pg.release();     // deliberately leaked: see PgHandle::pending
    (void)h->store.release();
    return;
  }
  h->pg.reset();     // joins the backend's threads
  h->store.reset();  // rank 0: stops the store server
#endif
}

void FinalizeGroup(Napi::Env, PgHandle* h) {
  Teardown(h);
  delete h;
}

void CleanupEnv(napi_env env) {
  std::vector<PgHandle*> mine;
  {
    std::lock_guard<std::mutex> lock(gGroupsMutex);
    gEnvsWithHook.erase(env);
    for (PgHandle* h : gLiveGroups) {
      if (h->env == env) mine.push_back(h);
    }
  }
  for (PgHandle* h : mine) Teardown(h);
}

void TrackGroup(Napi::Env env, PgHandle* h) {
  bool addHook = false;
  {
    std::lock_guard<std::mutex> lock(gGroupsMutex);
    gLiveGroups.insert(h);
    addHook = gEnvsWithHook.insert(env).second;
  }
  if (addHook) {
    napi_env raw = env;
    env.AddCleanupHook([raw]() { CleanupEnv(raw); });
  }
}

}  // namespace

PgHandle* GetGroup(Napi::Env env, const Napi::Value& value, const std::string& what, bool requireLive) {
  bool ok = false;
  if (value.IsExternal()) {
    napi_check_object_type_tag(env, value, &kProcessGroupTag, &ok);
  }
  if (!ok) throw Napi::TypeError::New(env, what + ": expected a process group handle (from pgInit)");
  PgHandle* h = value.As<Napi::External<PgHandle>>().Data();
  if (requireLive && !h->live) throw Napi::Error::New(env, what + ": the process group was destroyed");
  return h;
}

namespace {

std::string StringOption(Napi::Env env, const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw Napi::TypeError::New(env, std::string("pgInit: options.") + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

int64_t IntOption(Napi::Env env, const Napi::Object& o, const char* key) {
  return ToInt64(env, o.Get(key), std::string("pgInit: options.") + key);
}

#ifdef VLM_WITH_C10D

struct InitOptions {
  std::string backend;
  int rank = 0;
  int worldSize = 1;
  std::string masterAddr;
  uint16_t masterPort = 0;
  std::chrono::milliseconds timeout{0};
  bool hostStore = false;
  std::string storePrefix;
};

bool IsLoopback(const std::string& addr) {
  return addr == "localhost" || addr == "::1" || addr.rfind("127.", 0) == 0;
}

#ifdef VLM_WITH_GLOO
// Which network device Gloo binds to: GLOO_SOCKET_IFNAME (comma-separated
// interfaces) as in PyTorch; else loopback when the master is on loopback
// (single-machine runs); else the address this machine's hostname resolves to.
std::vector<std::shared_ptr<::gloo::transport::Device>> GlooDevices(const std::string& masterAddr) {
  std::vector<std::shared_ptr<::gloo::transport::Device>> devices;
  const char* ifnames = std::getenv("GLOO_SOCKET_IFNAME");
  if (ifnames != nullptr && *ifnames != '\0') {
    std::string list(ifnames);
    size_t start = 0;
    while (start <= list.size()) {
      size_t end = list.find(',', start);
      if (end == std::string::npos) end = list.size();
      std::string name = list.substr(start, end - start);
      if (!name.empty()) devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
      start = end + 1;
    }
  } else if (IsLoopback(masterAddr)) {
    devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  return devices;
}
#endif

// The rendezvous: the store connects and the backend meets its peers, both of
// which wait for the other ranks. It runs on a thread of its own, detached,
// not on libuv's pool: a store call that never returns (a libtorch 1.x
// client facing torchrun 2.x's store, whose protocol differs) must not keep
// the process from exiting, and process.exit joins the pool's threads.
// Run() works on that thread; Settle() resolves the promise on the JS thread.
class InitJob {
 public:
  explicit InitJob(InitOptions opts) : opts_(std::move(opts)) {}

  void Run() {
    const std::string where = opts_.masterAddr + ":" + std::to_string(opts_.masterPort);
    const std::string who = "rank " + std::to_string(opts_.rank) + " of " + std::to_string(opts_.worldSize) + " (" + opts_.backend + ")";
    // One process hosts the store (rank 0, unless torchrun's agent does);
    // the others connect to it, retrying until the deadline (they may start
    // before the host listens, and libtorch 1.13's client gives up early on
    // short timeouts).
    const auto deadline = std::chrono::steady_clock::now() + opts_.timeout;
    auto backoff = std::chrono::milliseconds(25);
    while (true) {
      try {
        auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        c10d::TCPStoreOptions so;
        so.port = opts_.masterPort;
        so.isServer = opts_.hostStore;
        so.numWorkers = static_cast<std::size_t>(opts_.worldSize);
        so.waitWorkers = false;  // JoinAll below waits, with a clearer message
        so.timeout = so.isServer ? opts_.timeout : std::max(remaining, std::chrono::milliseconds(1));
        auto tcp = c10::make_intrusive<c10d::TCPStore>(opts_.masterAddr, so);
        tcp->setTimeout(opts_.timeout);
        if (opts_.storePrefix.empty()) {
          store_ = tcp;
        } else {
          store_ = c10::make_intrusive<c10d::PrefixStore>(opts_.storePrefix, tcp);
        }
        break;
      } catch (const std::exception& e) {
        if (!opts_.hostStore && std::chrono::steady_clock::now() + backoff < deadline) {
          std::this_thread::sleep_for(backoff);
          backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
          continue;
        }
        SetError("pgInit: " + who + (opts_.hostStore ? " could not host the TCPStore at " : " could not reach the TCPStore at ") +
                 where + (opts_.hostStore ? "" : " within " + std::to_string(opts_.timeout.count()) + " ms") + ": " + ExceptionMessage(e));
        return;
      }
    }
    try {
      int64_t joined = JoinAll();
      if (joined < opts_.worldSize) {
        SetError("pgInit: " + who + ": only " + std::to_string(joined) + " of " + std::to_string(opts_.worldSize) +
                 " ranks joined the rendezvous at " + where + " within " + std::to_string(opts_.timeout.count()) +
                 " ms (start every rank with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE, and distinct RANKs)");
        return;
      }
    } catch (const std::exception& e) {
      SetError("pgInit: " + who + " lost the TCPStore at " + where + " while waiting for the other ranks: " + ExceptionMessage(e));
      return;
    }
    try {
      if (opts_.backend == "gloo") {
#ifdef VLM_WITH_GLOO
        auto options = c10d::ProcessGroupGloo::Options::create(opts_.timeout);
        options->devices = GlooDevices(opts_.masterAddr);
        pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, opts_.rank, opts_.worldSize, options);
#endif
      } else {
#ifdef VLM_WITH_NCCL
        auto options = c10d::ProcessGroupNCCL::Options::create();
        options->timeout = opts_.timeout;
        pg_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store_, opts_.rank, opts_.worldSize, options);
#endif
      }
    } catch (const std::exception& e) {
      SetError("pgInit: " + who + " failed to connect to its peers (rendezvous at " + where + ", timeout " +
               std::to_string(opts_.timeout.count()) + " ms): " + ExceptionMessage(e));
      return;
    }
    if (!pg_) SetError("pgInit: backend '" + opts_.backend + "' was not compiled in");
  }

  void SetError(std::string message) { error_ = std::move(message); }

  // Every rank counts itself in, then waits until all have (or the timeout
  // passes). Returns how many ranks had joined.
  int64_t JoinAll() {
    const std::string key = "vlm_grpo/pg_joined";
    int64_t n = store_->add(key, 1);
    const auto deadline = std::chrono::steady_clock::now() + opts_.timeout;
    while (n < opts_.worldSize && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      n = store_->add(key, 0);
    }
    return n;
  }

  void Settle(Napi::Env env, Napi::Promise::Deferred& deferred) {
    if (!error_.empty()) {
      // Drop whatever half-made state there is on the JS thread.
      pg_.reset();
      store_.reset();
      deferred.Reject(Napi::Error::New(env, error_).Value());
      return;
    }
    auto* h = new PgHandle();
    h->store = std::move(store_);
    h->pg = std::move(pg_);
    h->backend = opts_.backend;
    h->address = opts_.masterAddr + ":" + std::to_string(opts_.masterPort);
    h->rank = opts_.rank;
    h->worldSize = opts_.worldSize;
    h->timeout = opts_.timeout;
    h->env = env;
    TrackGroup(env, h);
    auto external = Napi::External<PgHandle>::New(env, h, FinalizeGroup);
    napi_type_tag_object(env, external, &kProcessGroupTag);
    deferred.Resolve(external);
  }

 private:
  InitOptions opts_;
  std::string error_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<PgBase> pg_;
};

void Wait(PgHandle* h, const c10::intrusive_ptr<c10d::Work>& work) {
  work->wait(h->timeout);
}

}  // namespace

c10d::ReduceOp ParseReduceOp(Napi::Env env, const Napi::Value& v, bool* avg) {
  if (!v.IsString()) throw Napi::TypeError::New(env, "pgAllReduce: op must be one of 'sum', 'avg', 'max', 'min', 'product'");
  std::string op = v.As<Napi::String>().Utf8Value();
  *avg = false;
  if (op == "sum") return c10d::ReduceOp(c10d::ReduceOp::SUM);
  if (op == "avg") {
    *avg = true;  // Gloo has no AVG: sum, then divide by the world size.
    return c10d::ReduceOp(c10d::ReduceOp::SUM);
  }
  if (op == "max") return c10d::ReduceOp(c10d::ReduceOp::MAX);
  if (op == "min") return c10d::ReduceOp(c10d::ReduceOp::MIN);
  if (op == "product") return c10d::ReduceOp(c10d::ReduceOp::PRODUCT);
  throw Napi::Error::New(env, "pgAllReduce: unknown op '" + op + "' (expected 'sum', 'avg', 'max', 'min' or 'product')");
}

at::Tensor Contiguous(const at::Tensor& t) {
  return t.is_contiguous() ? t : t.contiguous();
}

void WriteBack(const at::Tensor& target, const at::Tensor& work) {
  if (!target.is_same(work)) {
    at::NoGradGuard guard;
    target.copy_(work);
  }
}

namespace {

#endif  // VLM_WITH_C10D

Napi::Value PgInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "pgInit", {
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "pgInit: expected an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    std::string backend = StringOption(env, o, "backend");
    if (backend != "gloo" && backend != "nccl") {
      throw Napi::Error::New(env, "pgInit: unknown backend '" + backend + "' (expected 'gloo' or 'nccl')");
    }
#ifndef VLM_WITH_GLOO
    if (backend == "gloo") {
      throw Napi::Error::New(env, "pgInit: backend 'gloo' is not available: the addon was built without c10d/Gloo "
                                  "(Debian: apt-get install libgloo-dev, then rebuild with 'npm run build:native')");
    }
#endif
#ifndef VLM_WITH_NCCL
    if (backend == "nccl") {
      throw Napi::Error::New(env, "pgInit: backend 'nccl' is not available: the addon was built without NCCL "
                                  "(it needs a CUDA libtorch with c10d NCCL headers and nccl.h: rebuild with "
                                  "LIBTORCH_USE_PYTORCH=1 on a CUDA machine), or use backend 'gloo'");
    }
#endif
    int64_t worldSize = IntOption(env, o, "worldSize");
    int64_t rank = IntOption(env, o, "rank");
    if (worldSize < 1 || worldSize > (1 << 20)) {
      throw Napi::RangeError::New(env, "pgInit: worldSize must be at least 1, got " + std::to_string(worldSize));
    }
    if (rank < 0 || rank >= worldSize) {
      throw Napi::RangeError::New(env, "pgInit: rank must be in [0, " + std::to_string(worldSize) + "), got " + std::to_string(rank));
    }
    std::string addr = StringOption(env, o, "masterAddr");
    if (addr.empty()) throw Napi::Error::New(env, "pgInit: masterAddr is empty");
    int64_t port = IntOption(env, o, "masterPort");
    if (port < 1 || port > 65535) throw Napi::RangeError::New(env, "pgInit: masterPort must be in [1, 65535], got " + std::to_string(port));
    int64_t timeoutMs = IntOption(env, o, "timeoutMs");
    if (timeoutMs < 1) throw Napi::RangeError::New(env, "pgInit: timeoutMs must be positive, got " + std::to_string(timeoutMs));
    // Optional: default rank 0 hosts, no prefix.
    Napi::Value hostV = o.Get("hostStore");
    if (!hostV.IsUndefined() && !hostV.IsBoolean()) throw Napi::TypeError::New(env, "pgInit: options.hostStore must be a boolean");
    bool hostStore = hostV.IsBoolean() ? hostV.As<Napi::Boolean>().Value() : rank == 0;
    Napi::Value prefixV = o.Get("storePrefix");
    if (!prefixV.IsUndefined() && !prefixV.IsString()) throw Napi::TypeError::New(env, "pgInit: options.storePrefix must be a string");
    std::string storePrefix = prefixV.IsString() ? prefixV.As<Napi::String>().Utf8Value() : "";
#ifdef VLM_WITH_C10D
    InitOptions opts;
    opts.backend = backend;
    opts.rank = static_cast<int>(rank);
    opts.worldSize = static_cast<int>(worldSize);
    opts.masterAddr = addr;
    opts.masterPort = static_cast<uint16_t>(port);
    opts.timeout = std::chrono::milliseconds(timeoutMs);
    opts.hostStore = hostStore;
    opts.storePrefix = storePrefix;
    auto job = std::make_shared<InitJob>(std::move(opts));
    auto deferred = std::make_shared<Napi::Promise::Deferred>(Napi::Promise::Deferred::New(env));
    Napi::Promise promise = deferred->Promise();
    // Keeps the event loop alive until the job settles (like an AsyncWorker).
    auto done = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "vlm:pgInit", 0, 1);
    std::thread([job, deferred, done]() mutable {
      try {
        job->Run();
      } catch (const std::exception& e) {
        job->SetError(std::string("pgInit: ") + ExceptionMessage(e));
      } catch (...) {
        job->SetError("pgInit: unknown native error");
      }
      done.BlockingCall([job, deferred](Napi::Env env, Napi::Function) { job->Settle(env, *deferred); });
      done.Release();
    }).detach();
    return promise;
#else
    throw Napi::Error::New(env, "pgInit: the addon was built without c10d");
#endif
  })
}

Napi::Value PgAllReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "pgAllReduce", {
    PgHandle* h = GetGroup(env, info[0], "pgAllReduce");
    const at::Tensor& t = GetTensor(env, info[1], "pgAllReduce: argument 'tensor'");
#ifdef VLM_WITH_C10D
    bool avg = false;
    c10d::ReduceOp op = ParseReduceOp(env, info[2], &avg);
    if (avg && !at::isFloatingType(t.scalar_type()) && !at::isComplexType(t.scalar_type())) {
      throw Napi::TypeError::New(env, "pgAllReduce: op 'avg' needs a floating-point tensor, got " +
                                          std::string(c10::toString(t.scalar_type())) + " (use 'sum' and divide yourself)");
    }
    std::vector<at::Tensor> tensors{Contiguous(t)};
    c10d::AllreduceOptions ro;
    ro.reduceOp = op;
    ro.timeout = h->timeout;
    Wait(h, h->pg->allreduce(tensors, ro));
    if (avg) {
      at::NoGradGuard guard;
      tensors[0].div_(static_cast<double>(h->worldSize));
    }
    WriteBack(t, tensors[0]);
#endif
    return env.Undefined();
  })
}

Napi::Value PgBroadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "pgBroadcast", {
    PgHandle* h = GetGroup(env, info[0], "pgBroadcast");
    const at::Tensor& t = GetTensor(env, info[1], "pgBroadcast: argument 'tensor'");
    int64_t src = ToInt64(env, info[2], "pgBroadcast: src");
    if (src < 0 || src >= h->worldSize) {
      throw Napi::RangeError::New(env, "pgBroadcast: src must be a rank in [0, " + std::to_string(h->worldSize) + "), got " + std::to_string(src));
    }
#ifdef VLM_WITH_C10D
    std::vector<at::Tensor> tensors{Contiguous(t)};
    c10d::BroadcastOptions bo;
    bo.rootRank = src;
    bo.rootTensor = 0;
    bo.timeout = h->timeout;
    Wait(h, h->pg->broadcast(tensors, bo));
    WriteBack(t, tensors[0]);
#endif
    return env.Undefined();
  })
}

Napi::Value PgAllGather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "pgAllGather", {
    PgHandle* h = GetGroup(env, info[0], "pgAllGather");
    const at::Tensor& t = GetTensor(env, info[1], "pgAllGather: argument 'tensor'");
    Napi::Array out = Napi::Array::New(env);
#ifdef VLM_WITH_C10D
    std::vector<at::Tensor> inputs{Contiguous(t)};
    std::vector<std::vector<at::Tensor>> outputs(1);
    for (int i = 0; i < h->worldSize; ++i) {
      outputs[0].push_back(at::empty_like(inputs[0], at::MemoryFormat::Contiguous));
    }
    c10d::AllgatherOptions ao;
    ao.timeout = h->timeout;
    Wait(h, h->pg->allgather(outputs, inputs, ao));
    for (int i = 0; i < h->worldSize; ++i) out.Set(static_cast<uint32_t>(i), WrapTensor(env, outputs[0][i]));
#endif
    return out;
  })
}

Napi::Value PgBarrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "pgBarrier", {
    PgHandle* h = GetGroup(env, info[0], "pgBarrier");
#ifdef VLM_WITH_C10D
    c10d::BarrierOptions bo;
    bo.timeout = h->timeout;
    Wait(h, h->pg->barrier(bo));
#endif
    return env.Undefined();
  })
}

Napi::Value PgInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  PgHandle* h = GetGroup(env, info[0], "pgInfo", false);
  auto out = Napi::Object::New(env);
  out.Set("backend", Napi::String::New(env, h->backend));
  out.Set("rank", Napi::Number::New(env, h->rank));
  out.Set("worldSize", Napi::Number::New(env, h->worldSize));
  out.Set("address", Napi::String::New(env, h->address));
  out.Set("destroyed", Napi::Boolean::New(env, !h->live));
  return out;
}

Napi::Value PgDestroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "pgDestroy", {
    PgHandle* h = GetGroup(env, info[0], "pgDestroy", false);
    Teardown(h);
    return env.Undefined();
  })
}

}  // namespace

void RegisterDistributed(Napi::Env env, Napi::Object exports) {
  exports.Set("pgInit", Napi::Function::New(env, PgInit, "pgInit"));
  exports.Set("pgAllReduce", Napi::Function::New(env, PgAllReduce, "pgAllReduce"));
  exports.Set("pgBroadcast", Napi::Function::New(env, PgBroadcast, "pgBroadcast"));
  exports.Set("pgAllGather", Napi::Function::New(env, PgAllGather, "pgAllGather"));
  exports.Set("pgBarrier", Napi::Function::New(env, PgBarrier, "pgBarrier"));
  exports.Set("pgInfo", Napi::Function::New(env, PgInfo, "pgInfo"));
  exports.Set("pgDestroy", Napi::Function::New(env, PgDestroy, "pgDestroy"));
  RegisterDistributedAsync(env, exports);
}

}  // namespace vlm
