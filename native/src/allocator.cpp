// A block cache in front of libtorch's CPU allocator. libtorch allocates every CPU tensor with
// plain malloc; an activation of a U-Net window is tens of MB, above glibc's mmap threshold, so
// each one is a fresh mmap whose pages fault in (and are zeroed) on first touch, and is unmapped
// again when the tensor dies: a sliding window or a training loop pays that for every tensor of
// every step. Here blocks of 1 MiB and more are mapped once and kept when their tensor dies, for
// the next request of the same size class (a window or a step asks for the same sizes every
// time), up to a bound on idle bytes; smaller ones go to the default allocator. Idle blocks count
// in the process's RSS, so whoever changes the sizes it asks for empties the cache (the sliding
// window does when its batch size changes and when it is done: emptyCpuCache). Measured with 10
// forward passes of the cpu preset's U-Net (2 windows of 24x112x96 per batch, 2 threads, against
// LESIONSEG_CPU_BLOCK_CACHE=0): minor faults per forward 74,949 -> 20 (fp32) and 12,043 -> 97
// (bf16), seconds per window 0.45 -> 0.36 and 0.235 -> 0.184, peak RSS 847 -> 679 MiB and
// 740 -> 498 MiB. (Unmapping surplus blocks to hold RSS nearer the live peak was tried: the
// blocks were mapped again every window, 175,000 faults per forward.)
// LESIONSEG_CPU_BLOCK_CACHE=0 leaves libtorch's allocator alone; LESIONSEG_CPU_BLOCK_CACHE_MIB sets
// the idle bound (default 2048).
#include "common.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <unordered_map>

namespace ls {
namespace {

constexpr size_t kCachedMinBytes = size_t(1) << 20;
constexpr size_t kGranuleBytes = size_t(64) << 10;

class BlockCache final : public c10::Allocator {
 public:
  BlockCache(c10::Allocator* fallback, size_t idleLimit) : fallback_(fallback), idleLimit_(idleLimit) {}

  c10::DataPtr allocate(size_t bytes) const override {
    if (bytes < kCachedMinBytes) return fallback_->allocate(bytes);
    const size_t size = SizeClass(bytes);
    void* block = Take(size);
    if (block == nullptr) {
      block = Map(size);
      if (block == nullptr) {
        Empty();
        block = Map(size);
      }
      TORCH_CHECK(block != nullptr, "lesionseg: out of memory: cannot map ", size, " bytes for a CPU tensor");
      std::lock_guard<std::mutex> lock(mutex_);
      live_[block] = size;
    }
    return {block, block, &Release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &Release; }

  /** Unmap every idle block; returns the bytes released. */
  size_t Empty() const {
    std::map<uint64_t, std::pair<size_t, void*>> idle;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      idle.swap(byAge_);
      idle_.clear();
      idleBytes_ = 0;
    }
    size_t released = 0;
    for (const auto& [age, entry] : idle) {
      munmap(entry.second, entry.first);
      released += entry.first;
    }
    return released;
  }

  size_t IdleBytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return idleBytes_;
  }

  static BlockCache* instance;

 private:
  // Sizes rounded up to 8 classes per power of two (at most 1/8 more), so that tensors of nearly
  // the same size (one window's maps at different stages) share blocks.
  static size_t SizeClass(size_t bytes) {
    size_t octave = kCachedMinBytes;
    while (octave * 2 <= bytes) octave *= 2;
    const size_t step = std::max(kGranuleBytes, octave / 8);
    return (bytes + step - 1) / step * step;
  }

  static void* Map(size_t size) {
    void* block = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return block == MAP_FAILED ? nullptr : block;
  }

  void* Take(size_t size) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = idle_.find(size);
    if (found == idle_.end()) return nullptr;
    const uint64_t age = found->second;
    void* block = byAge_.at(age).second;
    idle_.erase(found);
    byAge_.erase(age);
    idleBytes_ -= size;
    live_[block] = size;
    return block;
  }

  // Every block this allocator or its fallback handed out comes back here.
  static void Release(void* block) {
    BlockCache* self = instance;
    size_t size = 0;
    bool unmap = false;
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      auto found = self->live_.find(block);
      if (found == self->live_.end()) {
        // One of the fallback's (small) blocks.
        c10::free_cpu(block);
        return;
      }
      size = found->second;
      self->live_.erase(found);
      if (self->idleBytes_ + size <= self->idleLimit_) {
        const uint64_t age = self->nextAge_++;
        self->idle_.emplace(size, age);
        self->byAge_.emplace(age, std::make_pair(size, block));
        self->idleBytes_ += size;
      } else {
        unmap = true;
      }
    }
    if (unmap) munmap(block, size);
  }

  c10::Allocator* fallback_;
  const size_t idleLimit_;
  mutable std::mutex mutex_;
  // Idle blocks by size (-> their age) and by age (-> size, address); ages increase with each release.
  mutable std::multimap<size_t, uint64_t> idle_;
  mutable std::map<uint64_t, std::pair<size_t, void*>> byAge_;
  mutable std::unordered_map<void*, size_t> live_;
  mutable size_t idleBytes_ = 0;
  mutable uint64_t nextAge_ = 0;
};

BlockCache* BlockCache::instance = nullptr;

size_t IdleLimitFromEnv() {
  const char* text = std::getenv("LESIONSEG_CPU_BLOCK_CACHE_MIB");
  if (text == nullptr || *text == '\0') return size_t(2048) << 20;
  char* end = nullptr;
  const unsigned long long mib = std::strtoull(text, &end, 10);
  return (end != nullptr && *end == '\0') ? size_t(mib) << 20 : size_t(2048) << 20;
}

// emptyCpuCache() -> bytes released (0 when the cache is off)
Napi::Value EmptyCpuCache(Args& a) {
  const size_t released = BlockCache::instance == nullptr ? 0 : BlockCache::instance->Empty();
  return Napi::Number::New(a.env(), static_cast<double>(released));
}

}  // namespace

void InstallCpuBlockCache() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* setting = std::getenv("LESIONSEG_CPU_BLOCK_CACHE");
    if (setting != nullptr && std::string(setting) == "0") return;
    // Never freed: tensors may outlive any scope, up to the process's exit.
    BlockCache::instance = new BlockCache(c10::GetDefaultCPUAllocator(), IdleLimitFromEnv());
    c10::SetCPUAllocator(BlockCache::instance, /*priority=*/1);
  });
}

const std::vector<OpDef>& AllocatorOps() {
  static const std::vector<OpDef> ops = {
      {"emptyCpuCache", 0, 0, EmptyCpuCache},
  };
  return ops;
}

}  // namespace ls
