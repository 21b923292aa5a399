// Module entry: the TensorHandle class, the argument reader, and the PROTECT-style trampoline that
// every exported op runs through (argument count check, C++ exceptions -> JS errors naming the op
// and the input shapes).
#include "common.h"

#include <cstdlib>
#include <mutex>

#include <cmath>
#include <sstream>

namespace ls {

std::atomic<int64_t> liveHandleCount{0};
std::atomic<int64_t> finalizedHandleCount{0};

namespace {

// Tags our handle objects so that arbitrary JS objects are never unwrapped as tensors.
const napi_type_tag kTensorTag = {0x6c6573696f6e7365ULL, 0x67746e7372686e64ULL};

int64_t ByteSize(const at::Tensor& t) {
  return static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
}

std::string ShapeText(const at::Tensor& t) {
  std::ostringstream out;
  out << '[';
  for (int64_t d = 0; d < t.dim(); ++d) out << (d ? ", " : "") << t.size(d);
  out << ']';
  return out.str();
}

Napi::Array ShapeArray(Napi::Env env, const at::Tensor& t) {
  Napi::Array shape = Napi::Array::New(env, t.dim());
  for (int64_t d = 0; d < t.dim(); ++d) shape.Set(static_cast<uint32_t>(d), Napi::Number::New(env, t.size(d)));
  return shape;
}

// Shapes of every live tensor argument (also inside arrays), for error messages.
void CollectShapes(const Napi::CallbackInfo& info, std::vector<at::Tensor>& out) {
  for (size_t i = 0; i < info.Length(); ++i) {
    Napi::Value v = info[i];
    if (TensorHandle* h = TensorHandle::From(info.Env(), v)) {
      if (!h->disposed()) out.push_back(h->tensor());
    } else if (v.IsArray()) {
      Napi::Array a = v.As<Napi::Array>();
      for (uint32_t k = 0; k < a.Length(); ++k) {
        TensorHandle* e = TensorHandle::From(info.Env(), a.Get(k));
        if (e && !e->disposed()) out.push_back(e->tensor());
      }
    }
  }
}

Napi::Error MakeTorchError(const Napi::CallbackInfo& info, const char* op, const std::string& detail) {
  Napi::Env env = info.Env();
  std::vector<at::Tensor> inputs;
  try {
    CollectShapes(info, inputs);
  } catch (...) {
    inputs.clear();
  }
  std::ostringstream message;
  message << op << '(';
  Napi::Array shapes = Napi::Array::New(env, inputs.size());
  for (size_t k = 0; k < inputs.size(); ++k) {
    message << (k ? ", " : "") << ShapeText(inputs[k]);
    shapes.Set(static_cast<uint32_t>(k), ShapeArray(env, inputs[k]));
  }
  message << "): " << detail;
  Napi::Error error = Napi::Error::New(env, message.str());
  error.Value().Set("op", Napi::String::New(env, op));
  error.Value().Set("shapes", shapes);
  error.Value().Set("detail", Napi::String::New(env, detail));
  return error;
}

// Every export runs here: info.Data() is the op's static table entry (plain C++ data).
Napi::Value Trampoline(const Napi::CallbackInfo& info) {
  const OpDef* def = static_cast<const OpDef*>(info.Data());
  Args args(info, def->name);
  try {
    int argc = static_cast<int>(info.Length());
    if (argc < def->minArgs || argc > def->maxArgs) {
      std::ostringstream m;
      m << "expects " << def->minArgs;
      if (def->maxArgs != def->minArgs) m << " to " << def->maxArgs;
      m << " arguments, got " << argc;
      throw ArgError(m.str());
    }
    return def->fn(args);
  } catch (const Napi::Error&) {
    throw;
  } catch (const ArgError& e) {
    Napi::TypeError error = Napi::TypeError::New(info.Env(), std::string(def->name) + ": " + e.what());
    error.Value().Set("op", Napi::String::New(info.Env(), def->name));
    throw error;
  } catch (const c10::Error& e) {
    throw MakeTorchError(info, def->name, e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw MakeTorchError(info, def->name, e.what());
  } catch (...) {
    throw MakeTorchError(info, def->name, "unknown native exception");
  }
}

}  // namespace

// ---------------------------------------------------------------- TensorHandle

Napi::Function TensorHandle::Define(Napi::Env env) { return DefineClass(env, "TensorHandle", {}); }

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {
  env_ = info.Env();
  info.This().As<Napi::Object>().TypeTag(&kTensorTag);
  // Only the addon creates live handles (it passes the tensor as an External); `new TensorHandle()`
  // from JS gives an already-disposed handle.
  if (info.Length() == 1 && info[0].IsExternal()) {
    tensor_ = std::move(*info[0].As<Napi::External<at::Tensor>>().Data());
    disposed_ = false;
    ++liveHandleCount;
    reportedBytes_ = ByteSize(tensor_);
    if (reportedBytes_ > 0) Napi::MemoryManagement::AdjustExternalMemory(info.Env(), reportedBytes_);
  }
}

TensorHandle::~TensorHandle() {
  // Reached from the GC finalizer; a handle still holding its tensor here was never disposed.
  if (!disposed_) ++finalizedHandleCount;
  Dispose();
}

void TensorHandle::Dispose() {
  if (disposed_) return;
  disposed_ = true;
  tensor_ = at::Tensor();
  --liveHandleCount;
  if (reportedBytes_ > 0 && env_ != nullptr) {
    int64_t ignored = 0;
    napi_adjust_external_memory(env_, -reportedBytes_, &ignored);
  }
  reportedBytes_ = 0;
}

Napi::Value TensorHandle::Make(Napi::Env env, at::Tensor tensor) {
  if (!tensor.defined()) return env.Null();
  AddonData* data = env.GetInstanceData<AddonData>();
  Napi::External<at::Tensor> carrier = Napi::External<at::Tensor>::New(env, &tensor);
  return data->tensorConstructor.New({carrier});
}

TensorHandle* TensorHandle::From(Napi::Env env, napi_value value) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_object) return nullptr;
  bool tagged = false;
  if (napi_check_object_type_tag(env, value, &kTensorTag, &tagged) != napi_ok || !tagged) return nullptr;
  void* wrapped = nullptr;
  if (napi_unwrap(env, value, &wrapped) != napi_ok) return nullptr;
  return static_cast<TensorHandle*>(wrapped);
}

// ---------------------------------------------------------------- Args

at::Scalar ScalarFromNumber(double value) {
  if (std::isfinite(value) && std::floor(value) == value && std::fabs(value) < 9.007199254740992e15) {
    return at::Scalar(static_cast<int64_t>(value));
  }
  return at::Scalar(value);
}

void Args::fail(size_t i, const std::string& expected) const {
  std::ostringstream m;
  m << "argument " << i << " must be " << expected;
  throw ArgError(m.str());
}

bool Args::isNullish(size_t i) const { return i >= size() || info_[i].IsNull() || info_[i].IsUndefined(); }

bool Args::isTensor(size_t i) const { return i < size() && TensorHandle::From(env(), info_[i]) != nullptr; }

TensorHandle* Args::handle(size_t i) const {
  TensorHandle* h = i < size() ? TensorHandle::From(env(), info_[i]) : nullptr;
  if (h == nullptr) fail(i, "a tensor");
  if (h->disposed()) fail(i, "a live tensor, but it was disposed");
  return h;
}

at::Tensor Args::tensor(size_t i) const { return handle(i)->tensor(); }

c10::optional<at::Tensor> Args::optTensor(size_t i) const {
  if (isNullish(i)) return c10::nullopt;
  return tensor(i);
}

std::vector<at::Tensor> Args::tensors(size_t i) const {
  if (i >= size() || !info_[i].IsArray()) fail(i, "an array of tensors");
  Napi::Array a = info_[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(a.Length());
  for (uint32_t k = 0; k < a.Length(); ++k) {
    TensorHandle* h = TensorHandle::From(env(), a.Get(k));
    if (h == nullptr || h->disposed()) fail(i, "an array of live tensors (element " + std::to_string(k) + " is not)");
    out.push_back(h->tensor());
  }
  return out;
}

std::vector<int64_t> Args::ints(size_t i) const {
  if (i >= size() || !info_[i].IsArray()) fail(i, "an array of integers");
  Napi::Array a = info_[i].As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value v = a.Get(k);
    if (!v.IsNumber()) fail(i, "an array of integers");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || std::floor(d) != d) fail(i, "an array of integers");
    out[k] = static_cast<int64_t>(d);
  }
  return out;
}

c10::optional<std::vector<int64_t>> Args::optInts(size_t i) const {
  if (isNullish(i)) return c10::nullopt;
  return ints(i);
}

int64_t Args::i64(size_t i) const {
  if (i >= size()) fail(i, "an integer");
  if (info_[i].IsBigInt()) {
    bool lossless = true;
    return info_[i].As<Napi::BigInt>().Int64Value(&lossless);
  }
  if (!info_[i].IsNumber()) fail(i, "an integer");
  double d = info_[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d) fail(i, "an integer");
  return static_cast<int64_t>(d);
}

double Args::f64(size_t i) const {
  if (i >= size() || !info_[i].IsNumber()) fail(i, "a number");
  return info_[i].As<Napi::Number>().DoubleValue();
}

c10::optional<double> Args::optF64(size_t i) const {
  if (isNullish(i)) return c10::nullopt;
  return f64(i);
}

bool Args::boolean(size_t i) const {
  if (i >= size() || !info_[i].IsBoolean()) fail(i, "a boolean");
  return info_[i].As<Napi::Boolean>().Value();
}

std::string Args::str(size_t i) const {
  if (i >= size() || !info_[i].IsString()) fail(i, "a string");
  return info_[i].As<Napi::String>().Utf8Value();
}

at::Scalar Args::scalar(size_t i) const {
  if (i < size() && info_[i].IsBoolean()) return at::Scalar(info_[i].As<Napi::Boolean>().Value());
  return ScalarFromNumber(f64(i));
}

at::ScalarType Args::dtype(size_t i) const {
  int64_t code = i64(i);
  switch (code) {
    case static_cast<int64_t>(at::kByte):
    case static_cast<int64_t>(at::kChar):
    case static_cast<int64_t>(at::kShort):
    case static_cast<int64_t>(at::kInt):
    case static_cast<int64_t>(at::kLong):
    case static_cast<int64_t>(at::kHalf):
    case static_cast<int64_t>(at::kFloat):
    case static_cast<int64_t>(at::kDouble):
    case static_cast<int64_t>(at::kBool):
    case static_cast<int64_t>(at::kBFloat16):
      return static_cast<at::ScalarType>(code);
    default:
      fail(i, "a supported dtype code");
  }
}

c10::Device Args::device(size_t i) const {
  c10::Device device(str(i));
  if (device.is_cuda() && !at::hasCUDA()) {
    throw ArgError("device '" + device.str() + "' asked for, but this libtorch has no CUDA support (or no GPU is visible)");
  }
  return device;
}

}  // namespace ls

// ---------------------------------------------------------------- module init

#if defined(__GLIBC__)
#include <malloc.h>
#endif

// libtorch's CPU allocator is plain malloc. With glibc's defaults every activation above the
// dynamic mmap threshold is a fresh mmap, so each training step pays page faults for all of its
// activations (measured: ~20% of a U-Net forward+backward on 2 cores). Keeping allocations up to
// 32 MiB on the heap and not trimming it below 1 GiB lets steps reuse the same pages; the heap
// then stays at its peak, which is what a training loop reaches anyway. Training asks for this
// (tuneAllocator, from src/train); prediction keeps glibc's defaults, which trim the heap: with
// the tuning its sliding window's peak RSS was 1.15x PyTorch's, without it 0.94x, at about the
// same speed (bench/predict.ts, results/predict/). LESIONSEG_MALLOC_TUNING=0 keeps glibc's
// defaults for training too (smaller resident memory, slower steps). Returns whether it applied.
static Napi::Value TuneAllocator(const Napi::CallbackInfo& info) {
  bool applied = false;
#if defined(__GLIBC__)
  static std::once_flag once;
  static bool tuned = false;
  std::call_once(once, [] {
    const char* setting = std::getenv("LESIONSEG_MALLOC_TUNING");
    if (setting != nullptr && std::string(setting) == "0") return;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_TOP_PAD, 256 << 20);
    tuned = true;
  });
  applied = tuned;
#endif
  return Napi::Boolean::New(info.Env(), applied);
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ls::InstallCpuBlockCache();
  auto* data = new ls::AddonData();
  data->tensorConstructor = Napi::Persistent(ls::TensorHandle::Define(env));
  env.SetInstanceData<ls::AddonData>(data);
  exports.Set("TensorHandle", data->tensorConstructor.Value());
  exports.Set("tuneAllocator", Napi::Function::New(env, TuneAllocator, "tuneAllocator"));
  for (const auto* table : {&ls::CreationOps(), &ls::PointwiseOps(), &ls::NnOps(), &ls::FusedOps(), &ls::ShapeOps(), &ls::AllocatorOps(), &ls::DistributedOps(), &ls::ProfilerOps(), &ls::ConvBf16Ops(), &ls::HostKernelOps()}) {
    for (const ls::OpDef& def : *table) {
      exports.Set(def.name, Napi::Function::New(env, ls::Trampoline, def.name, const_cast<ls::OpDef*>(&def)));
    }
  }
  return exports;
}

NODE_API_MODULE(lesionseg_native, Init)
