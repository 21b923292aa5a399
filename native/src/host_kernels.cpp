// Host loops of the training batch loader (src/data/sampling) over JS typed arrays, in place: no
// tensor, no new array. Each computes exactly what the JavaScript it replaces computed (the same
// float64 and float32 operations in the same order; this file is compiled with -ffp-contract=off so
// that no multiply-add is fused), so the batches stay the same byte for byte:
// - cropInto: crop [C, z, y, x] at a corner into a given array, padding outside the case
//   (patch_sampler.ts cropAndPad);
// - planeLabels: the dummy-2D spatial step's label vote from gridSample's corner weights
//   (plane_resample.ts);
// - gammaPrepare / gammaFinish: the host passes of gamma around its power (intensity_transforms.ts);
// - flipInPlace: mirroring along any of the three axes (filter_transforms.ts);
// - contrastInPlace: the contrast step's statistics and clamped scaling (intensity_transforms.ts);
// - zeroNegative: labels -1 -> 0 (augment_pipeline.ts);
// - blurAxis: one axis of the Gaussian blur, summed as libtorch's conv3d sums on the CPU (filter_transforms.ts).
#include "common.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace ls {
namespace {

// The bytes of a typed array argument, checked to be of the given kind.
template <typename T>
T* ArrayData(Args& a, size_t i, napi_typedarray_type type, const char* expected, size_t* length) {
  Napi::Value value = a.raw(i);
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) a.fail(i, expected);
  Napi::TypedArray array = value.As<Napi::TypedArray>();
  *length = array.ElementLength();
  return reinterpret_cast<T*>(TypedArrayBytes(array));
}

std::array<int64_t, 3> Triple(Args& a, size_t i) {
  std::vector<int64_t> v = a.ints(i);
  if (v.size() != 3) a.fail(i, "three integers");
  return {v[0], v[1], v[2]};
}

template <typename T>
void Crop(const T* source, size_t sourceLength, T* target, size_t targetLength, int64_t channels, const std::array<int64_t, 3>& shape,
          const std::array<int64_t, 3>& lower, const std::array<int64_t, 3>& patch, T padValue) {
  const int64_t caseVoxels = shape[0] * shape[1] * shape[2];
  const int64_t patchVoxels = patch[0] * patch[1] * patch[2];
  if (static_cast<int64_t>(sourceLength) != channels * caseVoxels) throw ArgError("the case array does not hold channels x its shape");
  if (static_cast<int64_t>(targetLength) != channels * patchVoxels) {
    throw ArgError("the target has " + std::to_string(targetLength) + " values, the crop " + std::to_string(channels * patchVoxels));
  }
  std::array<int64_t, 3> from{}, to{};
  bool inside = true;
  for (int axis = 0; axis < 3; ++axis) {
    from[axis] = std::max<int64_t>(0, -lower[axis]);
    to[axis] = std::min<int64_t>(patch[axis], shape[axis] - lower[axis]);
    inside = inside && from[axis] == 0 && to[axis] == patch[axis];
  }
  if (!inside) std::fill(target, target + targetLength, padValue);
  if (to[0] <= from[0] || to[1] <= from[1] || to[2] <= from[2]) return;
  const size_t row = static_cast<size_t>(to[2] - from[2]) * sizeof(T);
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t z = from[0]; z < to[0]; ++z) {
      for (int64_t y = from[1]; y < to[1]; ++y) {
        const int64_t s = ((c * shape[0] + z + lower[0]) * shape[1] + y + lower[1]) * shape[2] + from[2] + lower[2];
        const int64_t t = ((c * patch[0] + z) * patch[1] + y) * patch[2] + from[2];
        std::memcpy(target + t, source + s, row);
      }
    }
  }
}

// cropInto(source, channels, caseShape, lowerBound, patch, padValue, target): Float32Array or Int8Array, both the same.
Napi::Value CropInto(Args& a) {
  const int64_t channels = a.i64(1);
  const auto shape = Triple(a, 2), lower = Triple(a, 3), patch = Triple(a, 4);
  if (channels < 1) a.fail(1, "a channel count >= 1");
  for (int axis = 0; axis < 3; ++axis) {
    if (shape[axis] < 0 || patch[axis] < 0) throw ArgError("negative size");
  }
  const double pad = a.f64(5);
  size_t sourceLength = 0, targetLength = 0;
  Napi::Value value = a.raw(0);
  if (value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    const float* source = ArrayData<float>(a, 0, napi_float32_array, "a Float32Array", &sourceLength);
    float* target = ArrayData<float>(a, 6, napi_float32_array, "a Float32Array (as the source)", &targetLength);
    Crop<float>(source, sourceLength, target, targetLength, channels, shape, lower, patch, static_cast<float>(pad));
  } else {
    const int8_t* source = ArrayData<int8_t>(a, 0, napi_int8_array, "a Float32Array or Int8Array", &sourceLength);
    int8_t* target = ArrayData<int8_t>(a, 6, napi_int8_array, "an Int8Array (as the source)", &targetLength);
    Crop<int8_t>(source, sourceLength, target, targetLength, channels, shape, lower, patch, static_cast<int8_t>(pad));
  }
  return a.env().Undefined();
}

// planeLabels(seg, planes, height, width, offset, weights, inside, outside, out): see plane_resample.ts.
Napi::Value PlaneLabels(Args& a) {
  size_t segLength = 0, offsetLength = 0, weightsLength = 0, insideLength = 0, outsideLength = 0, outLength = 0;
  const int8_t* seg = ArrayData<int8_t>(a, 0, napi_int8_array, "an Int8Array", &segLength);
  const int64_t planes = a.i64(1), height = a.i64(2), width = a.i64(3);
  const int32_t* offset = ArrayData<int32_t>(a, 4, napi_int32_array, "an Int32Array", &offsetLength);
  const float* weights = ArrayData<float>(a, 5, napi_float32_array, "a Float32Array", &weightsLength);
  const uint8_t* inside = ArrayData<uint8_t>(a, 6, napi_uint8_array, "a Uint8Array", &insideLength);
  const uint8_t* outside = ArrayData<uint8_t>(a, 7, napi_uint8_array, "a Uint8Array", &outsideLength);
  int8_t* out = ArrayData<int8_t>(a, 8, napi_int8_array, "an Int8Array", &outLength);
  const int64_t points = static_cast<int64_t>(offsetLength);
  if (planes < 0 || height < 1 || width < 1) throw ArgError("bad plane geometry");
  if (static_cast<int64_t>(segLength) != planes * height * width || weightsLength != 4 * offsetLength || insideLength != offsetLength ||
      outsideLength != offsetLength || static_cast<int64_t>(outLength) != planes * points) {
    throw ArgError("planeLabels: the arrays' lengths do not agree");
  }
  const int64_t plane = height * width;
  const int64_t corner[4] = {0, 1, width, width + 1};
  for (int64_t i = 0; i < points; ++i) {
    // A corner flagged inside lies in the plane: its index stays within [0, plane).
    const uint8_t mask = inside[i] & 15;
    for (int c = 0; c < 4; ++c) {
      if (((mask >> c) & 1) && (offset[i] + corner[c] < 0 || offset[i] + corner[c] >= plane)) throw ArgError("planeLabels: a corner flagged inside lies outside the plane");
    }
  }
  for (int64_t p = 0; p < planes; ++p) {
    const int8_t* base = seg + p * plane;
    int8_t* row = out + p * points;
    for (int64_t i = 0; i < points; ++i) {
      if (outside[i] == 1) {
        row[i] = -1;
        continue;
      }
      const int8_t* o = base + offset[i];
      const unsigned mask = inside[i];
      if (mask == 15) {
        const int8_t first = o[0];
        if (first == o[1] && first == o[width] && first == o[width + 1]) {
          row[i] = first;
          continue;
        }
      }
      int labels[4];
      for (int c = 0; c < 4; ++c) labels[c] = ((mask >> c) & 1) ? o[corner[c]] : 0;
      int winner = 0;
      float best = -1;
      const float* w = weights + 4 * i;
      for (int c = 0; c < 4; ++c) {
        if (!((mask >> c) & 1)) continue;
        const int label = labels[c];
        bool seen = false;
        for (int earlier = 0; earlier < c; ++earlier) {
          if (((mask >> earlier) & 1) && labels[earlier] == label) seen = true;
        }
        if (seen) continue;
        float sum = 0;
        for (int later = c; later < 4; ++later) {
          if (((mask >> later) & 1) && labels[later] == label) sum = sum + w[later];
        }
        if (sum > best || (sum == best && label < winner)) {
          best = sum;
          winner = label;
        }
      }
      row[i] = static_cast<int8_t>(winner);
    }
  }
  return a.env().Undefined();
}

template <typename T>
void Flip(T* data, int64_t volumes, const std::array<int64_t, 3>& shape, bool z, bool y, bool x) {
  const int64_t depth = shape[0], height = shape[1], width = shape[2];
  const int64_t plane = height * width;
  for (int64_t v = 0; v < volumes; ++v) {
    T* volume = data + v * depth * plane;
    // Flips along different axes commute: planes swapped, then rows within each plane, then each row reversed.
    if (z) {
      for (int64_t k = 0; k < depth / 2; ++k) std::swap_ranges(volume + k * plane, volume + (k + 1) * plane, volume + (depth - 1 - k) * plane);
    }
    for (int64_t k = 0; k < depth && (y || x); ++k) {
      T* p = volume + k * plane;
      if (y) {
        for (int64_t r = 0; r < height / 2; ++r) std::swap_ranges(p + r * width, p + (r + 1) * width, p + (height - 1 - r) * width);
      }
      if (x) {
        for (int64_t r = 0; r < height; ++r) std::reverse(p + r * width, p + (r + 1) * width);
      }
    }
  }
}

// flipInPlace(data, volumes, shape, [flipZ, flipY, flipX]): `volumes` consecutive [z, y, x] volumes
// of a Float32Array or Int8Array reversed along the flagged axes, in place (a permutation).
Napi::Value FlipInPlace(Args& a) {
  const int64_t volumes = a.i64(1);
  const auto shape = Triple(a, 2), axes = Triple(a, 3);
  if (volumes < 0 || shape[0] < 0 || shape[1] < 0 || shape[2] < 0) throw ArgError("negative size");
  size_t length = 0;
  Napi::Value value = a.raw(0);
  const int64_t expected = volumes * shape[0] * shape[1] * shape[2];
  if (value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    float* data = ArrayData<float>(a, 0, napi_float32_array, "a Float32Array", &length);
    if (static_cast<int64_t>(length) != expected) throw ArgError("flipInPlace: the array does not hold volumes x shape values");
    Flip<float>(data, volumes, shape, axes[0] != 0, axes[1] != 0, axes[2] != 0);
  } else {
    int8_t* data = ArrayData<int8_t>(a, 0, napi_int8_array, "a Float32Array or Int8Array", &length);
    if (static_cast<int64_t>(length) != expected) throw ArgError("flipInPlace: the array does not hold volumes x shape values");
    Flip<int8_t>(data, volumes, shape, axes[0] != 0, axes[1] != 0, axes[2] != 0);
  }
  return a.env().Undefined();
}

// The float64 sum (in index order), min and max of x, as the JavaScript loop `sum += v; if (v < min)
// min = v; if (v > max) max = v` from +Infinity and -Infinity computes them (NaN never taken).
struct MomentsOf {
  double sum, min, max;
};
MomentsOf Moments(const float* x, size_t n) {
  MomentsOf m{0, std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()};
  for (size_t i = 0; i < n; ++i) {
    const double v = x[i];
    m.sum += v;
    if (v < m.min) m.min = v;
    if (v > m.max) m.max = v;
  }
  return m;
}

// The float32 value of a double, as JavaScript's Math.fround.
inline double F32(double v) { return static_cast<double>(static_cast<float>(v)); }

// gammaPrepare(x, sign): with y = sign x, the statistics of y (float64 sums in index order), then x
// replaced by f32(y - low) / scaleDown. Returns [mean, std, low, scaleUp] (see gammaChannel).
Napi::Value GammaPrepare(Args& a) {
  size_t n = 0;
  float* x = ArrayData<float>(a, 0, napi_float32_array, "a Float32Array", &n);
  const double sign = a.f64(1);
  if (sign != 1 && sign != -1) a.fail(1, "1 or -1");
  const auto [sum, min, max] = Moments(x, n);
  const double mean = sign * (sum / static_cast<double>(n));
  const double low = sign == 1 ? min : -max;
  const double range = (sign == 1 ? max : -min) - low;
  const double lowF = F32(low);
  const double scaleDown = F32(std::max(range, 1e-7));
  double squares = 0;
  for (size_t i = 0; i < n; ++i) {
    const double y = sign * static_cast<double>(x[i]);
    const double d = y - mean;
    squares += d * d;
    x[i] = static_cast<float>(F32(y - lowF) / scaleDown);
  }
  const double std = n > 1 ? std::sqrt(squares / static_cast<double>(n - 1)) : 0;
  Napi::Array result = Napi::Array::New(a.env(), 4);
  result.Set(0u, Napi::Number::New(a.env(), mean));
  result.Set(1u, Napi::Number::New(a.env(), std));
  result.Set(2u, Napi::Number::New(a.env(), lowF));
  result.Set(3u, Napi::Number::New(a.env(), F32(range)));
  return result;
}

// gammaFinish(x, sign, mean, std, low, scaleUp): x (the power) scaled back to the range in float32,
// then its mean and unbiased std restored to those of y, times sign.
Napi::Value GammaFinish(Args& a) {
  size_t n = 0;
  float* x = ArrayData<float>(a, 0, napi_float32_array, "a Float32Array", &n);
  const double sign = a.f64(1), mean = a.f64(2), std = a.f64(3), low = a.f64(4), scaleUp = a.f64(5);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const double t = F32(F32(static_cast<double>(x[i]) * scaleUp) + low);
    x[i] = static_cast<float>(t);
    sum += t;
  }
  const double meanAfter = sum / static_cast<double>(n);
  double squares = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - meanAfter;
    squares += d * d;
  }
  const double stdAfter = n > 1 ? std::sqrt(squares / static_cast<double>(n - 1)) : 0;
  const double factor = std / std::max(stdAfter, 1e-7);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(sign * ((static_cast<double>(x[i]) - meanAfter) * factor + mean));
  return a.env().Undefined();
}

// zeroNegative(labels): every negative value of an Int8Array set to 0, in place (the loader's -1 -> 0).
Napi::Value ZeroNegative(Args& a) {
  size_t n = 0;
  int8_t* x = ArrayData<int8_t>(a, 0, napi_int8_array, "an Int8Array", &n);
  for (size_t i = 0; i < n; ++i) x[i] = x[i] < 0 ? 0 : x[i];
  return a.env().Undefined();
}

// One axis of the Gaussian blur: out = sum over k of kernel[k] in[reflect(i + k - radius)], the
// products added in k order into a float32 accumulator that starts at +0, each with one rounding
// (a fused multiply-add): how libtorch's conv3d (slow_conv3d: unfold, then OpenBLAS sgemm) sums
// them on the CPU, bit for bit (transforms.test.ts compares the two). Reflect padding as torch's
// (index -j reads j). The inner loops run along the contiguous x axis, vectorised (AVX2 + FMA; x86-64
// only, checked at run time: elsewhere blurAxis declines and libtorch blurs).
#if defined(__x86_64__)
__attribute__((target("avx2,fma"), optimize("O3"))) void BlurAxisKernel(const float* in, float* out, const std::array<int64_t, 3>& shape, int axis,
                                                                          const float* kernel, int64_t taps) {
  const int64_t radius = (taps - 1) / 2;
  const int64_t depth = shape[0], height = shape[1], width = shape[2];
  auto reflect = [](int64_t j, int64_t n) { return j < 0 ? -j : j >= n ? 2 * (n - 1) - j : j; };
  if (axis == 2) {
    std::vector<float> padded(static_cast<size_t>(width + 2 * radius));
    for (int64_t line = 0; line < depth * height; ++line) {
      const float* source = in + line * width;
      float* target = out + line * width;
      for (int64_t j = 0; j < width + 2 * radius; ++j) padded[j] = source[reflect(j - radius, width)];
      for (int64_t i = 0; i < width; ++i) target[i] = 0.0f;
      for (int64_t k = 0; k < taps; ++k) {
        const float w = kernel[k];
        const float* p = padded.data() + k;
        for (int64_t i = 0; i < width; ++i) target[i] = __builtin_fmaf(w, p[i], target[i]);
      }
    }
    return;
  }
  // Axis 0 or 1: whole rows (axis 1) or planes (axis 0) at a time.
  const int64_t length = shape[axis];
  const int64_t stride = axis == 0 ? height * width : width;
  const int64_t blocks = axis == 0 ? 1 : depth;
  for (int64_t b = 0; b < blocks; ++b) {
    const float* source = in + b * length * stride;
    float* block = out + b * length * stride;
    for (int64_t i = 0; i < length; ++i) {
      float* target = block + i * stride;
      for (int64_t e = 0; e < stride; ++e) target[e] = 0.0f;
      for (int64_t k = 0; k < taps; ++k) {
        const float w = kernel[k];
        const float* row = source + reflect(i + k - radius, length) * stride;
        for (int64_t e = 0; e < stride; ++e) target[e] = __builtin_fmaf(w, row[e], target[e]);
      }
    }
  }
}

#endif

// blurAxis(in, shape, axis, kernel, out): one blur pass into `out` (not `in`); false where the CPU
// lacks AVX2 or FMA (the caller then uses libtorch).
Napi::Value BlurAxis(Args& a) {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return Napi::Boolean::New(a.env(), false);
  size_t inLength = 0, kernelLength = 0, outLength = 0;
  const float* in = ArrayData<float>(a, 0, napi_float32_array, "a Float32Array", &inLength);
  const auto shape = Triple(a, 1);
  const int64_t axis = a.i64(2);
  const float* kernel = ArrayData<float>(a, 3, napi_float32_array, "a Float32Array", &kernelLength);
  float* out = ArrayData<float>(a, 4, napi_float32_array, "a Float32Array", &outLength);
  if (axis < 0 || axis > 2) a.fail(2, "an axis 0, 1 or 2");
  if (shape[0] < 1 || shape[1] < 1 || shape[2] < 1) throw ArgError("blurAxis: empty shape");
  const int64_t voxels = shape[0] * shape[1] * shape[2];
  if (static_cast<int64_t>(inLength) != voxels || static_cast<int64_t>(outLength) != voxels) throw ArgError("blurAxis: the arrays do not hold the shape's values");
  if (kernelLength % 2 != 1 || static_cast<int64_t>(kernelLength - 1) / 2 >= shape[axis]) throw ArgError("blurAxis: the kernel needs an odd size with radius below the axis length");
  if (in == out) throw ArgError("blurAxis: the output must not be the input");
  BlurAxisKernel(in, out, shape, static_cast<int>(axis), kernel, static_cast<int64_t>(kernelLength));
  return Napi::Boolean::New(a.env(), true);
#else
  return Napi::Boolean::New(a.env(), false);
#endif
}

// JavaScript's Math.max and Math.min: NaN wins, and +0 is above -0.
inline double JsMax(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<double>::quiet_NaN();
  if (a == b) return a == 0 && !std::signbit(a) ? a : b;
  return a > b ? a : b;
}
inline double JsMin(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<double>::quiet_NaN();
  if (a == b) return a == 0 && std::signbit(a) ? a : b;
  return a < b ? a : b;
}

// contrastInPlace(x, factor): x = min(max, max(min, (x - mean) factor + mean)) with the mean, min
// and max of x before the change (float64 sum in index order).
Napi::Value ContrastInPlace(Args& a) {
  size_t n = 0;
  float* x = ArrayData<float>(a, 0, napi_float32_array, "a Float32Array", &n);
  const double factor = a.f64(1);
  const auto [sum, min, max] = Moments(x, n);
  const double mean = sum / static_cast<double>(n);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(JsMin(max, JsMax(min, (static_cast<double>(x[i]) - mean) * factor + mean)));
  return a.env().Undefined();
}

}  // namespace

const std::vector<OpDef>& HostKernelOps() {
  static const std::vector<OpDef> ops = {
      {"cropInto", 7, 7, CropInto},
      {"planeLabels", 9, 9, PlaneLabels},
      {"gammaPrepare", 2, 2, GammaPrepare},
      {"gammaFinish", 6, 6, GammaFinish},
      {"flipInPlace", 4, 4, FlipInPlace},
      {"contrastInPlace", 2, 2, ContrastInPlace},
      {"zeroNegative", 1, 1, ZeroNegative},
      {"blurAxis", 5, 5, BlurAxis},
  };
  return ops;
}

}  // namespace ls
