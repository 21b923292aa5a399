// Reductions, joins, views and re-layouts, indexing, and dtype/device moves.
#include "common.h"

#include <numeric>

namespace ls {
namespace {

std::vector<int64_t> AllDims(const at::Tensor& x) {
  std::vector<int64_t> dims(static_cast<size_t>(x.dim()));
  std::iota(dims.begin(), dims.end(), 0);
  return dims;
}

// sum(x, dims|null, keepDim) and mean: no dims means every dim.
Napi::Value Sum(Args& a) {
  const at::Tensor& x = a.tensor(0);
  bool keep = a.isNullish(2) ? false : a.boolean(2);
  if (a.isNullish(1) && !keep) return a.ret(at::sum(x));
  return a.ret(at::sum(x, a.isNullish(1) ? AllDims(x) : a.ints(1), keep));
}

Napi::Value Mean(Args& a) {
  const at::Tensor& x = a.tensor(0);
  bool keep = a.isNullish(2) ? false : a.boolean(2);
  if (a.isNullish(1) && !keep) return a.ret(at::mean(x));
  return a.ret(at::mean(x, a.isNullish(1) ? AllDims(x) : a.ints(1), keep));
}

Napi::Value Amax(Args& a) { return a.ret(at::amax(a.tensor(0), a.ints(1), a.isNullish(2) ? false : a.boolean(2))); }
Napi::Value Amin(Args& a) { return a.ret(at::amin(a.tensor(0), a.ints(1), a.isNullish(2) ? false : a.boolean(2))); }
Napi::Value Max(Args& a) { return a.ret(at::max(a.tensor(0))); }
Napi::Value Min(Args& a) { return a.ret(at::min(a.tensor(0))); }

Napi::Value Argmax(Args& a) {
  c10::optional<int64_t> dim;
  if (!a.isNullish(1)) dim = a.i64(1);
  return a.ret(at::argmax(a.tensor(0), dim, a.isNullish(2) ? false : a.boolean(2)));
}

Napi::Value Norm(Args& a) { return a.ret(at::norm(a.tensor(0))); }

Napi::Value Cat(Args& a) { return a.ret(at::cat(a.tensors(0), a.i64(1))); }
Napi::Value Stack(Args& a) { return a.ret(at::stack(a.tensors(0), a.i64(1))); }

Napi::Value Narrow(Args& a) { return a.ret(at::narrow(a.tensor(0), a.i64(1), a.i64(2), a.i64(3))); }

// slice(x, dim, start, end|null, step)
Napi::Value Slice(Args& a) {
  c10::optional<int64_t> end;
  if (!a.isNullish(3)) end = a.i64(3);
  return a.ret(at::slice(a.tensor(0), a.i64(1), a.i64(2), end, a.isNullish(4) ? 1 : a.i64(4)));
}

Napi::Value IndexSelect(Args& a) { return a.ret(at::index_select(a.tensor(0), a.i64(1), a.tensor(2))); }
Napi::Value Gather(Args& a) { return a.ret(at::gather(a.tensor(0), a.i64(1), a.tensor(2))); }
Napi::Value OneHot(Args& a) { return a.ret(at::one_hot(a.tensor(0), a.i64(1))); }

Napi::Value Flip(Args& a) { return a.ret(at::flip(a.tensor(0), a.ints(1))); }
Napi::Value Permute(Args& a) { return a.ret(a.tensor(0).permute(a.ints(1))); }
Napi::Value Reshape(Args& a) { return a.ret(at::reshape(a.tensor(0), a.ints(1))); }
Napi::Value Contiguous(Args& a) { return a.ret(a.tensor(0).contiguous()); }
Napi::Value Unsqueeze(Args& a) { return a.ret(at::unsqueeze(a.tensor(0), a.i64(1))); }
Napi::Value Squeeze(Args& a) {
  if (a.isNullish(1)) return a.ret(at::squeeze(a.tensor(0)));
  return a.ret(at::squeeze(a.tensor(0), a.i64(1)));
}
Napi::Value Expand(Args& a) { return a.ret(a.tensor(0).expand(a.ints(1))); }
Napi::Value Transpose(Args& a) { return a.ret(at::transpose(a.tensor(0), a.i64(1), a.i64(2))); }

// to(x, device|null, dtype|null): returns a new handle even when nothing changes (like torch, shares data).
Napi::Value To(Args& a) {
  const at::Tensor& x = a.tensor(0);
  c10::Device device = a.isNullish(1) ? x.device() : a.device(1);
  at::ScalarType type = a.isNullish(2) ? x.scalar_type() : a.dtype(2);
  return a.ret(x.to(device, type));
}

Napi::Value Cast(Args& a) { return a.ret(a.tensor(0).to(a.dtype(1))); }
Napi::Value Clone(Args& a) { return a.ret(a.tensor(0).clone()); }

}  // namespace

const std::vector<OpDef>& ShapeOps() {
  static const std::vector<OpDef> ops = {
      {"sum", 1, 3, Sum},
      {"mean", 1, 3, Mean},
      {"amax", 2, 3, Amax},
      {"amin", 2, 3, Amin},
      {"max", 1, 1, Max},
      {"min", 1, 1, Min},
      {"argmax", 1, 3, Argmax},
      {"norm", 1, 1, Norm},
      {"cat", 2, 2, Cat},
      {"stack", 2, 2, Stack},
      {"narrow", 4, 4, Narrow},
      {"slice", 3, 5, Slice},
      {"indexSelect", 3, 3, IndexSelect},
      {"gather", 3, 3, Gather},
      {"oneHot", 2, 2, OneHot},
      {"flip", 2, 2, Flip},
      {"permute", 2, 2, Permute},
      {"reshape", 2, 2, Reshape},
      {"contiguous", 1, 1, Contiguous},
      {"unsqueeze", 2, 2, Unsqueeze},
      {"squeeze", 1, 2, Squeeze},
      {"expand", 2, 2, Expand},
      {"transpose", 3, 3, Transpose},
      {"to", 3, 3, To},
      {"cast", 2, 2, Cast},
      {"clone", 1, 1, Clone},
  };
  return ops;
}

}  // namespace ls
