// Tensor creation, host <-> tensor copies, handle metadata, autograd, and the global switches
// (grad mode, autocast, seed, threads, CUDA queries), and the versions of the libraries that compute.
#include "common.h"

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <torch/version.h>

#include <dlfcn.h>

#include <cstring>

namespace ls {
namespace {

at::TensorOptions Options(const Args& a, size_t dtypeIndex, size_t deviceIndex) {
  return at::TensorOptions().dtype(a.dtype(dtypeIndex)).device(a.device(deviceIndex));
}

// ------------------------------------------------------------ handles and metadata

Napi::Value Dispose(Args& a) {
  TensorHandle* h = TensorHandle::From(a.env(), a.raw(0));
  if (h == nullptr) a.fail(0, "a tensor");
  h->Dispose();
  return a.env().Undefined();
}

Napi::Value LiveHandles(Args& a) { return Napi::Number::New(a.env(), static_cast<double>(liveHandleCount.load())); }

Napi::Value FinalizedHandles(Args& a) { return Napi::Number::New(a.env(), static_cast<double>(finalizedHandleCount.load())); }

Napi::Value Shape(Args& a) {
  const at::Tensor& t = a.tensor(0);
  Napi::Array shape = Napi::Array::New(a.env(), t.dim());
  for (int64_t d = 0; d < t.dim(); ++d) shape.Set(static_cast<uint32_t>(d), Napi::Number::New(a.env(), t.size(d)));
  return shape;
}

Napi::Value Dtype(Args& a) { return Napi::Number::New(a.env(), static_cast<int>(a.tensor(0).scalar_type())); }

Napi::Value DeviceOf(Args& a) { return Napi::String::New(a.env(), a.tensor(0).device().str()); }

Napi::Value RequiresGrad(Args& a) { return Napi::Boolean::New(a.env(), a.tensor(0).requires_grad()); }

Napi::Value SetRequiresGrad(Args& a) {
  a.tensor(0).requires_grad_(a.boolean(1));
  return a.env().Undefined();
}

Napi::Value IsLeaf(Args& a) { return Napi::Boolean::New(a.env(), a.tensor(0).is_leaf()); }

Napi::Value Grad(Args& a) { return a.ret(a.tensor(0).grad()); }

Napi::Value ZeroGrad(Args& a) {
  a.tensor(0).mutable_grad() = at::Tensor();
  return a.env().Undefined();
}

Napi::Value Backward(Args& a) {
  const at::Tensor& t = a.tensor(0);
  at::Tensor gradient = a.isNullish(1) ? at::Tensor() : a.tensor(1);
  c10::optional<bool> retain = a.isNullish(2) ? c10::nullopt : c10::optional<bool>(a.boolean(2));
  t.backward(gradient, retain, false);
  return a.env().Undefined();
}

Napi::Value Detach(Args& a) { return a.ret(a.tensor(0).detach()); }

// ------------------------------------------------------------ host copies

Napi::Value FromTypedArray(Args& a) {
  Napi::Value value = a.raw(0);
  if (!value.IsTypedArray()) a.fail(0, "a TypedArray");
  Napi::TypedArray array = value.As<Napi::TypedArray>();
  std::vector<int64_t> shape = a.ints(1);
  at::ScalarType target = a.dtype(2);
  c10::Device device = a.device(3);
  int64_t numel = 1;
  for (int64_t s : shape) {
    if (s < 0) a.fail(1, "a shape of non-negative sizes");
    numel *= s;
  }
  size_t length = array.ElementLength();
  if (static_cast<int64_t>(length) != numel) {
    throw ArgError("data has " + std::to_string(length) + " elements but the shape needs " + std::to_string(numel));
  }
  const uint8_t* bytes = TypedArrayBytes(array);
  at::Tensor host;
  switch (array.TypedArrayType()) {
    case napi_uint16_array: {  // no uint16 in libtorch 1.13: widen to int32
      host = at::empty(shape, at::kInt);
      const uint16_t* src = reinterpret_cast<const uint16_t*>(bytes);
      int32_t* dst = host.data_ptr<int32_t>();
      for (size_t k = 0; k < length; ++k) dst[k] = src[k];
      break;
    }
    case napi_uint32_array: {  // widen to int64
      host = at::empty(shape, at::kLong);
      const uint32_t* src = reinterpret_cast<const uint32_t*>(bytes);
      int64_t* dst = host.data_ptr<int64_t>();
      for (size_t k = 0; k < length; ++k) dst[k] = src[k];
      break;
    }
    default: {
      at::ScalarType source;
      switch (array.TypedArrayType()) {
        case napi_int8_array: source = at::kChar; break;
        case napi_uint8_array:
        case napi_uint8_clamped_array: source = at::kByte; break;
        case napi_int16_array: source = at::kShort; break;
        case napi_int32_array: source = at::kInt; break;
        case napi_float32_array: source = at::kFloat; break;
        case napi_float64_array: source = at::kDouble; break;
        case napi_bigint64_array:
        case napi_biguint64_array: source = at::kLong; break;
        default: a.fail(0, "a supported TypedArray");
      }
      host = at::empty(shape, source);
      if (length > 0) std::memcpy(host.data_ptr(), bytes, length * host.element_size());
    }
  }
  if (host.scalar_type() != target || device != host.device()) host = host.to(device, target);
  return a.ret(std::move(host));
}

// Copies to host memory; fp16/bf16 (or anything when `asFloat32`) become float32, bool becomes uint8.
Napi::Value CopyToHost(Args& a, bool asFloat32) {
  at::Tensor t = a.tensor(0).detach();
  at::ScalarType type = t.scalar_type();
  if (asFloat32 || type == at::kHalf || type == at::kBFloat16) type = at::kFloat;
  if (type == at::kBool) type = at::kByte;
  t = t.to(at::kCPU, type).contiguous();
  size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(a.env(), bytes);
  if (bytes > 0) std::memcpy(buffer.Data(), t.data_ptr(), bytes);
  size_t n = static_cast<size_t>(t.numel());
  switch (type) {
    case at::kFloat: return Napi::Float32Array::New(a.env(), n, buffer, 0);
    case at::kDouble: return Napi::Float64Array::New(a.env(), n, buffer, 0);
    case at::kInt: return Napi::Int32Array::New(a.env(), n, buffer, 0);
    case at::kShort: return Napi::Int16Array::New(a.env(), n, buffer, 0);
    case at::kChar: return Napi::Int8Array::New(a.env(), n, buffer, 0);
    case at::kByte: return Napi::Uint8Array::New(a.env(), n, buffer, 0);
    case at::kLong: return Napi::TypedArrayOf<int64_t>::New(a.env(), n, buffer, 0, napi_bigint64_array);
    default: throw ArgError("cannot copy this dtype to the host");
  }
}

// Copies the tensor's values into an existing host TypedArray of as many elements (any device, any
// layout; converted to the array's element type): no new ArrayBuffer, so a caller that reuses its
// arrays gives V8's garbage collector no external memory to account for.
Napi::Value CopyInto(Args& a) {
  at::Tensor t = a.tensor(0).detach();
  Napi::Value value = a.raw(1);
  if (!value.IsTypedArray()) a.fail(1, "a TypedArray");
  Napi::TypedArray array = value.As<Napi::TypedArray>();
  at::ScalarType type;
  switch (array.TypedArrayType()) {
    case napi_int8_array: type = at::kChar; break;
    case napi_uint8_array: type = at::kByte; break;
    case napi_int16_array: type = at::kShort; break;
    case napi_int32_array: type = at::kInt; break;
    case napi_float32_array: type = at::kFloat; break;
    case napi_float64_array: type = at::kDouble; break;
    case napi_bigint64_array: type = at::kLong; break;
    default: a.fail(1, "an Int8, Uint8, Int16, Int32, Float32, Float64 or BigInt64 array");
  }
  if (static_cast<int64_t>(array.ElementLength()) != t.numel()) {
    throw ArgError("the target has " + std::to_string(array.ElementLength()) + " elements, the tensor " + std::to_string(t.numel()));
  }
  if (t.numel() == 0) return a.env().Undefined();
  uint8_t* bytes = TypedArrayBytes(array);
  at::from_blob(bytes, t.sizes(), at::TensorOptions().dtype(type)).copy_(t);
  return a.env().Undefined();
}

Napi::Value ToTypedArray(Args& a) { return CopyToHost(a, false); }
Napi::Value ToFloat32Array(Args& a) { return CopyToHost(a, true); }

Napi::Value Item(Args& a) {
  const at::Tensor& t = a.tensor(0);
  if (t.scalar_type() == at::kBool) return Napi::Number::New(a.env(), t.item<bool>() ? 1 : 0);
  return Napi::Number::New(a.env(), t.item<double>());
}

// ------------------------------------------------------------ creation

Napi::Value Zeros(Args& a) { return a.ret(at::zeros(a.ints(0), Options(a, 1, 2))); }
Napi::Value Ones(Args& a) { return a.ret(at::ones(a.ints(0), Options(a, 1, 2))); }
Napi::Value Full(Args& a) { return a.ret(at::full(a.ints(0), a.scalar(1), Options(a, 2, 3))); }
Napi::Value Randn(Args& a) { return a.ret(at::randn(a.ints(0), Options(a, 1, 2))); }
Napi::Value Rand(Args& a) { return a.ret(at::rand(a.ints(0), Options(a, 1, 2))); }
Napi::Value Arange(Args& a) {
  return a.ret(at::arange(a.scalar(0), a.scalar(1), a.scalar(2), Options(a, 3, 4)));
}
Napi::Value ZerosLike(Args& a) { return a.ret(at::zeros_like(a.tensor(0))); }
Napi::Value OnesLike(Args& a) { return a.ret(at::ones_like(a.tensor(0))); }

// ------------------------------------------------------------ global state

Napi::Value SetGradEnabled(Args& a) {
  bool previous = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(a.boolean(0));
  return Napi::Boolean::New(a.env(), previous);
}

Napi::Value IsGradEnabled(Args& a) { return Napi::Boolean::New(a.env(), c10::GradMode::is_enabled()); }

bool IsCpu(const Args& a, size_t i) {
  std::string type = a.str(i);
  if (type == "cpu") return true;
  if (type == "cuda") return false;
  a.fail(i, "'cpu' or 'cuda'");
}

// autocastEnter(deviceType, dtype, enabled) -> [previousEnabled, previousDtype]; like torch.autocast.__enter__.
Napi::Value AutocastEnter(Args& a) {
  bool cpu = IsCpu(a, 0);
  at::ScalarType type = a.dtype(1);
  bool enabled = a.boolean(2);
  if (type != at::kBFloat16 && type != at::kHalf) a.fail(1, "bfloat16 or float16");
  if (cpu && enabled && type != at::kBFloat16) throw ArgError("CPU autocast supports only bfloat16");
  bool previousEnabled = cpu ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
  at::ScalarType previousType = cpu ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
  if (cpu) {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(type);
  } else {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(type);
  }
  at::autocast::increment_nesting();
  Napi::Array previous = Napi::Array::New(a.env(), 2);
  previous.Set(0u, Napi::Boolean::New(a.env(), previousEnabled));
  previous.Set(1u, Napi::Number::New(a.env(), static_cast<int>(previousType)));
  return previous;
}

// autocastExit(deviceType, previousEnabled, previousDtype); clears the cast cache when the outermost exits.
Napi::Value AutocastExit(Args& a) {
  bool cpu = IsCpu(a, 0);
  bool enabled = a.boolean(1);
  at::ScalarType type = a.dtype(2);
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  if (cpu) {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(type);
  } else {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(type);
  }
  return a.env().Undefined();
}

Napi::Value ManualSeed(Args& a) {
  at::manual_seed(static_cast<uint64_t>(a.i64(0)));
  return a.env().Undefined();
}

Napi::Value SetNumThreads(Args& a) {
  int64_t n = a.i64(0);
  if (n < 1) a.fail(0, "a positive integer");
  at::set_num_threads(static_cast<int>(n));
  return a.env().Undefined();
}

Napi::Value GetNumThreads(Args& a) { return Napi::Number::New(a.env(), at::get_num_threads()); }

// oneDNN's dnnl_version_t (oneapi/dnnl/dnnl_types.h), declared here so that the addon builds
// without oneDNN's headers; the symbol is looked up at run time and absent when libtorch hides it.
struct DnnlVersion {
  int major;
  int minor;
  int patch;
  const char* hash;
  unsigned cpuRuntime;
  unsigned gpuRuntime;
};

// The libraries whose kernels decide the numbers: libtorch's version and build configuration
// (at::show_config: oneDNN, BLAS, the ATen CPU capability), oneDNN's and OpenBLAS's own version
// strings where their symbols are visible (null otherwise).
Napi::Value RuntimeInfo(Args& a) {
  Napi::Env env = a.env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("torch", Napi::String::New(env, TORCH_VERSION));
  out.Set("config", Napi::String::New(env, at::show_config()));
  using DnnlVersionFn = const DnnlVersion* (*)();
  auto dnnl = reinterpret_cast<DnnlVersionFn>(dlsym(RTLD_DEFAULT, "dnnl_version"));
  if (dnnl != nullptr && dnnl() != nullptr) {
    const DnnlVersion* v = dnnl();
    out.Set("onednn", Napi::String::New(env, std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch)));
  } else {
    out.Set("onednn", env.Null());
  }
  using StringFn = char* (*)();
  auto openblas = reinterpret_cast<StringFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  out.Set("openblas", openblas != nullptr ? Napi::Value(Napi::String::New(env, openblas())) : env.Null());
  using IntFn = int (*)();
  auto openblasThreads = reinterpret_cast<IntFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  out.Set("openblasThreads", openblasThreads != nullptr ? Napi::Value(Napi::Number::New(env, openblasThreads())) : env.Null());
  return out;
}

Napi::Value CudaIsAvailable(Args& a) {
  return Napi::Boolean::New(a.env(), at::hasCUDA() && at::getNumGPUs() > 0);
}

Napi::Value CudaDeviceCount(Args& a) {
  return Napi::Number::New(a.env(), at::hasCUDA() ? static_cast<double>(at::getNumGPUs()) : 0.0);
}

}  // namespace

const std::vector<OpDef>& CreationOps() {
  static const std::vector<OpDef> ops = {
      {"dispose", 1, 1, Dispose},
      {"liveHandles", 0, 0, LiveHandles},
      {"finalizedHandles", 0, 0, FinalizedHandles},
      {"shape", 1, 1, Shape},
      {"dtype", 1, 1, Dtype},
      {"device", 1, 1, DeviceOf},
      {"requiresGrad", 1, 1, RequiresGrad},
      {"setRequiresGrad", 2, 2, SetRequiresGrad},
      {"isLeaf", 1, 1, IsLeaf},
      {"grad", 1, 1, Grad},
      {"zeroGrad", 1, 1, ZeroGrad},
      {"backward", 1, 3, Backward},
      {"detach", 1, 1, Detach},
      {"fromTypedArray", 4, 4, FromTypedArray},
      {"toTypedArray", 1, 1, ToTypedArray},
      {"toFloat32Array", 1, 1, ToFloat32Array},
      {"copyInto", 2, 2, CopyInto},
      {"item", 1, 1, Item},
      {"zeros", 3, 3, Zeros},
      {"ones", 3, 3, Ones},
      {"full", 4, 4, Full},
      {"randn", 3, 3, Randn},
      {"rand", 3, 3, Rand},
      {"arange", 5, 5, Arange},
      {"zerosLike", 1, 1, ZerosLike},
      {"onesLike", 1, 1, OnesLike},
      {"setGradEnabled", 1, 1, SetGradEnabled},
      {"isGradEnabled", 0, 0, IsGradEnabled},
      {"autocastEnter", 3, 3, AutocastEnter},
      {"autocastExit", 3, 3, AutocastExit},
      {"manualSeed", 1, 1, ManualSeed},
      {"setNumThreads", 1, 1, SetNumThreads},
      {"getNumThreads", 0, 0, GetNumThreads},
      {"runtimeInfo", 0, 0, RuntimeInfo},
      {"cudaIsAvailable", 0, 0, CudaIsAvailable},
      {"cudaDeviceCount", 0, 0, CudaDeviceCount},
  };
  return ops;
}

}  // namespace ls
