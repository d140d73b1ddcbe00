// The C allocator's behaviour for long runs (glibc only; elsewhere a no-op).
//
// glibc serves allocations above M_MMAP_THRESHOLD with their own mmap, which
// free() returns to the system at once; smaller ones come from heap arenas,
// whose free space stays in the process. A tensor served by mmap costs a
// page fault per 4 KiB page each time it is allocated, and a training step
// allocates and frees its activations and gradients every time: on this
// project's 2-core VM a fixed 128 KiB threshold made the demo's SFT step 4x
// slower (0.25-0.33 s instead of 0.07 s; half the time in the kernel's page
// faults; BENCHMARKS.md "Memory over long GRPO runs"). So temporaries must come from
// the heap: the addon fixes the threshold at 32 MiB (glibc's own ceiling for
// its dynamic threshold, reached at once instead of after the first large
// free, and not lowered again), unless the user set MALLOC_MMAP_THRESHOLD_.
//
// The heap's catch is fragmentation: a long-lived block (a cached image, a
// buffer the garbage collector has not freed yet) between freed temporaries
// pins their pages, and resident memory creeps up while nothing leaks (2,000
// distinct images through a 16 MiB image cache: up to 60 MiB on libtorch
// 1.13, over 200 MiB on 2.x). So what is kept for long, the image cache's
// tensors, is copied into memory of its own with cloneOutsideHeap (one
// anonymous mapping per tensor, returned to the system when the tensor is
// freed), and long loops trim the heap when memory climbs above its last
// peak (trimHeapNowAndThen, src/torch/memory.ts).
#include "common.h"

#include <cstdlib>
#include <cstring>

#include <sys/mman.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace vlm {

namespace {

constexpr int kMmapThreshold = 32 * 1024 * 1024;
// Free memory at the top of the heap that free() keeps instead of returning it
// to the system. Fixing M_MMAP_THRESHOLD also fixes glibc's trim threshold at
// its 128 KiB default (glibc raises it only with its dynamic mmap threshold),
// so every freed attention matrix at the heap's top went back to the system
// and was page-faulted in again on the next step: the demo model's attention
// forward + backward took 35-54 ms instead of 14 (BENCHMARKS.md, "Memory
// over long GRPO runs"). Long loops give memory back themselves
// (trimHeapNowAndThen, src/torch/memory.ts), so the heap may keep this much.
constexpr int kTrimThreshold = 256 * 1024 * 1024;
// What the addon set at load: the threshold in bytes, 0 when left to glibc, -1 without glibc.
int gMmapThreshold = -1;
// The trim threshold set at load, 0 when left to glibc (the user set MALLOC_TRIM_THRESHOLD_), -1 without glibc.
int gTrimThreshold = -1;

// allocatorInfo() -> { glibc, mmapThreshold, trimThreshold }: the thresholds fixed at load, or null.
Napi::Value AllocatorInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
#if defined(__GLIBC__)
  out.Set("glibc", true);
#else
  out.Set("glibc", false);
#endif
  out.Set("mmapThreshold", gMmapThreshold > 0 ? Napi::Value(Napi::Number::New(env, gMmapThreshold)) : env.Null());
  out.Set("trimThreshold", gTrimThreshold > 0 ? Napi::Value(Napi::Number::New(env, gTrimThreshold)) : env.Null());
  return out;
}

// mallocTrim() -> bool: gives free heap memory back to the system (glibc's malloc_trim(0)); false without glibc.
Napi::Value MallocTrim(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

// cloneOutsideHeap(t) -> a contiguous copy of a CPU tensor in an anonymous
// mapping of its own, unmapped when the copy's storage is freed; tensors on
// other devices (and empty ones) get a plain contiguous clone.
Napi::Value CloneOutsideHeap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "cloneOutsideHeap", {
    const at::Tensor& t = GetTensor(env, info[0], "cloneOutsideHeap: argument 'self'");
    const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
    if (!t.device().is_cpu() || bytes == 0) return WrapTensor(env, t.detach().clone(at::MemoryFormat::Contiguous));
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap of " + std::to_string(bytes) + " bytes failed: " + std::strerror(errno));
    at::Tensor out = at::from_blob(p, t.sizes(), [bytes](void* d) { munmap(d, bytes); }, t.options().requires_grad(false));
    out.copy_(t.detach());
    return WrapTensor(env, out);
  })
}

}  // namespace

void RegisterAllocator(Napi::Env env, Napi::Object exports) {
#if defined(__GLIBC__)
  if (gMmapThreshold < 0) {
    const char* user = std::getenv("MALLOC_MMAP_THRESHOLD_");
    gMmapThreshold = (user == nullptr && mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1) ? kMmapThreshold : 0;
  }
  if (gTrimThreshold < 0) {
    const char* user = std::getenv("MALLOC_TRIM_THRESHOLD_");
    gTrimThreshold = (user == nullptr && mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1) ? kTrimThreshold : 0;
  }
#endif
  exports.Set("allocatorInfo", Napi::Function::New(env, AllocatorInfo, "allocatorInfo"));
  exports.Set("mallocTrim", Napi::Function::New(env, MallocTrim, "mallocTrim"));
  exports.Set("cloneOutsideHeap", Napi::Function::New(env, CloneOutsideHeap, "cloneOutsideHeap"));
}

}  // namespace vlm
