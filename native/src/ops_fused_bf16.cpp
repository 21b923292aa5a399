// ops_fused.cpp's instance norm + leaky ReLU for a bfloat16 activation (a conv's output under bf16
// autocast) with float32 (or bf16) affine parameters: bf16 in and out, statistics and arithmetic in
// fp32 (mean and variance summed into double by blocks, as the fp32 kernel), with its own backward.
// ATen's composed bf16 path (instance_norm as batch_norm over a reshaped input with repeated
// parameters, then leaky_relu_) passes over the activation ~10 times with copies in between.
// 16-float vectors (GCC vector extensions), bf16 <-> fp32 by integer shifts (round to nearest even,
// NaN kept), compiled for AVX-512 with a target attribute and run only where the CPU has it
// (AVX512F + AVX512BW); elsewhere, and with setBf16Kernels(false), the composed path runs. A plain
// SSE build of this kernel was slower than ATen's (commit e9ea595), so there is no other variant.
#include "common.h"
#include "norm_saved.h"

#include <ATen/Parallel.h>
#include <array>
#include <cstring>
#include <torch/csrc/autograd/custom_function.h>

namespace ls {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

#if defined(__x86_64__)
// Everything up to the matching pop_options (lambdas included) is compiled for AVX-512; it runs
// only after CpuHasAvx512().
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw")
typedef float F __attribute__((vector_size(64)));
typedef uint32_t U32 __attribute__((vector_size(64)));
typedef int32_t I32 __attribute__((vector_size(64)));
typedef uint16_t U16 __attribute__((vector_size(32)));
typedef uint16_t U16U __attribute__((vector_size(32), aligned(2), may_alias));
constexpr int64_t kLanes = 16;

inline __attribute__((always_inline)) F Load(const uint16_t* p) {
  return (F)(__builtin_convertvector(*reinterpret_cast<const U16U*>(p), U32) << 16);
}
inline __attribute__((always_inline)) void Store(uint16_t* p, F v) {
  U32 u = (U32)v;
  u = u + 0x7fffu + ((u >> 16) & 1u);
  u = (v == v) ? u : U32{} + 0x7fc00000u;
  *reinterpret_cast<U16U*>(p) = __builtin_convertvector(u >> 16, U16);
}
inline float ToFloat(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t ToBf16(float f) {
  if (f != f) return 0x7fc0;
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline __attribute__((always_inline)) F Splat(float a) { return F{} + a; }
inline __attribute__((always_inline)) float Lanes(F v) {
  float s = 0;
  for (int i = 0; i < kLanes; i++) s += v[i];
  return s;
}
inline __attribute__((always_inline)) F Slope(F z, F slope) { return (F)((I32)(z > Splat(0)) ? (I32)Splat(1) : (I32)slope); }

// Sums over [0, n) in double by blocks of 2048 terms in float lanes; `term(i)` is the vector of
// terms i..i+15, `scalar(i)` term i. K sums at once.
template <int K, typename FV, typename FS>
inline __attribute__((always_inline)) std::array<double, K> Sums(int64_t n, FV term, FS scalar) {
  constexpr int64_t kBlock = 2048;
  std::array<double, K> total{};
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t end = std::min(n, start + kBlock);
    std::array<F, K> acc;
    acc.fill(Splat(0));
    std::array<float, K> rest{};
    int64_t i = start;
    for (; i + kLanes <= end; i += kLanes) term(i, acc);
    for (; i < end; i++) scalar(i, rest);
    for (int k = 0; k < K; k++) total[k] += static_cast<double>(Lanes(acc[k])) + rest[k];
  }
  return total;
}

// Forward of one plane: mean, 1/std, and y = leaky_relu((x - mean) * rstd * gamma + beta).
void ForwardPlane(const uint16_t* xp, uint16_t* yp, int64_t n, float gamma, float beta, double eps,
                                                               float slope, float* mean, float* rstd) {
  const double mu = Sums<1>(
                        n, [&](int64_t i, std::array<F, 1>& a) { a[0] += Load(xp + i); }, [&](int64_t i, std::array<float, 1>& r) { r[0] += ToFloat(xp[i]); })[0] /
                    n;
  const float muf = static_cast<float>(mu);
  const F muv = Splat(muf);
  const double var = Sums<1>(
                         n,
                         [&](int64_t i, std::array<F, 1>& a) {
                           const F d = Load(xp + i) - muv;
                           a[0] += d * d;
                         },
                         [&](int64_t i, std::array<float, 1>& r) {
                           const float d = ToFloat(xp[i]) - muf;
                           r[0] += d * d;
                         })[0] /
                     n;
  const float invf = static_cast<float>(1.0 / std::sqrt(var + eps));
  *mean = muf;
  *rstd = invf;
  const float scale = static_cast<float>(static_cast<double>(invf) * gamma);
  const F scalev = Splat(scale), shiftv = Splat(beta), slopev = Splat(slope);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const F z = (Load(xp + i) - muv) * scalev + shiftv;
    Store(yp + i, z * Slope(z, slopev));
  }
  for (; i < n; i++) {
    const float z = (ToFloat(xp[i]) - muf) * scale + beta;
    yp[i] = ToBf16(z > 0 ? z : z * slope);
  }
}

// Backward of one plane: dx = rstd * gamma * (g - mean(g) - xhat * mean(g * xhat)) with g the ReLU's
// gradient; the sums of g and g * xhat (the bias's and the weight's gradients) into sums[0..1].
void BackwardPlane(const uint16_t* xp, const uint16_t* dyp, uint16_t* dxp, int64_t n, float gamma,
                                                                float beta, float slope, float mu, float r, double* sums) {
  const float scale = static_cast<float>(static_cast<double>(r) * gamma);
  const F muv = Splat(mu), rv = Splat(r), scalev = Splat(scale), betav = Splat(beta), slopev = Splat(slope);
  const auto s = Sums<2>(
      n,
      [&](int64_t i, std::array<F, 2>& a) {
        const F x = Load(xp + i);
        const F g = Load(dyp + i) * Slope((x - muv) * scalev + betav, slopev);
        a[0] += g;
        a[1] += g * ((x - muv) * rv);
      },
      [&](int64_t i, std::array<float, 2>& t) {
        const float x = ToFloat(xp[i]);
        const float z = (x - mu) * scale + beta;
        const float g = z > 0 ? ToFloat(dyp[i]) : ToFloat(dyp[i]) * slope;
        t[0] += g;
        t[1] += g * ((x - mu) * r);
      });
  sums[0] = s[0];
  sums[1] = s[1];
  const float k = r * gamma, ma = static_cast<float>(s[0] / n), mb = static_cast<float>(s[1] / n);
  const F kv = Splat(k), mav = Splat(ma), mbv = Splat(mb);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const F x = Load(xp + i);
    const F g = Load(dyp + i) * Slope((x - muv) * scalev + betav, slopev);
    Store(dxp + i, kv * (g - mav - ((x - muv) * rv) * mbv));
  }
  for (; i < n; i++) {
    const float x = ToFloat(xp[i]);
    const float z = (x - mu) * scale + beta;
    const float g = z > 0 ? ToFloat(dyp[i]) : ToFloat(dyp[i]) * slope;
    dxp[i] = ToBf16(k * (g - ma - ((x - mu) * r) * mb));
  }
}
#pragma GCC pop_options
#endif

const uint16_t* Bits(const at::Tensor& t) { return reinterpret_cast<const uint16_t*>(t.data_ptr<at::BFloat16>()); }
uint16_t* MutableBits(at::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); }

struct InstanceNormLeakyReluBf16Fn : public torch::autograd::Function<InstanceNormLeakyReluBf16Fn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps, double slope) {
    const int64_t planes = x.size(0) * x.size(1), channels = x.size(1), n = x.numel() / planes;
    at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
    at::Tensor mean = at::empty({planes}, x.options().dtype(at::kFloat));
    at::Tensor rstd = at::empty({planes}, x.options().dtype(at::kFloat));
    const at::Tensor w = weight.to(at::kFloat), b = bias.to(at::kFloat);
#if defined(__x86_64__)
    const uint16_t* xd = Bits(x);
    uint16_t* yd = MutableBits(y);
    const float *wd = w.data_ptr<float>(), *bd = b.data_ptr<float>();
    float *md = mean.data_ptr<float>(), *rd = rstd.data_ptr<float>();
    at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; p++)
        ForwardPlane(xd + p * n, yd + p * n, n, wd[p % channels], bd[p % channels], eps, static_cast<float>(slope), md + p, rd + p);
    });
#endif
    SaveNorm(ctx, x, weight, bias, mean, rstd, slope);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto [x, weight, bias, mean, rstd, slope] = RestoreNorm(ctx);
    const at::Tensor dy = grads[0].to(at::kBFloat16).contiguous();
    const int64_t planes = x.size(0) * x.size(1), channels = x.size(1), n = x.numel() / planes;
    at::Tensor dx = at::empty_like(x, at::MemoryFormat::Contiguous);
    at::Tensor sums = at::empty({planes, 2}, x.options().dtype(at::kDouble));
    const at::Tensor w = weight.to(at::kFloat), b = bias.to(at::kFloat);
#if defined(__x86_64__)
    const uint16_t *xd = Bits(x), *dyd = Bits(dy);
    uint16_t* dxd = MutableBits(dx);
    const float *wd = w.data_ptr<float>(), *bd = b.data_ptr<float>(), *md = mean.data_ptr<float>(), *rd = rstd.data_ptr<float>();
    double* sd = sums.data_ptr<double>();
    at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; p++)
        BackwardPlane(xd + p * n, dyd + p * n, dxd + p * n, n, wd[p % channels], bd[p % channels], slope, md[p], rd[p], sd + 2 * p);
    });
#endif
    const at::Tensor perChannel = sums.view({x.size(0), channels, 2}).sum(0);
    at::Tensor dWeight = perChannel.select(1, 1).to(weight.scalar_type());
    at::Tensor dBias = perChannel.select(1, 0).to(bias.scalar_type());
    return {dx, dWeight, dBias, at::Tensor(), at::Tensor()};
  }
};

bool CpuHasAvx512() {
#if defined(__x86_64__)
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return has;
#else
  return false;
#endif
}

}  // namespace

c10::optional<at::Tensor> InstanceNormLeakyReluBf16(const at::Tensor& x, const c10::optional<at::Tensor>& weight, const c10::optional<at::Tensor>& bias,
                                                    double eps, double slope) {
  if (!Bf16KernelsEnabled() || !CpuHasAvx512() || slope <= 0) return c10::nullopt;
  if (!weight.has_value() || !bias.has_value() || !weight->defined() || !bias->defined()) return c10::nullopt;
  const auto param = [&](const at::Tensor& t) {
    return t.device().is_cpu() && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16) && t.layout() == at::kStrided && t.dim() == 1 &&
           t.numel() == x.size(1);
  };
  if (x.dim() < 3 || !x.device().is_cpu() || x.scalar_type() != at::kBFloat16 || x.layout() != at::kStrided || !x.is_contiguous() || x.numel() == 0 ||
      !param(*weight) || !param(*bias))
    return c10::nullopt;
  return InstanceNormLeakyReluBf16Fn::apply(x, *weight, *bias, eps, slope);
}

}  // namespace ls
