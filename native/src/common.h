// Shared pieces of the lesionseg addon: the tensor handle, the argument reader every op uses,
// and the op table entry. The addon is context-aware: no static Napi references anywhere; the
// handle constructor lives in per-env instance data.
#pragma once
#include "pch.h"

#include <atomic>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ls {

/** Per-env state (one per main thread / worker thread). */
struct AddonData {
  Napi::FunctionReference tensorConstructor;
};

/** Count of TensorHandle objects whose at::Tensor is still held (all envs together). */
extern std::atomic<int64_t> liveHandleCount;
/** Count of handles whose at::Tensor was released by the GC finalizer rather than by dispose(). */
extern std::atomic<int64_t> finalizedHandleCount;

/** The JS object that owns one at::Tensor. dispose() is idempotent; the GC finalizer is a safety net. */
class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;

  bool disposed() const { return disposed_; }
  const at::Tensor& tensor() const { return tensor_; }
  void Dispose();

  /** Wraps a tensor into a new JS handle (an undefined tensor becomes null). */
  static Napi::Value Make(Napi::Env env, at::Tensor tensor);
  /** The handle behind a JS value, or nullptr when the value is not one of ours. */
  static TensorHandle* From(Napi::Env env, napi_value value);

 private:
  at::Tensor tensor_;
  napi_env env_ = nullptr;
  int64_t reportedBytes_ = 0;
  bool disposed_ = true;
};

/** A wrong argument count or type: becomes a JS TypeError naming the op. */
class ArgError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/** Typed access to one op's arguments; every getter throws ArgError on a mismatch. */
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* op) : info_(info), op_(op) {}
  Napi::Env env() const { return info_.Env(); }
  size_t size() const { return info_.Length(); }
  Napi::Value raw(size_t i) const { return info_[i]; }
  bool isNullish(size_t i) const;
  bool isTensor(size_t i) const;
  bool isNumber(size_t i) const { return i < size() && info_[i].IsNumber(); }

  /** The tensor behind argument i, as a new reference: it stays valid while the op runs even when
   *  JS code that the op triggers (an array getter, a setter on Array.prototype) disposes the handle. */
  at::Tensor tensor(size_t i) const;
  TensorHandle* handle(size_t i) const;
  c10::optional<at::Tensor> optTensor(size_t i) const;
  std::vector<at::Tensor> tensors(size_t i) const;
  std::vector<int64_t> ints(size_t i) const;
  c10::optional<std::vector<int64_t>> optInts(size_t i) const;
  int64_t i64(size_t i) const;
  double f64(size_t i) const;
  c10::optional<double> optF64(size_t i) const;
  bool boolean(size_t i) const;
  std::string str(size_t i) const;
  /** A JS number (integral values become integer scalars, like Python ints) or boolean. */
  at::Scalar scalar(size_t i) const;
  at::ScalarType dtype(size_t i) const;
  c10::Device device(size_t i) const;

  Napi::Value ret(at::Tensor t) const { return TensorHandle::Make(env(), std::move(t)); }
  [[noreturn]] void fail(size_t i, const std::string& expected) const;

 private:
  const Napi::CallbackInfo& info_;
  const char* op_;
};

using OpFn = Napi::Value (*)(Args&);
struct OpDef {
  const char* name;
  int minArgs;
  int maxArgs;
  OpFn fn;
};

/** The first byte of a TypedArray's elements (its byte offset included), also when its buffer is a SharedArrayBuffer. */
inline uint8_t* TypedArrayBytes(const Napi::TypedArray& array) {
  void* data = nullptr;
  if (napi_get_typedarray_info(array.Env(), array, nullptr, nullptr, &data, nullptr, nullptr) != napi_ok) throw ArgError("cannot read the typed array's memory");
  return static_cast<uint8_t*>(data);
}

/** Each op file contributes its table. */
const std::vector<OpDef>& CreationOps();
const std::vector<OpDef>& PointwiseOps();
const std::vector<OpDef>& NnOps();
const std::vector<OpDef>& FusedOps();
const std::vector<OpDef>& ShapeOps();
const std::vector<OpDef>& DistributedOps();
const std::vector<OpDef>& AllocatorOps();
const std::vector<OpDef>& ProfilerOps();
const std::vector<OpDef>& ConvBf16Ops();
const std::vector<OpDef>& HostKernelOps();

/** Whether the addon's bf16 kernels may run (setBf16Kernels; each also checks the CPU). */
bool Bf16KernelsEnabled();

/** ops_fused_bf16.cpp's instance norm + leaky ReLU of a bf16 activation where it applies; nullopt: the composed ops. */
c10::optional<at::Tensor> InstanceNormLeakyReluBf16(const at::Tensor& x, const c10::optional<at::Tensor>& weight,
                                                    const c10::optional<at::Tensor>& bias, double eps, double slope);

/** conv3d through conv_bf16.cpp's kernels where they apply (bf16 or bf16 autocast, 3x3x3, stride 1,
 *  padding 1, a weight that needs its gradient, planes >= 4096 or volumes <= 2048 voxels,
 *  AVX512-BF16); nullopt: take ATen's conv3d. */
c10::optional<at::Tensor> Conv3dBf16Kernel(const at::Tensor& input, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                                           const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                                           const std::vector<int64_t>& dilation, int64_t groups);

/** Put the block cache (allocator.cpp) in front of libtorch's CPU allocator, once. */
void InstallCpuBlockCache();

/** Converts a JS number to a scalar the way PyTorch converts a Python value. */
at::Scalar ScalarFromNumber(double value);

}  // namespace ls
