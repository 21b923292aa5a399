// Data-parallel collectives over torch's c10d: one TCPStore (rank 0 serves it) and one process
// group per process (Gloo; NCCL for CUDA tensors where the libtorch and the build have it).
// Compiled with LESIONSEG_DISTRIBUTED only when cmake found the c10d Gloo headers; otherwise the
// same exports exist and say why distributed training is not available.
//
// The collectives that move gradients and parameters run off the JS thread (a Napi::AsyncWorker
// resolving a Promise), so Node's event loop keeps turning while they wait on the network. Tensors
// of one dtype and device are flattened into buckets of at most `bucketBytes`, every bucket's
// collective is queued before the first is waited on (Gloo runs them on its own threads), and the
// results are copied back in place. A dead or stuck peer makes the pending collective fail (Gloo
// sees the closed connection at once, a silent peer after the process group's timeout), and the
// failure rejects the Promise with a message naming the operation.
//
// Lifetime: every queued collective holds the group (a shared_ptr) until it is done, so
// distShutdown never frees it under an in-flight all-reduce; it resolves once the group is freed.
#include "common.h"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#ifdef __linux__
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
#endif

#ifdef LESIONSEG_DISTRIBUTED
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef LESIONSEG_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

#ifndef LESIONSEG_DISTRIBUTED_REASON
#define LESIONSEG_DISTRIBUTED_REASON "built without distributed support"
#endif

namespace ls {
namespace {

#ifdef LESIONSEG_DISTRIBUTED

// The process's group, shared: the registry holds it from distInit to distShutdown, and every
// collective queued meanwhile holds it too until that collective is done, so a shutdown that meets
// an in-flight all-reduce frees nothing under it. Its destructor (Gloo joins its threads, rank 0's
// TCPStore stops serving) runs wherever the last holder lets go; distShutdown waits for that.
struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  int rank = 0;
  int world = 1;
  std::string backend;
  Group();
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;
};

// Process-wide state, behind one mutex. Never destroyed: a process leaving after a peer died without
// distShutdown must not block at exit in Gloo's destructors (they join threads stuck on a socket).
struct Registry {
  std::mutex mutex;
  std::condition_variable destroyed;
  std::shared_ptr<Group> current;  // null before distInit and after distShutdown
  bool initialising = false;       // a distInit is running
  int alive = 0;                   // Groups constructed and not yet destroyed
};
Registry& State() {
  static Registry* registry = new Registry();
  return *registry;
}

Group::Group() {
  std::lock_guard<std::mutex> lock(State().mutex);
  ++State().alive;
}

Group::~Group() {
  // The process group first (it still uses the store's connection), then the store.
  pg.reset();
  store.reset();
  std::lock_guard<std::mutex> lock(State().mutex);
  --State().alive;
  State().destroyed.notify_all();
}

// The group for one operation: a shared reference that keeps it alive while the operation runs.
// Called on the JS thread only: the trampoline's message names the op.
std::shared_ptr<Group> Current() {
  std::lock_guard<std::mutex> lock(State().mutex);
  if (!State().current) throw std::runtime_error("no process group (distInit first; distShutdown ends it)");
  return State().current;
}

c10d::ReduceOp ParseReduceOp(const std::string& name) {
  if (name == "sum") return c10d::ReduceOp::SUM;
  if (name == "max") return c10d::ReduceOp::MAX;
  throw ArgError("reduce op must be 'sum' or 'max', got '" + name + "'");
}

// Consecutive tensors of one dtype and device, at most `bucketBytes` each (a larger tensor is a
// bucket of its own).
std::vector<std::vector<size_t>> Buckets(const std::vector<at::Tensor>& tensors, int64_t bucketBytes) {
  std::vector<std::vector<size_t>> buckets;
  int64_t bytes = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const at::Tensor& t = tensors[i];
    int64_t size = static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
    bool fresh = buckets.empty() || bytes + size > bucketBytes;
    if (!fresh) {
      const at::Tensor& first = tensors[buckets.back().front()];
      fresh = first.scalar_type() != t.scalar_type() || first.device() != t.device();
    }
    if (fresh) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(i);
    bytes += size;
  }
  return buckets;
}

enum class Kind { kAllReduce, kBroadcast };

// Queue one collective per bucket, wait for all, copy the flat results back into the tensors.
// The caller holds `g` (a shared reference) for as long as this runs.
void RunBucketed(Group& g, std::vector<at::Tensor>& tensors, Kind kind, c10d::ReduceOp op, int root, int64_t bucketBytes) {
  // Parameters are leaves that require grad: copying into them must not be recorded.
  at::NoGradGuard noGrad;
  auto buckets = Buckets(tensors, bucketBytes);
  std::vector<at::Tensor> flats;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  flats.reserve(buckets.size());
  for (const auto& bucket : buckets) {
    std::vector<at::Tensor> members;
    for (size_t i : bucket) members.push_back(tensors[i].reshape({-1}));
    flats.push_back(at::cat(members));
    std::vector<at::Tensor> one{flats.back()};
    if (kind == Kind::kAllReduce) {
      c10d::AllreduceOptions options;
      options.reduceOp = op;
      works.push_back(g.pg->allreduce(one, options));
    } else {
      c10d::BroadcastOptions options;
      options.rootRank = root;
      works.push_back(g.pg->broadcast(one, options));
    }
  }
  // Wait for every collective, also after one failed: none of them may still be writing into
  // `flats` once this returns. The first failure is the one reported.
  std::exception_ptr failure;
  for (auto& work : works) {
    try {
      work->wait();
    } catch (...) {
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
  for (size_t b = 0; b < buckets.size(); ++b) {
    int64_t offset = 0;
    for (size_t i : buckets[b]) {
      at::Tensor& t = tensors[i];
      int64_t n = t.numel();
      t.copy_(flats[b].narrow(0, offset, n).view(t.sizes()));
      offset += n;
    }
  }
}

// A Promise settled from the libuv thread pool. `work` owns what it needs (shared references to
// the group, tensors by value), never a reference into something JS can free meanwhile; it is
// destroyed in Execute, on the pool's thread, so the group's last holder never lets go of it on the
// JS thread (the group's destructor joins threads).
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::string op, std::function<double()> work)
      : Napi::AsyncWorker(env, op.c_str()), deferred_(Napi::Promise::Deferred::New(env)), op_(std::move(op)), work_(std::move(work)) {}
  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      seconds_ = work_();
    } catch (const c10::Error& e) {
      SetError(op_ + ": " + e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(op_ + ": " + e.what());
    } catch (...) {
      SetError(op_ + ": unknown native exception");
    }
    work_ = nullptr;
  }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), seconds_)); }
  void OnError(const Napi::Error& error) override {
    error.Value().Set("op", Napi::String::New(Env(), op_));
    deferred_.Reject(error.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string op_;
  std::function<double()> work_;
  double seconds_ = 0;
};

Napi::Value Queue(Napi::Env env, const char* op, std::function<double()> work) {
  auto* worker = new PromiseWorker(env, op, std::move(work));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// distInit(rank, worldSize, host, port, timeoutMs, backend 'gloo'|'nccl', interface|null) -> Promise<seconds>
Napi::Value DistInit(Args& a) {
  int rank = static_cast<int>(a.i64(0));
  int world = static_cast<int>(a.i64(1));
  std::string host = a.str(2);
  int64_t port = a.i64(3);
  int64_t timeoutMs = a.i64(4);
  std::string backend = a.str(5);
  std::string interface = a.isNullish(6) ? "" : a.str(6);
  if (world < 1 || rank < 0 || rank >= world) throw ArgError("rank must be in [0, worldSize)");
  if (port < 1 || port > 65535) throw ArgError("port must be in [1, 65535]");
  if (timeoutMs < 1) throw ArgError("timeoutMs must be positive");
  if (backend != "gloo" && backend != "nccl") throw ArgError("backend must be 'gloo' or 'nccl'");
#ifndef LESIONSEG_NCCL
  if (backend == "nccl") throw ArgError("this build has no NCCL (the libtorch or the build lacks it): use gloo");
#endif
  {
    Registry& state = State();
    std::lock_guard<std::mutex> lock(state.mutex);
    if (state.current) throw std::runtime_error("the process group is already initialised");
    if (state.initialising) throw std::runtime_error("another distInit is still running");
    if (state.alive > 0) throw std::runtime_error("the previous process group is still shutting down (await distShutdown first)");
    state.initialising = true;
  }
  // Whatever happens from here on (a store that cannot connect, a Gloo device that cannot bind, a
  // peer that never joins), the half-built group is freed on the way out and init can be tried again.
  struct Finish {
    ~Finish() {
      std::lock_guard<std::mutex> lock(State().mutex);
      State().initialising = false;
    }
  };
  auto run = [=]() {
    Finish finish;
    auto start = std::chrono::steady_clock::now();
    auto timeout = std::chrono::milliseconds(timeoutMs);
    c10d::TCPStoreOptions storeOptions;
    storeOptions.port = static_cast<std::uint16_t>(port);
    storeOptions.isServer = rank == 0;
    storeOptions.numWorkers = static_cast<std::size_t>(world);
    storeOptions.waitWorkers = true;
    storeOptions.timeout = timeout;
    auto created = std::make_shared<Group>();
    created->store = c10::make_intrusive<c10d::TCPStore>(host, storeOptions);
    created->rank = rank;
    created->world = world;
    created->backend = backend;
    if (backend == "gloo") {
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      bool loopback = host == "127.0.0.1" || host == "localhost" || host == "::1";
      if (!interface.empty()) options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
      else if (loopback) options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      options->threads = 2;
      created->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(created->store, rank, world, options);
    } else {
#ifdef LESIONSEG_NCCL
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      created->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(created->store, rank, world, options);
#endif
    }
    // Every rank has joined once a first tiny collective completes (NCCL connects lazily, on the
    // rank's own device, at the first collective).
    if (backend == "gloo") {
      std::vector<at::Tensor> probe{at::zeros({1})};
      created->pg->allreduce(probe)->wait();
    }
    std::lock_guard<std::mutex> lock(State().mutex);
    State().current = std::move(created);
    return SecondsSince(start);
  };
  try {
    return Queue(a.env(), "distInit", run);
  } catch (...) {
    std::lock_guard<std::mutex> lock(State().mutex);
    State().initialising = false;
    throw;
  }
}

// distAllReduce(tensors, 'sum'|'max', bucketBytes) -> Promise<seconds>; the tensors are updated in place.
Napi::Value DistAllReduce(Args& a) {
  std::vector<at::Tensor> tensors = a.tensors(0);
  c10d::ReduceOp op = ParseReduceOp(a.str(1));
  int64_t bucketBytes = a.i64(2);
  std::shared_ptr<Group> g = Current();
  return Queue(a.env(), "distAllReduce", [g, tensors, op, bucketBytes]() mutable {
    auto start = std::chrono::steady_clock::now();
    RunBucketed(*g, tensors, Kind::kAllReduce, op, 0, bucketBytes);
    return SecondsSince(start);
  });
}

// distBroadcast(tensors, root, bucketBytes) -> Promise<seconds>; every rank's tensors become root's.
Napi::Value DistBroadcast(Args& a) {
  std::vector<at::Tensor> tensors = a.tensors(0);
  int root = static_cast<int>(a.i64(1));
  int64_t bucketBytes = a.i64(2);
  std::shared_ptr<Group> g = Current();
  if (root < 0 || root >= g->world) throw ArgError("root must be a rank");
  return Queue(a.env(), "distBroadcast", [g, tensors, root, bucketBytes]() mutable {
    auto start = std::chrono::steady_clock::now();
    RunBucketed(*g, tensors, Kind::kBroadcast, c10d::ReduceOp::SUM, root, bucketBytes);
    return SecondsSince(start);
  });
}

// distAllReduceSync(tensor, op) -> the reduced copy. Blocks the calling thread: only for the few
// numbers a loss needs in the middle of a forward pass (batch-Dice sums, voxel counts).
Napi::Value DistAllReduceSync(Args& a) {
  at::Tensor copy = a.tensor(0).detach().clone().contiguous();
  c10d::ReduceOp op = ParseReduceOp(a.str(1));
  std::shared_ptr<Group> g = Current();
  std::vector<at::Tensor> one{copy};
  c10d::AllreduceOptions options;
  options.reduceOp = op;
  g->pg->allreduce(one, options)->wait();
  return a.ret(copy);
}

Napi::Value DistStoreSet(Args& a) {
  std::string key = a.str(0);
  std::string value = a.str(1);
  std::shared_ptr<Group> g = Current();
  g->store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
  return a.env().Undefined();
}

// The value of `key`, or null while no rank has set it (never waits).
Napi::Value DistStoreTryGet(Args& a) {
  std::string key = a.str(0);
  std::shared_ptr<Group> g = Current();
  if (!g->store->check({key})) return a.env().Null();
  std::vector<uint8_t> value = g->store->get(key);
  return Napi::String::New(a.env(), std::string(value.begin(), value.end()));
}

// distShutdown() -> Promise<seconds>. Ends the group at once for new operations (they are refused),
// lets every collective already queued finish (or fail, when a peer is gone: at most the group's
// timeout), then frees the group (Gloo's threads joined, rank 0's store closed, its port free
// again) and resolves; a later distInit may then start a new group. Without a group it resolves
// at once (after any earlier shutdown still under way).
Napi::Value DistShutdown(Args& a) {
  std::shared_ptr<Group> old;
  {
    std::lock_guard<std::mutex> lock(State().mutex);
    if (State().initialising) throw std::runtime_error("distInit is still running: await it before distShutdown");
    old = std::move(State().current);
    State().current = nullptr;
  }
  return Queue(a.env(), "distShutdown", [old]() mutable {
    auto start = std::chrono::steady_clock::now();
    old.reset();
    std::unique_lock<std::mutex> lock(State().mutex);
    State().destroyed.wait(lock, [] { return State().alive == 0; });
    return SecondsSince(start);
  });
}

Napi::Value DistInfo(Args& a) {
  Napi::Object info = Napi::Object::New(a.env());
  info.Set("available", Napi::Boolean::New(a.env(), true));
  info.Set("reason", Napi::String::New(a.env(), LESIONSEG_DISTRIBUTED_REASON));
#ifdef LESIONSEG_NCCL
  info.Set("nccl", Napi::Boolean::New(a.env(), true));
#else
  info.Set("nccl", Napi::Boolean::New(a.env(), false));
#endif
  bool initialized = false;
  {
    std::lock_guard<std::mutex> lock(State().mutex);
    initialized = State().current != nullptr;
  }
  info.Set("initialized", Napi::Boolean::New(a.env(), initialized));
  return info;
}

#else  // no distributed support in this build

[[noreturn]] void Unavailable(const char* op) {
  throw std::runtime_error(std::string(op) + ": distributed training is not available: " LESIONSEG_DISTRIBUTED_REASON);
}
Napi::Value DistInit(Args&) { Unavailable("distInit"); }
Napi::Value DistAllReduce(Args&) { Unavailable("distAllReduce"); }
Napi::Value DistBroadcast(Args&) { Unavailable("distBroadcast"); }
Napi::Value DistAllReduceSync(Args&) { Unavailable("distAllReduceSync"); }
Napi::Value DistStoreSet(Args&) { Unavailable("distStoreSet"); }
Napi::Value DistStoreTryGet(Args&) { Unavailable("distStoreTryGet"); }
Napi::Value DistShutdown(Args& a) {
  auto deferred = Napi::Promise::Deferred::New(a.env());
  deferred.Resolve(Napi::Number::New(a.env(), 0));
  return deferred.Promise();
}
Napi::Value DistInfo(Args& a) {
  Napi::Object info = Napi::Object::New(a.env());
  info.Set("available", Napi::Boolean::New(a.env(), false));
  info.Set("reason", Napi::String::New(a.env(), LESIONSEG_DISTRIBUTED_REASON));
  info.Set("nccl", Napi::Boolean::New(a.env(), false));
  info.Set("initialized", Napi::Boolean::New(a.env(), false));
  return info;
}

#endif

// setParentDeathSignal(expectedParentPid) -> whether the parent is still that process. On Linux a
// rank started by `--nproc` asks for SIGKILL when its launcher dies (also by SIGKILL), so no rank
// outlives it; elsewhere it only reports.
Napi::Value SetParentDeathSignal(Args& a) {
  int64_t expected = a.i64(0);
#ifdef __linux__
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return Napi::Boolean::New(a.env(), false);
  return Napi::Boolean::New(a.env(), static_cast<int64_t>(getppid()) == expected);
#else
  return Napi::Boolean::New(a.env(), false);
#endif
}

}  // namespace

const std::vector<OpDef>& DistributedOps() {
  static const std::vector<OpDef> ops = {
      {"distInfo", 0, 0, DistInfo},
      {"distInit", 7, 7, DistInit},
      {"distAllReduce", 3, 3, DistAllReduce},
      {"distBroadcast", 3, 3, DistBroadcast},
      {"distAllReduceSync", 2, 2, DistAllReduceSync},
      {"distStoreSet", 2, 2, DistStoreSet},
      {"distStoreTryGet", 1, 1, DistStoreTryGet},
      {"distShutdown", 0, 0, DistShutdown},
      {"setParentDeathSignal", 1, 1, SetParentDeathSignal},
  };
  return ops;
}

}  // namespace ls
