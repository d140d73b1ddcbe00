// Internal to the c10d entry points (distributed.cpp: groups, rendezvous,
// blocking collectives; distributed_async.cpp: async all-reduce and the
// store's key/value API): the process-group handle and shared helpers.
#pragma once

#include "common.h"

#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <atomic>

#if defined(VLM_WITH_GLOO) || defined(VLM_WITH_NCCL)
#define VLM_WITH_C10D 1
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#endif
#ifdef VLM_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef VLM_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace vlm {

#ifdef VLM_WITH_C10D
// libtorch 2.0 split ProcessGroup into a dispatching front and per-device
// Backends; ProcessGroupGloo/NCCL became Backends with the same collective
// signatures. We hold the backend object directly in both cases.
#if TORCH_VERSION_MAJOR >= 2
using PgBase = c10d::Backend;
#else
using PgBase = c10d::ProcessGroup;
#endif
#endif

struct PgHandle {
#ifdef VLM_WITH_C10D
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<PgBase> pg;
#endif
  std::string backend;
  std::string address;  // "host:port", for messages
  int rank = 0;
  int worldSize = 1;
  std::chrono::milliseconds timeout{0};
  napi_env env = nullptr;
  bool live = true;
  // Async collectives started and not yet waited for. Teardown with work in
  // flight leaks the backend instead of joining its threads: a collective
  // whose peer hangs would otherwise hold the process for the whole timeout
  // at exit, while the point of exiting is to let the peers fail fast.
  std::shared_ptr<std::atomic<int>> pending = std::make_shared<std::atomic<int>>(0);
};

// The live group behind a JS handle (throws unless it is one; and, with
// requireLive, unless it is still connected).
PgHandle* GetGroup(Napi::Env env, const Napi::Value& value, const std::string& what, bool requireLive = true);

#ifdef VLM_WITH_C10D
// "sum"|"avg"|"max"|"min"|"product"; *avg is set for "avg" (a sum to divide by the world size).
c10d::ReduceOp ParseReduceOp(Napi::Env env, const Napi::Value& v, bool* avg);
// Backends need dense contiguous tensors; an in-place op on any other tensor
// runs on a contiguous copy that WriteBack copies into the original.
at::Tensor Contiguous(const at::Tensor& t);
void WriteBack(const at::Tensor& target, const at::Tensor& work);
#endif

void RegisterDistributedAsync(Napi::Env env, Napi::Object exports);

}  // namespace vlm
