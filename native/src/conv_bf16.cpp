// The weight gradient of a bf16 3x3x3 convolution (stride 1, padding 1, the U-Net's every
// non-strided conv) or 1x3x3 one (stride 1, padding 0, 1, 1: the first stages of anisotropic plans,
// such as the `paper` preset's) with AVX512-BF16 dot products, read straight from the NCDHW tensors.
// libtorch 1.13 computes it with oneDNN's bf16 backward-weights kernel after reordering the input
// and the output gradient into oneDNN's channel-blocked layout: on a 2-core AVX512-BF16 EPYC that
// is ~70-100 ms for a 2x16x32x96x96 activation (two ~10 ms reorders and the kernel), barely faster
// than fp32, and it was the largest part of a bf16 training step that did not speed up
// (bench/train-step-profile.ts). Here: ~45 ms. The forward and the input gradient stay oneDNN's.
//
// dw[co][ci][kd][kh][kw] = sum over b, d, h, w of g[b][co][d][h][w] * x[b][ci][d+kd-1][h+kh-1][w+kw-1]
// (zero outside; d+kd-1 is d for a 1x3x3 kernel): the plane (or, for small volumes, the whole
// volume) flattened into chunks of 32 voxels, 32 bf16 of g against 32 of x shifted by the offset
// (masked loads give the zero padding), vdpbf16ps into 24 fp32 accumulators (4 co x 2 ci x 3 kw)
// kept over the plane (volume), then summed per thread and over threads in fp32 and rounded to
// bf16 as oneDNN's result is. The bias gradient is summed from bf16 in float (BiasGrad). Only with
// AVX512-BF16 (checked at run time; the code is compiled for it with a target attribute, so any
// x86-64 or arm64 build runs and never executes it elsewhere); every other case, and
// `setBf16Kernels(false)` (tests compare the two), takes ATen's path.
#include "common.h"

#include <ATen/Parallel.h>
#include <cstring>
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ls {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::atomic<bool> enabled{true};

// Where the kernel runs: planes (H*W) from kMinPlane (one plane at a time, WeightGradPlane), or
// volumes (D*H*W) up to kMaxVolume (the whole volume as one run, WeightGradVolume). Measured on the
// 2-core AVX512-BF16 EPYC, weight gradient alone, ours vs ATen's (oneDNN's with its reorders), ms:
// 2x16->16 at 32x96x96 47 vs 75, 2x32->16 91 vs 134; 4x12x12 7 vs 19 (128->128), 13 vs 23
// (256->128); 4x6x6 10 vs 27 (256->256). In between (16x48x48, 8x24x24) oneDNN's is as fast or
// faster (28 vs 28, 53 vs 46, 13 vs 13, 25 vs 23), and keeps them.
constexpr int64_t kMinPlane = 4096;
constexpr int64_t kMaxVolume = 2048;

bool CpuHasBf16Dot() {
#if defined(__x86_64__)
  static const bool has = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512f");
  return has;
#else
  return false;
#endif
}

bool KernelActive() { return Bf16KernelsEnabled() && CpuHasBf16Dot(); }

#if defined(__x86_64__)
// Both kernels keep 24 fp32 accumulators a{i}{j}{k} in registers (output channel i of 4, input
// channel j of 2, kw offset k of 3; named variables, as GCC keeps an array of them in memory). Per
// 32-voxel chunk: g of the 4 output channels (LS_LOAD_G: from gp, `stride` apart, mask mg), then x
// of each input channel at each kw offset (LS_DOTS: mask LS_MASK(k), address LS_X(j, k), both
// defined by the kernel), 4 dot products each; LS_OUTS(op) sums each accumulator's lanes into dst
// (rows of `taps` = kdepth * 9 weights per channel pair).
#define LS_ZERO(i, j) __m512 a##i##j##0 = _mm512_setzero_ps(), a##i##j##1 = _mm512_setzero_ps(), a##i##j##2 = _mm512_setzero_ps();
#define LS_ZEROS LS_ZERO(0, 0) LS_ZERO(0, 1) LS_ZERO(1, 0) LS_ZERO(1, 1) LS_ZERO(2, 0) LS_ZERO(2, 1) LS_ZERO(3, 0) LS_ZERO(3, 1)
#define LS_LOAD_G(mg, gp, stride)                                                      \
  const __m512bh g0 = (__m512bh)_mm512_maskz_loadu_epi16(mg, gp);                      \
  const __m512bh g1 = (__m512bh)_mm512_maskz_loadu_epi16(mg, (gp) + (stride));         \
  const __m512bh g2 = (__m512bh)_mm512_maskz_loadu_epi16(mg, (gp) + 2 * (stride));     \
  const __m512bh g3 = (__m512bh)_mm512_maskz_loadu_epi16(mg, (gp) + 3 * (stride));
#define LS_DOT(j, k)                                                                 \
  {                                                                                  \
    const __m512bh v = (__m512bh)_mm512_maskz_loadu_epi16(LS_MASK(k), LS_X(j, k)); \
    a0##j##k = _mm512_dpbf16_ps(a0##j##k, g0, v);                                    \
    a1##j##k = _mm512_dpbf16_ps(a1##j##k, g1, v);                                    \
    a2##j##k = _mm512_dpbf16_ps(a2##j##k, g2, v);                                    \
    a3##j##k = _mm512_dpbf16_ps(a3##j##k, g3, v);                                    \
  }
#define LS_DOTS LS_DOT(0, 0) LS_DOT(0, 1) LS_DOT(0, 2) LS_DOT(1, 0) LS_DOT(1, 1) LS_DOT(1, 2)
#define LS_OUT(i, j, op)                                                  \
  dst[(i * ci_n + j) * taps + 0] op _mm512_reduce_add_ps(a##i##j##0); \
  dst[(i * ci_n + j) * taps + 1] op _mm512_reduce_add_ps(a##i##j##1); \
  dst[(i * ci_n + j) * taps + 2] op _mm512_reduce_add_ps(a##i##j##2);
#define LS_OUTS(op) LS_OUT(0, 0, op) LS_OUT(0, 1, op) LS_OUT(1, 0, op) LS_OUT(1, 1, op) LS_OUT(2, 0, op) LS_OUT(2, 1, op) LS_OUT(3, 0, op) LS_OUT(3, 1, op)

// The masks of one plane's 32-voxel chunks (the plane flattened, H*W voxels): for chunk c and
// offset (kh, kw), bit j is set where voxel 32c+j is in the plane and its neighbour at
// (h+kh-1, w+kw-1) too; entry 9c+3kh+kw. Entry 9c+4 (the centre) is the chunk's own voxels.
std::vector<uint32_t> PlaneMasks(int64_t height, int64_t width) {
  const int64_t n = height * width, chunks = (n + 31) / 32;
  std::vector<uint32_t> masks(9 * chunks, 0);
  for (int64_t p = 0; p < n; p++) {
    const int64_t h = p / width, w = p % width;
    for (int kh = 0; kh < 3; kh++)
      for (int kw = 0; kw < 3; kw++)
        if (h + kh - 1 >= 0 && h + kh - 1 < height && w + kw - 1 >= 0 && w + kw - 1 < width) masks[9 * (p / 32) + 3 * kh + kw] |= 1u << (p % 32);
  }
  return masks;
}

// One (batch, depth) plane of g against the kdepth planes of x it touches (3: d-1..d+1, padding 1;
// 1: plane d, padding 0), added into acc [Co][Ci][kdepth][3][3]. Co a multiple of 4, Ci of 2.
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void WeightGradPlane(const uint16_t* g, const uint16_t* x, const uint32_t* masks, int64_t b,
                                                                         int64_t d, int64_t co_n, int64_t ci_n, int kdepth, int64_t depth,
                                                                         int64_t height, int64_t width, float* acc) {
  const int64_t plane = height * width, chunks = (plane + 31) / 32, cs = depth * plane, taps = 9 * kdepth;
  for (int kd = 0; kd < kdepth; kd++) {
    const int64_t dz = d + kd - kdepth / 2;
    if (dz < 0 || dz >= depth) continue;
    for (int kh = 0; kh < 3; kh++) {
      for (int64_t co = 0; co < co_n; co += 4) {
        const uint16_t* gb = g + ((b * co_n + co) * depth + d) * plane;
        for (int64_t ci = 0; ci < ci_n; ci += 2) {
          // x shifted by (kh - 1) rows and (kw - 1) columns; the masks keep the reads inside the plane.
          const uint16_t* xb = x + ((b * ci_n + ci) * depth + dz) * plane + (kh - 1) * width - 1;
          LS_ZEROS
          for (int64_t c = 0; c < chunks; c++) {
            const int64_t o = 32 * c;
            const uint32_t* m = masks + 9 * c;
            LS_LOAD_G(m[4], gb + o, cs)
#define LS_MASK(k) m[3 * kh + k]
#define LS_X(j, k) xb + j * cs + o + k
            LS_DOTS
#undef LS_MASK
#undef LS_X
          }
          float* dst = acc + (co * ci_n + ci) * taps + kd * 9 + kh * 3;
          LS_OUTS(+=)
        }
      }
    }
  }
}

// The masks of a whole volume's 32-voxel chunks (D*H*W flattened): entry 27c + 9kd + 3kh + kw has
// bit j set where voxel 32c+j and its neighbour at (d+kd-1, h+kh-1, w+kw-1) are in the volume.
std::vector<uint32_t> VolumeMasks(int64_t depth, int64_t height, int64_t width) {
  const int64_t n = depth * height * width, chunks = (n + 31) / 32;
  std::vector<uint32_t> masks(27 * chunks, 0);
  for (int64_t p = 0; p < n; p++) {
    const int64_t d = p / (height * width), h = p / width % height, w = p % width;
    for (int k = 0; k < 27; k++) {
      const int64_t dz = d + k / 9 - 1, hz = h + k / 3 % 3 - 1, wz = w + k % 3 - 1;
      if (dz >= 0 && dz < depth && hz >= 0 && hz < height && wz >= 0 && wz < width) masks[27 * (p / 32) + k] |= 1u << (p % 32);
    }
  }
  return masks;
}

// Small volumes (the deep stages): a block of 4 output channels against every input channel,
// accumulating over all of the batch's volumes before the lanes are summed; written straight
// into dw [Co][Ci][kdepth][3][3] (each block's rows belong to one thread). Depth offsets
// kd - kdepth / 2, as in WeightGradPlane; masks of VolumeMasks.
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void WeightGradVolume(const uint16_t* g, const uint16_t* x, const uint32_t* masks, int64_t co,
                                                                          int64_t batch, int64_t co_n, int64_t ci_n, int kdepth, int64_t depth,
                                                                          int64_t height, int64_t width, float* dw) {
  const int64_t n = depth * height * width, chunks = (n + 31) / 32, taps = 9 * kdepth;
  for (int64_t ci = 0; ci < ci_n; ci += 2) {
    for (int kd = 0; kd < kdepth; kd++) {
      const int dz = kd - kdepth / 2;
      for (int kh = 0; kh < 3; kh++) {
        const int64_t shift = dz * height * width + (kh - 1) * width - 1;
        LS_ZEROS
        for (int64_t b = 0; b < batch; b++) {
          const uint16_t* gb = g + (b * co_n + co) * n;
          const uint16_t* xb = x + (b * ci_n + ci) * n + shift;
          for (int64_t c = 0; c < chunks; c++) {
            const int64_t o = 32 * c;
            const uint32_t* m = masks + 27 * c + 9 * (dz + 1) + 3 * kh;
            LS_LOAD_G(masks[27 * c + 13], gb + o, n)
#define LS_MASK(k) m[k]
#define LS_X(j, k) xb + j * n + o + k
            LS_DOTS
#undef LS_MASK
#undef LS_X
          }
        }
        float* dst = dw + (co * ci_n + ci) * taps + kd * 9 + kh * 3;
        LS_OUTS(=)
      }
    }
  }
}
#undef LS_ZERO
#undef LS_ZEROS
#undef LS_LOAD_G
#undef LS_DOT
#undef LS_DOTS
#undef LS_OUT
#undef LS_OUTS
#endif

// dw as float32 [Co, Ci, kdepth, 3, 3] from contiguous bf16 g [B, Co, D, H, W] and x [B, Ci, D, H, W]
// (kdepth 3: a 3x3x3 kernel, padding 1; 1: a 1x3x3 kernel, padding 0 in depth).
at::Tensor WeightGrad(const at::Tensor& g, const at::Tensor& x, int kdepth) {
  const int64_t batch = x.size(0), ci_n = x.size(1), co_n = g.size(1), depth = x.size(2), height = x.size(3), width = x.size(4);
  const int64_t taps = 9 * kdepth;
#if defined(__x86_64__)
  const auto* gd = reinterpret_cast<const uint16_t*>(g.data_ptr<at::BFloat16>());
  const auto* xd = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
  if (depth * height * width <= kMaxVolume) {
    at::Tensor dw = at::empty({co_n, ci_n, kdepth, 3, 3}, x.options().dtype(at::kFloat));
    float* dd = dw.data_ptr<float>();
    const std::vector<uint32_t> masks = VolumeMasks(depth, height, width);
    at::parallel_for(0, co_n / 4, 1, [&](int64_t begin, int64_t end) {
      for (int64_t block = begin; block < end; block++) WeightGradVolume(gd, xd, masks.data(), 4 * block, batch, co_n, ci_n, kdepth, depth, height, width, dd);
    });
    return dw;
  }
  const int threads = at::get_num_threads();
  at::Tensor partial = at::zeros({threads, co_n * ci_n * taps}, x.options().dtype(at::kFloat));
  float* pd = partial.data_ptr<float>();
  const std::vector<uint32_t> masks = PlaneMasks(height, width);
  at::parallel_for(0, batch * depth, 1, [&](int64_t begin, int64_t end) {
    float* acc = pd + at::get_thread_num() * co_n * ci_n * taps;
    for (int64_t item = begin; item < end; item++)
      WeightGradPlane(gd, xd, masks.data(), item / depth, item % depth, co_n, ci_n, kdepth, depth, height, width, acc);
  });
  return partial.sum(0).view({co_n, ci_n, kdepth, 3, 3});
#else
  return at::zeros({co_n, ci_n, kdepth, 3, 3}, x.options().dtype(at::kFloat));
#endif
}

// The bias gradient, sum of g over batch and volume per channel, as float32: blocks of 8-lane
// float sums (bf16 to float by a shift) into double. at::sum(g, dims, kFloat) converts all of g
// to float first (~10-20 ms for a 2x16x32x96x96 block here); at::sum in bf16 rounds partial sums.
at::Tensor BiasGrad(const at::Tensor& g) {
  typedef float F8 __attribute__((vector_size(32)));
  typedef uint32_t U8 __attribute__((vector_size(32)));
  typedef uint16_t H8 __attribute__((vector_size(16), aligned(2), may_alias));
  const int64_t batch = g.size(0), channels = g.size(1), n = g.numel() / (batch * channels);
  at::Tensor out = at::empty({channels}, g.options().dtype(at::kFloat));
  const auto* gd = reinterpret_cast<const uint16_t*>(g.data_ptr<at::BFloat16>());
  float* od = out.data_ptr<float>();
  at::parallel_for(0, channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; c++) {
      double total = 0;
      for (int64_t b = 0; b < batch; b++) {
        const uint16_t* p = gd + (b * channels + c) * n;
        for (int64_t start = 0; start < n; start += 4096) {
          const int64_t stop = std::min(n, start + 4096);
          F8 acc{};
          float rest = 0;
          int64_t i = start;
          for (; i + 8 <= stop; i += 8) acc += (F8)(__builtin_convertvector(*reinterpret_cast<const H8*>(p + i), U8) << 16);
          for (; i < stop; i++) {
            const uint32_t u = static_cast<uint32_t>(p[i]) << 16;
            float f;
            std::memcpy(&f, &u, 4);
            rest += f;
          }
          total += static_cast<double>((acc[0] + acc[1]) + (acc[2] + acc[3]) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))) + rest;
        }
      }
      od[c] = static_cast<float>(total);
    }
  });
  return out;
}

// The padding the kernel takes for a weight: "same" for 3x3x3 (1, 1, 1) and 1x3x3 (0, 1, 1).
std::vector<int64_t> Padding(const at::Tensor& weight) { return {weight.size(2) / 2, 1, 1}; }

struct Conv3dBf16 : public torch::autograd::Function<Conv3dBf16> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
    ctx->save_for_backward({x, weight});
    // No bias: an empty tensor (autograd's apply takes no undefined input).
    const bool hasBias = bias.numel() > 0;
    ctx->saved_data["bias"] = hasBias;
    return at::convolution(x, weight, hasBias ? c10::optional<at::Tensor>(bias) : c10::nullopt, {1, 1, 1}, Padding(weight), {1, 1, 1}, false, {0, 0, 0}, 1);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor g = grads[0].to(at::kBFloat16).contiguous();
    at::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {
      dx = std::get<0>(at::convolution_backward(g, x, weight, c10::nullopt, {1, 1, 1}, Padding(weight), {1, 1, 1}, false, {0, 0, 0}, 1, {true, false, false}));
    }
    if (ctx->needs_input_grad(1)) dw = WeightGrad(g, x, static_cast<int>(weight.size(2))).to(weight.scalar_type());
    if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) db = BiasGrad(g).to(at::kBFloat16);
    return {dx, dw, db};
  }
};

Napi::Value SetBf16Kernels(Args& a) {
  const bool previous = enabled.exchange(a.boolean(0));
  return Napi::Boolean::New(a.env(), previous);
}

Napi::Value Bf16KernelsActive(Args& a) { return Napi::Boolean::New(a.env(), KernelActive()); }

}  // namespace

bool Bf16KernelsEnabled() { return enabled.load(); }

c10::optional<at::Tensor> Conv3dBf16Kernel(const at::Tensor& input, const at::Tensor& weightIn, const c10::optional<at::Tensor>& biasIn,
                                           const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                                           const std::vector<int64_t>& dilation, int64_t groups) {
  const std::vector<int64_t> one{1, 1, 1};
  if (!KernelActive() || !input.device().is_cpu() || input.dim() != 5 || weightIn.dim() != 5 || groups != 1 || stride != one ||
      dilation != one || (weightIn.size(2) != 3 && weightIn.size(2) != 1) || padding != Padding(weightIn) || weightIn.size(3) != 3 || weightIn.size(4) != 3 ||
      weightIn.size(0) % 4 != 0 || weightIn.size(1) % 2 != 0 || input.size(1) != weightIn.size(1) || input.layout() != at::kStrided ||
      (input.size(3) * input.size(4) < kMinPlane && input.size(2) * input.size(3) * input.size(4) > kMaxVolume))
    return c10::nullopt;
  // As autocast does for conv3d (the cast of a leaf weight cached for the autocast region).
  const bool autocast = at::autocast::is_cpu_enabled() && at::autocast::get_autocast_cpu_dtype() == at::kBFloat16;
  const auto cast = [&](const at::Tensor& t) { return autocast ? at::autocast::cached_cast(at::kBFloat16, t, c10::DeviceType::CPU) : t; };
  const at::Tensor x = cast(input), weight = cast(weightIn);
  const at::Tensor bias = biasIn.has_value() && biasIn->defined() ? cast(*biasIn) : at::empty({0}, x.options());
  if (x.scalar_type() != at::kBFloat16 || weight.scalar_type() != at::kBFloat16 || bias.scalar_type() != at::kBFloat16 || bias.dim() != 1 ||
      !weight.device().is_cpu() || x.numel() == 0)
    return c10::nullopt;
  // Nothing to gain without a weight gradient: ATen's own convolution then.
  if (!at::GradMode::is_enabled() || !weight.requires_grad()) return c10::nullopt;
  return Conv3dBf16::apply(x.contiguous(), weight, bias);
}

const std::vector<OpDef>& ConvBf16Ops() {
  static const std::vector<OpDef> ops = {
      // setBf16Kernels(enabled) -> previous: off, every op takes ATen's path (tests compare the two).
      {"setBf16Kernels", 1, 1, SetBf16Kernels},
      // bf16KernelsActive(): on and the CPU has AVX512-BF16.
      {"bf16KernelsActive", 0, 0, Bf16KernelsActive},
  };
  return ops;
}

}  // namespace ls
