// Element-wise ops: arithmetic (tensor or number operand), comparisons, activations, and the
// in-place ops the optimizer uses. A number operand becomes a Scalar as in PyTorch.
#include "common.h"

namespace ls {
namespace {

#define UNARY(NAME, EXPR)                            \
  Napi::Value NAME(Args& a) {                        \
    const at::Tensor& x = a.tensor(0);               \
    return a.ret(EXPR);                              \
  }

UNARY(Neg, at::neg(x))
UNARY(Exp, at::exp(x))
UNARY(Log, at::log(x))
UNARY(Sqrt, at::sqrt(x))
UNARY(Rsqrt, at::rsqrt(x))
UNARY(Abs, at::abs(x))
UNARY(Square, at::square(x))
UNARY(Sigmoid, at::sigmoid(x))
UNARY(Relu, at::relu(x))
UNARY(Tanh, at::tanh(x))
UNARY(LogicalNot, at::logical_not(x))
UNARY(Sign, at::sign(x))
UNARY(Floor, at::floor(x))
UNARY(Round, at::round(x))
#undef UNARY

// Ops whose second operand may be a tensor or a number.
#define BINARY(NAME, TENSOR_EXPR, SCALAR_EXPR)                    \
  Napi::Value NAME(Args& a) {                                     \
    const at::Tensor& x = a.tensor(0);                            \
    if (a.isTensor(1)) {                                          \
      const at::Tensor& y = a.tensor(1);                          \
      return a.ret(TENSOR_EXPR);                                  \
    }                                                             \
    at::Scalar s = a.scalar(1);                                   \
    return a.ret(SCALAR_EXPR);                                    \
  }

BINARY(Mul, at::mul(x, y), at::mul(x, s))
BINARY(Div, at::div(x, y), at::div(x, s))
BINARY(Eq, at::eq(x, y), at::eq(x, s))
BINARY(Ne, at::ne(x, y), at::ne(x, s))
BINARY(Gt, at::gt(x, y), at::gt(x, s))
BINARY(Ge, at::ge(x, y), at::ge(x, s))
BINARY(Lt, at::lt(x, y), at::lt(x, s))
BINARY(Le, at::le(x, y), at::le(x, s))
BINARY(Maximum, at::maximum(x, y), at::clamp_min(x, s))
BINARY(Minimum, at::minimum(x, y), at::clamp_max(x, s))
#undef BINARY

at::Scalar Alpha(const Args& a, size_t i) { return a.isNullish(i) ? at::Scalar(int64_t{1}) : a.scalar(i); }

Napi::Value Add(Args& a) {
  const at::Tensor& x = a.tensor(0);
  if (a.isTensor(1)) return a.ret(at::add(x, a.tensor(1), Alpha(a, 2)));
  return a.ret(at::add(x, a.scalar(1), Alpha(a, 2)));
}

Napi::Value Sub(Args& a) {
  const at::Tensor& x = a.tensor(0);
  if (a.isTensor(1)) return a.ret(at::sub(x, a.tensor(1), Alpha(a, 2)));
  return a.ret(at::sub(x, a.scalar(1), Alpha(a, 2)));
}

Napi::Value Pow(Args& a) {
  const at::Tensor& x = a.tensor(0);
  if (a.isTensor(1)) return a.ret(at::pow(x, a.tensor(1)));
  return a.ret(at::pow(x, a.scalar(1)));
}

Napi::Value LogicalAnd(Args& a) { return a.ret(at::logical_and(a.tensor(0), a.tensor(1))); }
Napi::Value LogicalOr(Args& a) { return a.ret(at::logical_or(a.tensor(0), a.tensor(1))); }

Napi::Value Clamp(Args& a) {
  c10::optional<at::Scalar> low, high;
  if (!a.isNullish(1)) low = a.scalar(1);
  if (!a.isNullish(2)) high = a.scalar(2);
  return a.ret(at::clamp(a.tensor(0), low, high));
}

Napi::Value LeakyRelu(Args& a) { return a.ret(at::leaky_relu(a.tensor(0), a.scalar(1))); }

Napi::Value Where(Args& a) {
  const at::Tensor& c = a.tensor(0);
  bool xt = a.isTensor(1), yt = a.isTensor(2);
  if (xt && yt) return a.ret(at::where(c, a.tensor(1), a.tensor(2)));
  if (xt) return a.ret(at::where(c, a.tensor(1), a.scalar(2)));
  if (yt) return a.ret(at::where(c, a.scalar(1), a.tensor(2)));
  return a.ret(at::where(c, a.scalar(1), a.scalar(2)));
}

// ------------------------------------------------------------ in place (return nothing; JS keeps the handle)

Napi::Value AddInPlace(Args& a) {
  const at::Tensor& t = a.tensor(0);
  if (a.isTensor(1)) {
    t.add_(a.tensor(1), Alpha(a, 2));
  } else {
    t.add_(a.scalar(1), Alpha(a, 2));
  }
  return a.env().Undefined();
}

// In-place leaky ReLU on an activation (PyTorch's LeakyReLU(inplace=True), as nnU-Net uses): saves
// one activation-sized buffer per conv block; autograd records it like the out-of-place op.
Napi::Value LeakyReluInPlace(Args& a) {
  at::Tensor t = a.tensor(0);
  at::leaky_relu_(t, a.scalar(1));
  return a.env().Undefined();
}

Napi::Value MulInPlace(Args& a) {
  const at::Tensor& t = a.tensor(0);
  if (a.isTensor(1)) {
    t.mul_(a.tensor(1));
  } else {
    t.mul_(a.scalar(1));
  }
  return a.env().Undefined();
}

// addcmul_(target, t1, t2, value): target += value * t1 * t2 (optimizer moments).
Napi::Value AddcmulInPlace(Args& a) {
  a.tensor(0).addcmul_(a.tensor(1), a.tensor(2), a.scalar(3));
  return a.env().Undefined();
}

Napi::Value CopyInPlace(Args& a) {
  a.tensor(0).copy_(a.tensor(1));
  return a.env().Undefined();
}

Napi::Value ZeroInPlace(Args& a) {
  a.tensor(0).zero_();
  return a.env().Undefined();
}

Napi::Value FillInPlace(Args& a) {
  a.tensor(0).fill_(a.scalar(1));
  return a.env().Undefined();
}

}  // namespace

const std::vector<OpDef>& PointwiseOps() {
  static const std::vector<OpDef> ops = {
      {"neg", 1, 1, Neg},
      {"exp", 1, 1, Exp},
      {"log", 1, 1, Log},
      {"sqrt", 1, 1, Sqrt},
      {"rsqrt", 1, 1, Rsqrt},
      {"abs", 1, 1, Abs},
      {"square", 1, 1, Square},
      {"sigmoid", 1, 1, Sigmoid},
      {"relu", 1, 1, Relu},
      {"tanh", 1, 1, Tanh},
      {"logicalNot", 1, 1, LogicalNot},
      {"sign", 1, 1, Sign},
      {"floor", 1, 1, Floor},
      {"round", 1, 1, Round},
      {"add", 2, 3, Add},
      {"sub", 2, 3, Sub},
      {"mul", 2, 2, Mul},
      {"div", 2, 2, Div},
      {"pow", 2, 2, Pow},
      {"eq", 2, 2, Eq},
      {"ne", 2, 2, Ne},
      {"gt", 2, 2, Gt},
      {"ge", 2, 2, Ge},
      {"lt", 2, 2, Lt},
      {"le", 2, 2, Le},
      {"maximum", 2, 2, Maximum},
      {"minimum", 2, 2, Minimum},
      {"logicalAnd", 2, 2, LogicalAnd},
      {"logicalOr", 2, 2, LogicalOr},
      {"clamp", 3, 3, Clamp},
      {"leakyRelu", 2, 2, LeakyRelu},
      {"where", 3, 3, Where},
      {"addInPlace", 2, 3, AddInPlace},
      {"leakyReluInPlace", 2, 2, LeakyReluInPlace},
      {"mulInPlace", 2, 2, MulInPlace},
      {"addcmulInPlace", 4, 4, AddcmulInPlace},
      {"copyInPlace", 2, 2, CopyInPlace},
      {"zeroInPlace", 1, 1, ZeroInPlace},
      {"fillInPlace", 2, 2, FillInPlace},
  };
  return ops;
}

}  // namespace ls
