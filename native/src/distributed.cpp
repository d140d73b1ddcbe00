// c10d process groups (filled in by the distributed work item).
#include "common.h"

namespace vlm {

void RegisterDistributed(Napi::Env, Napi::Object) {}

}  // namespace vlm
