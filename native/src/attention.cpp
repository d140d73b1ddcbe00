// Scaled-dot-product attention for CPU, fused per (batch, head), with its own
// backward: for libtorch builds without aten::scaled_dot_product_attention
// (Debian's 1.13). The composite path (matmul, softmax, matmul as separate
// ops over the whole batch) streams each (B, H, L, S) score tensor through
// memory several times forward and backward and keeps the softmax for the
// backward; here one (batch, head) slice at a time is scored, normalized
// and multiplied while its L x S scores stay in cache, and the backward
// recomputes them from the saved log-sum-exp (as flash attention does), so
// no score tensor outlives its slice. No mask, no dropout, no causal
// masking: the vision towers' attention over whole images. Float32/float64.
#include "common.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <tuple>

namespace vlm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// One slice: q (L, E), k (S, E), v (S, Ev) -> out (L, Ev), lse (L).
void ForwardSlice(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale, at::Tensor out, at::Tensor lse) {
  at::Tensor s = at::mm(q, k.t());
  s.mul_(scale);
  at::Tensor m = std::get<0>(s.max(1, true));
  s.sub_(m).exp_();
  at::Tensor sum = s.sum(1, true);
  s.div_(sum);
  at::mm_out(out, s, v);
  lse.copy_(m.add_(sum.log_()).squeeze(1));
}

// One slice of the backward: P = exp(q k^T * scale - lse), dV = P^T dO,
// dS = P * (dO V^T - rowsum(dO * O)), dQ = dS K * scale, dK = dS^T Q * scale.
void BackwardSlice(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& out, const at::Tensor& lse,
                   const at::Tensor& dout, double scale, at::Tensor dq, at::Tensor dk, at::Tensor dv) {
  at::Tensor p = at::mm(q, k.t());
  p.mul_(scale).sub_(lse.unsqueeze(1)).exp_();
  at::mm_out(dv, p.t(), dout);
  at::Tensor ds = at::mm(dout, v.t());
  ds.sub_((dout * out).sum(1, true)).mul_(p);
  at::mm_out(dq, ds, k).mul_(scale);
  at::mm_out(dk, ds.t(), q).mul_(scale);
}

void CheckInputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  auto shape = [](const at::Tensor& t) { return "[" + c10::Join(", ", t.sizes()) + "]"; };
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) {
    throw std::invalid_argument("expected 4-D (batch, heads, length, head dim) query, key and value, got " + shape(q) + ", " + shape(k) + ", " + shape(v));
  }
  if (k.size(0) != q.size(0) || v.size(0) != q.size(0) || k.size(1) != q.size(1) || v.size(1) != q.size(1)) {
    throw std::invalid_argument("query, key and value must agree in batch and heads, got " + shape(q) + ", " + shape(k) + ", " + shape(v));
  }
  if (k.size(3) != q.size(3) || v.size(2) != k.size(2)) {
    throw std::invalid_argument("key must have the query's head dim and value the key's length, got " + shape(q) + ", " + shape(k) + ", " + shape(v));
  }
  for (const at::Tensor* t : {&q, &k, &v}) {
    if (!t->device().is_cpu()) throw std::invalid_argument("CPU tensors only, got one on " + t->device().str());
    if (t->scalar_type() != q.scalar_type()) throw std::invalid_argument("query, key and value must share a dtype");
  }
  if (q.scalar_type() != at::kFloat && q.scalar_type() != at::kDouble) {
    throw std::invalid_argument(std::string("float32 or float64 only, got ") + c10::toString(q.scalar_type()));
  }
}

std::tuple<at::Tensor, at::Tensor> Forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  const int64_t B = q.size(0), H = q.size(1), L = q.size(2), Ev = v.size(3);
  at::Tensor out = at::empty({B, H, L, Ev}, q.options());
  at::Tensor lse = at::empty({B, H, L}, q.options());
  at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
    // Grad mode is thread-local: the worker threads must not record a graph either.
    at::NoGradGuard noGrad;
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / H, h = i % H;
      ForwardSlice(q[b][h], k[b][h], v[b][h], scale, out[b][h], lse[b][h]);
    }
  });
  return {out, lse};
}

struct FusedCpuAttention : public torch::autograd::Function<FusedCpuAttention> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
    at::Tensor out, lse;
    std::tie(out, lse) = Forward(q, k, v, scale);
    ctx->save_for_backward({q, k, v, out, lse});
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &lse = saved[4];
    const double scale = ctx->saved_data["scale"].toDouble();
    const at::Tensor dout = grads[0].contiguous();
    at::Tensor dq = at::empty(q.sizes(), q.options());
    at::Tensor dk = at::empty(k.sizes(), k.options());
    at::Tensor dv = at::empty(v.sizes(), v.options());
    const int64_t H = q.size(1);
    at::parallel_for(0, q.size(0) * H, 1, [&](int64_t begin, int64_t end) {
      at::NoGradGuard noGrad;
      for (int64_t i = begin; i < end; ++i) {
        const int64_t b = i / H, h = i % H;
        BackwardSlice(q[b][h], k[b][h], v[b][h], out[b][h], lse[b][h], dout[b][h], scale, dq[b][h], dk[b][h], dv[b][h]);
      }
    });
    return {dq, dk, dv, at::Tensor()};
  }
};

// fusedCpuAttention(q, k, v, scale) -> out: softmax(q k^T * scale) v, differentiable in q, k and v.
Napi::Value FusedCpuAttentionEntry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "fusedCpuAttention", {
    const at::Tensor& q = GetTensor(env, info[0], "fusedCpuAttention: argument 'query'");
    const at::Tensor& k = GetTensor(env, info[1], "fusedCpuAttention: argument 'key'");
    const at::Tensor& v = GetTensor(env, info[2], "fusedCpuAttention: argument 'value'");
    if (!info[3].IsNumber()) throw Napi::TypeError::New(env, "fusedCpuAttention: argument 'scale' must be a number");
    const double scale = info[3].As<Napi::Number>().DoubleValue();
    CheckInputs(q, k, v);
    return WrapTensor(env, FusedCpuAttention::apply(q, k, v, scale));
  })
}

}  // namespace

void RegisterAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("fusedCpuAttention", Napi::Function::New(env, FusedCpuAttentionEntry, "fusedCpuAttention"));
}

}  // namespace vlm
