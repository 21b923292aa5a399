// Instance normalisation (affine, statistics from the input) followed by leaky ReLU, as one op with
// its own backward: nnU-Net's ConvDropoutNormReLU without dropout, for float32 [B, C, ...] on the
// CPU. Composed of at::instance_norm and at::leaky_relu_ the forward passes over the activation
// five times (two for the statistics, read + write to normalise, read + write for the ReLU) and
// the backward eight; here three and five. Mean and biased variance accumulated in double as in
// ATen's batch-norm kernels; y = (x - mean) * (rstd * gamma) + beta (ATen: x * a + (beta - mean * a),
// which loses digits to cancellation when rstd is large).
// A bf16 activation takes ops_fused_bf16.cpp's kernel where the CPU has AVX-512; other dtypes,
// devices or layouts the composed path (ops_nn.cpp InstanceNorm + leaky_relu_).
#include "common.h"
#include "norm_saved.h"

#include <ATen/Parallel.h>
#include <array>
#include <torch/csrc/autograd/custom_function.h>

namespace ls {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Four-float vectors (GCC's vector extensions: SSE on any x86-64, NEON on arm64), loaded and
// stored unaligned.
typedef float V __attribute__((vector_size(16)));
typedef float VU __attribute__((vector_size(16), aligned(4), may_alias));
constexpr int64_t kLanes = 4;
inline V Load(const float* p) { return *reinterpret_cast<const VU*>(p); }
inline void Store(float* p, V v) { *reinterpret_cast<VU*>(p) = v; }
inline V Splat(float a) { return V{a, a, a, a}; }
inline float Lanes(V v) { return (v[0] + v[1]) + (v[2] + v[3]); }

// The normalised, scaled and shifted value, (x - mean) * (rstd * gamma) + beta, and the leaky
// ReLU's factor at it (1 where positive, else the slope): forward and backward compute them the
// same way, so the backward's mask is the forward's.
inline float Affine(float x, float mean, float scale, float shift) { return (x - mean) * scale + shift; }
inline V Affine(V x, V mean, V scale, V shift) { return (x - mean) * scale + shift; }
inline V Slope(V z, V slope) { return z > Splat(0) ? Splat(1) : slope; }

// Sums over [0, n) in double, by blocks of float partial sums in vector lanes (each lane adds at
// most 128 terms before the block goes into the double). `vector(i, acc...)` adds the terms
// i..i+7 into two vector accumulators per sum; `scalar(i, acc...)` adds term i.
template <int K, typename FV, typename FS>
std::array<double, K> BlockSums(int64_t n, FV vector, FS scalar) {
  constexpr int64_t kBlock = 1024;
  std::array<double, K> total{};
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t end = std::min(n, start + kBlock);
    std::array<V, 2 * K> acc;
    acc.fill(Splat(0));
    std::array<float, K> rest{};
    int64_t i = start;
    for (; i + 2 * kLanes <= end; i += 2 * kLanes) vector(i, acc);
    for (; i < end; i++) scalar(i, rest);
    for (int k = 0; k < K; k++) total[k] += static_cast<double>(Lanes(acc[2 * k] + acc[2 * k + 1])) + rest[k];
  }
  return total;
}

struct InstanceNormLeakyRelu : public torch::autograd::Function<InstanceNormLeakyRelu> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps, double slope) {
    const int64_t planes = x.size(0) * x.size(1), channels = x.size(1);
    const int64_t n = x.numel() / planes;
    at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
    at::Tensor mean = at::empty({planes}, x.options());
    at::Tensor rstd = at::empty({planes}, x.options());
    const float* xd = x.data_ptr<float>();
    const float* gd = weight.data_ptr<float>();
    const float* bd = bias.data_ptr<float>();
    float* yd = y.data_ptr<float>();
    float* md = mean.data_ptr<float>();
    float* rd = rstd.data_ptr<float>();
    const float s = static_cast<float>(slope);
    at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; p++) {
        const float* xp = xd + p * n;
        const double mu = BlockSums<1>(
            n, [&](int64_t i, std::array<V, 2>& a) { a[0] += Load(xp + i); a[1] += Load(xp + i + kLanes); },
            [&](int64_t i, std::array<float, 1>& r) { r[0] += xp[i]; })[0] / n;
        const float muf = static_cast<float>(mu);
        const V muv = Splat(muf);
        const double var = BlockSums<1>(
            n,
            [&](int64_t i, std::array<V, 2>& a) {
              const V d0 = Load(xp + i) - muv, d1 = Load(xp + i + kLanes) - muv;
              a[0] += d0 * d0;
              a[1] += d1 * d1;
            },
            [&](int64_t i, std::array<float, 1>& r) { const float d = xp[i] - muf; r[0] += d * d; })[0] / n;
        const double inv = 1.0 / std::sqrt(var + eps);
        const float invf = static_cast<float>(inv);
        md[p] = muf;
        rd[p] = invf;
        const int64_t c = p % channels;
        const float scale = static_cast<float>(static_cast<double>(invf) * gd[c]), shift = bd[c];
        const V scalev = Splat(scale), shiftv = Splat(shift), slopev = Splat(s);
        float* yp = yd + p * n;
        int64_t i = 0;
        for (; i + kLanes <= n; i += kLanes) {
          const V z = Affine(Load(xp + i), muv, scalev, shiftv);
          Store(yp + i, z * Slope(z, slopev));
        }
        for (; i < n; i++) {
          const float z = Affine(xp[i], muf, scale, shift);
          yp[i] = z > 0 ? z : z * s;
        }
      }
    });
    SaveNorm(ctx, x, weight, bias, mean, rstd, slope);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto [x, weight, bias, mean, rstd, s] = RestoreNorm(ctx);
    const at::Tensor dy = grads[0].contiguous();
    const int64_t planes = x.size(0) * x.size(1), channels = x.size(1);
    const int64_t n = x.numel() / planes;
    at::Tensor dx = at::empty_like(x, at::MemoryFormat::Contiguous);
    at::Tensor sumG = at::empty({planes}, x.options().dtype(at::kDouble));
    at::Tensor sumGx = at::empty({planes}, x.options().dtype(at::kDouble));
    const float* xd = x.data_ptr<float>();
    const float* dyd = dy.data_ptr<float>();
    const float* gd = weight.data_ptr<float>();
    const float* bd = bias.data_ptr<float>();
    const float* md = mean.data_ptr<float>();
    const float* rd = rstd.data_ptr<float>();
    float* dxd = dx.data_ptr<float>();
    double* sg = sumG.data_ptr<double>();
    double* sgx = sumGx.data_ptr<double>();
    at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; p++) {
        const int64_t c = p % channels;
        const float mu = md[p], r = rd[p], gamma = gd[c], beta = bd[c];
        const float scale = static_cast<float>(static_cast<double>(r) * gamma);
        const float* xp = xd + p * n;
        const float* dyp = dyd + p * n;
        const V muv = Splat(mu), rv = Splat(r), scalev = Splat(scale), betav = Splat(beta), slopev = Splat(s);
        // g: the ReLU's gradient (dy where the forward's output was positive, slope * dy elsewhere);
        // sums of g and of g * xhat in one pass.
        const auto sums = BlockSums<2>(
            n,
            [&](int64_t i, std::array<V, 4>& a) {
              for (int h = 0; h < 2; h++) {
                const V x = Load(xp + i + h * kLanes);
                const V g = Load(dyp + i + h * kLanes) * Slope(Affine(x, muv, scalev, betav), slopev);
                a[h] += g;
                a[2 + h] += g * ((x - muv) * rv);
              }
            },
            [&](int64_t i, std::array<float, 2>& t) {
              const float z = Affine(xp[i], mu, scale, beta);
              const float g = z > 0 ? dyp[i] : dyp[i] * s;
              t[0] += g;
              t[1] += g * ((xp[i] - mu) * r);
            });
        sg[p] = sums[0];
        sgx[p] = sums[1];
        // dx = rstd * gamma * (g - mean(g) - xhat * mean(g * xhat))
        const float k = r * gamma, ma = static_cast<float>(sums[0] / n), mb = static_cast<float>(sums[1] / n);
        const V kv = Splat(k), mav = Splat(ma), mbv = Splat(mb);
        float* dxp = dxd + p * n;
        int64_t i = 0;
        for (; i + kLanes <= n; i += kLanes) {
          const V x = Load(xp + i);
          const V g = Load(dyp + i) * Slope(Affine(x, muv, scalev, betav), slopev);
          Store(dxp + i, kv * (g - mav - ((x - muv) * rv) * mbv));
        }
        for (; i < n; i++) {
          const float z = Affine(xp[i], mu, scale, beta);
          const float g = z > 0 ? dyp[i] : dyp[i] * s;
          dxp[i] = k * (g - ma - ((xp[i] - mu) * r) * mb);
        }
      }
    });
    const int64_t batch = x.size(0);
    at::Tensor dWeight = sumGx.view({batch, channels}).sum(0).to(weight.scalar_type());
    at::Tensor dBias = sumG.view({batch, channels}).sum(0).to(bias.scalar_type());
    return {dx, dWeight, dBias, at::Tensor(), at::Tensor()};
  }
};

bool Fusable(const at::Tensor& x, const c10::optional<at::Tensor>& weight, const c10::optional<at::Tensor>& bias) {
  if (!weight.has_value() || !bias.has_value() || !weight->defined() || !bias->defined()) return false;
  if (at::autocast::is_cpu_enabled()) return false;
  const auto cpuFloat = [](const at::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == at::kFloat && t.layout() == at::kStrided; };
  return x.dim() >= 3 && cpuFloat(x) && cpuFloat(*weight) && cpuFloat(*bias) && x.is_contiguous() && x.numel() > 0 &&
         weight->is_contiguous() && bias->is_contiguous() && weight->numel() == x.size(1) && bias->numel() == x.size(1);
}

// instanceNormLeakyRelu(x, weight|null, bias|null, eps, negativeSlope): leaky_relu(instance_norm(x)).
Napi::Value InstanceNormLeakyReluOp(Args& a) {
  const at::Tensor x = a.tensor(0);
  const auto weight = a.optTensor(1), bias = a.optTensor(2);
  const double eps = a.f64(3), slope = a.f64(4);
  if (Fusable(x, weight, bias) && slope > 0) return a.ret(InstanceNormLeakyRelu::apply(x, *weight, *bias, eps, slope));
  if (auto y = InstanceNormLeakyReluBf16(x, weight, bias, eps, slope)) return a.ret(*y);
  at::Tensor y = at::instance_norm(x, weight, bias, c10::nullopt, c10::nullopt, /*use_input_stats=*/true, /*momentum=*/0.1, eps,
                                   at::globalContext().userEnabledCuDNN());
  at::leaky_relu_(y, slope);
  return a.ret(y);
}

}  // namespace

const std::vector<OpDef>& FusedOps() {
  static const std::vector<OpDef> ops = {
      {"instanceNormLeakyRelu", 5, 5, InstanceNormLeakyReluOp},
  };
  return ops;
}

}  // namespace ls
