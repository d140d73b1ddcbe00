// Module entry of the vlm-grpo libtorch addon: registers each file's entries.
#include "common.h"

namespace vlm {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  RegisterTensor(env, exports);
  RegisterDispatch(env, exports);
  RegisterAutograd(env, exports);
  RegisterRuntime(env, exports);
  RegisterFileIO(env, exports);
  RegisterDistributed(env, exports);
  RegisterAllocator(env, exports);
  RegisterAttention(env, exports);
  return exports;
}

}  // namespace vlm

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return vlm::Init(env, exports); }

NODE_API_MODULE(vlm_torch, InitModule)
