// An arena in front of libtorch's CPU allocator. libtorch allocates every CPU tensor with plain
// malloc; an activation of a U-Net window is tens of MB, above glibc's mmap threshold, so each one
// is a fresh mmap whose pages fault in (and are zeroed) on first touch, and is unmapped again when
// the tensor dies: a sliding window or a training loop pays that for every tensor of every step.
//
// Here every block of 1 MiB and more comes from one contiguous reservation of address space,
// first fit, with a freed block merged into its free neighbours; pages stay mapped when their
// tensor dies, so the next window or step (which asks for the same sizes) touches pages that are
// already there. Because neighbours merge, the bytes kept are close to the live peak: one forward
// pass of the cpu preset's U-Net (fp32, 2 windows of 32x96x96) holds at most 256 MiB live; blocks
// kept per size class (this file's first design, 8 classes per octave) needed 412 MiB mapped, this
// arena needs 276 (simulated on the recorded allocation trace, then measured). Smaller blocks go to
// the default allocator, and so does everything once the reservation is used up.
//
// Idle pages count in the process's RSS, so whoever changes the sizes it asks for empties the cache
// (the sliding window does when its batch size changes and when it is done: emptyCpuCache), which
// hands the free pages back to the kernel (madvise DONTNEED) and keeps the address space.
// LESIONSEG_CPU_BLOCK_CACHE=0 leaves libtorch's allocator alone; LESIONSEG_CPU_BLOCK_CACHE_MIB sets
// the bound on idle bytes above which they are handed back at once (default 2048).
#include "common.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <unordered_map>

// Under AddressSanitizer (scripts/asan.sh) the arena tells ASan which of its bytes a tensor owns:
// a block is addressable from its allocation to its release, and only up to the bytes asked for
// (not the granule rounding), so a use after free or an overrun of an arena block is reported as
// it would be for malloc'd memory. Without ASan these are no-ops.
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define LS_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define LS_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define LS_POISON(p, n) ((void)(p), (void)(n))
#define LS_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace ls {
namespace {

constexpr size_t kCachedMinBytes = size_t(1) << 20;
// Block sizes and offsets are multiples of this (a multiple of every page size in use).
constexpr size_t kGranuleBytes = size_t(64) << 10;
// The reservation is made readable and writable in steps of this much.
constexpr size_t kCommitStepBytes = size_t(64) << 20;

size_t RoundUp(size_t bytes, size_t step) { return (bytes + step - 1) / step * step; }

class Arena final : public c10::Allocator {
 public:
  struct Stats {
    size_t live, idle, mapped, peakLive, peakMapped;
  };

  Arena(c10::Allocator* fallback, char* base, size_t reserved, size_t idleLimit)
      : fallback_(fallback), base_(base), reserved_(reserved), idleLimit_(idleLimit) {}

  c10::DataPtr allocate(size_t bytes) const override {
    if (bytes < kCachedMinBytes) return fallback_->allocate(bytes);
    const size_t size = RoundUp(bytes, kGranuleBytes);
    void* block = Take(size);
    if (block == nullptr) return fallback_->allocate(bytes);
    LS_UNPOISON(block, bytes);
    return {block, block, &Release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &Release; }

  /** Hand every idle page back to the kernel (the address space stays reserved); returns the bytes. */
  size_t Empty() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return EmptyLocked();
  }

  /** The bytes now and at their peaks since the last call with reset. */
  Stats Read(bool reset) const {
    std::lock_guard<std::mutex> lock(mutex_);
    Stats stats{liveBytes_, IdleLocked(), highWater_, peakLive_, peakHighWater_};
    if (reset) {
      peakLive_ = liveBytes_;
      peakHighWater_ = highWater_;
    }
    return stats;
  }

  static Arena* instance;

 private:
  bool Owns(const void* block) const {
    const char* p = static_cast<const char*>(block);
    return p >= base_ && p < base_ + reserved_;
  }

  // Free bytes that may still be resident: freed since the last Empty, up to what is free now.
  size_t IdleLocked() const { return std::min(dirtyIdle_, freeBytes_ + (highWater_ - top_)); }

  void* Take(size_t size) const {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t offset = 0;
    // First fit: the lowest free block that is large enough, split if larger.
    auto fit = std::find_if(free_.begin(), free_.end(), [size](const auto& entry) { return entry.second >= size; });
    if (fit != free_.end()) {
      offset = fit->first;
      const size_t rest = fit->second - size;
      free_.erase(fit);
      if (rest > 0) free_.emplace(offset + size, rest);
      freeBytes_ -= size;
    } else {
      if (top_ + size > reserved_) return nullptr;
      if (top_ + size > committed_) {
        const size_t grow = std::min(RoundUp(top_ + size, kCommitStepBytes), reserved_) - committed_;
        if (mprotect(base_ + committed_, grow, PROT_READ | PROT_WRITE) != 0) return nullptr;
        LS_POISON(base_ + committed_, grow);
        committed_ += grow;
      }
      offset = top_;
      top_ += size;
      highWater_ = std::max(highWater_, top_);
    }
    live_.emplace(offset, size);
    liveBytes_ += size;
    peakLive_ = std::max(peakLive_, liveBytes_);
    peakHighWater_ = std::max(peakHighWater_, highWater_);
    return base_ + offset;
  }

  // Every block this allocator or its fallback handed out comes back here.
  static void Release(void* block) {
    Arena* self = instance;
    if (!self->Owns(block)) {
      c10::free_cpu(block);
      return;
    }
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->Give(static_cast<size_t>(static_cast<char*>(block) - self->base_));
    if (self->IdleLocked() > self->idleLimit_) self->EmptyLocked();
  }

  // Under mutex_: the block at `offset` is free again; merge it with free neighbours, or into the top.
  void Give(size_t offset) const {
    auto found = live_.find(offset);
    TORCH_CHECK(found != live_.end(), "lesionseg: the CPU arena was given back a block it does not hold");
    size_t size = found->second;
    LS_POISON(base_ + offset, size);
    live_.erase(found);
    liveBytes_ -= size;
    dirtyIdle_ += size;
    auto next = free_.lower_bound(offset);
    if (next != free_.begin()) {
      auto previous = std::prev(next);
      if (previous->first + previous->second == offset) {
        offset = previous->first;
        size += previous->second;
        freeBytes_ -= previous->second;
        free_.erase(previous);
      }
    }
    if (next != free_.end() && next->first == offset + size) {
      size += next->second;
      freeBytes_ -= next->second;
      free_.erase(next);
    }
    if (offset + size == top_) {
      top_ = offset;
    } else {
      free_.emplace(offset, size);
      freeBytes_ += size;
    }
  }

  size_t EmptyLocked() const {
    size_t released = 0;
    for (const auto& [offset, size] : free_) {
      madvise(base_ + offset, size, MADV_DONTNEED);
      released += size;
    }
    if (highWater_ > top_) {
      madvise(base_ + top_, highWater_ - top_, MADV_DONTNEED);
      released += highWater_ - top_;
      highWater_ = top_;
    }
    dirtyIdle_ = 0;
    return released;
  }

  c10::Allocator* fallback_;
  char* const base_;
  const size_t reserved_;
  const size_t idleLimit_;
  mutable std::mutex mutex_;
  // Free blocks below top_, by offset (-> size), never adjacent to each other or to top_.
  mutable std::map<size_t, size_t> free_;
  // Blocks held by tensors, by offset (-> size).
  mutable std::unordered_map<size_t, size_t> live_;
  // Offsets: everything from top_ up is free; pages below highWater_ may be resident; committed_ is writable.
  mutable size_t top_ = 0, highWater_ = 0, committed_ = 0;
  mutable size_t liveBytes_ = 0, freeBytes_ = 0, dirtyIdle_ = 0, peakLive_ = 0, peakHighWater_ = 0;
};

Arena* Arena::instance = nullptr;

size_t IdleLimitFromEnv() {
  const char* text = std::getenv("LESIONSEG_CPU_BLOCK_CACHE_MIB");
  if (text == nullptr || *text == '\0') return size_t(2048) << 20;
  char* end = nullptr;
  const unsigned long long mib = std::strtoull(text, &end, 10);
  return (end != nullptr && *end == '\0') ? size_t(mib) << 20 : size_t(2048) << 20;
}

// Address space for the arena: twice the machine's memory (at least 8 GiB, at most 4 TiB), reserved
// inaccessible so that it costs no memory and no commit charge until used; smaller where refused.
std::pair<char*, size_t> Reserve() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long pageBytes = sysconf(_SC_PAGESIZE);
  size_t want = pages > 0 && pageBytes > 0 ? size_t(pages) * size_t(pageBytes) * 2 : size_t(64) << 30;
  want = RoundUp(std::clamp(want, size_t(8) << 30, size_t(4) << 40), kCommitStepBytes);
  for (size_t size = want; size >= kCommitStepBytes * 16; size /= 2) {
    void* base = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base != MAP_FAILED) return {static_cast<char*>(base), size};
  }
  return {nullptr, 0};
}

// emptyCpuCache() -> bytes handed back (0 when the arena is off)
Napi::Value EmptyCpuCache(Args& a) {
  const size_t released = Arena::instance == nullptr ? 0 : Arena::instance->Empty();
  return Napi::Number::New(a.env(), static_cast<double>(released));
}

// cpuCacheStats(reset) -> {liveBytes, idleBytes, mappedBytes, peakLiveBytes, peakMappedBytes} of
// the arena (null when it is off); reset starts the peaks again from now. mappedBytes is the
// arena's extent that may be resident (its high-water mark since the last emptyCpuCache).
Napi::Value CpuCacheStats(Args& a) {
  if (Arena::instance == nullptr) return a.env().Null();
  const auto stats = Arena::instance->Read(a.boolean(0));
  Napi::Object out = Napi::Object::New(a.env());
  out.Set("liveBytes", static_cast<double>(stats.live));
  out.Set("idleBytes", static_cast<double>(stats.idle));
  out.Set("mappedBytes", static_cast<double>(stats.mapped));
  out.Set("peakLiveBytes", static_cast<double>(stats.peakLive));
  out.Set("peakMappedBytes", static_cast<double>(stats.peakMapped));
  return out;
}

}  // namespace

void InstallCpuBlockCache() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* setting = std::getenv("LESIONSEG_CPU_BLOCK_CACHE");
    if (setting != nullptr && std::string(setting) == "0") return;
    const auto [base, reserved] = Reserve();
    if (base == nullptr) return;
    // Never freed: tensors may outlive any scope, up to the process's exit.
    Arena::instance = new Arena(c10::GetDefaultCPUAllocator(), base, reserved, IdleLimitFromEnv());
    c10::SetCPUAllocator(Arena::instance, /*priority=*/1);
  });
}

const std::vector<OpDef>& AllocatorOps() {
  static const std::vector<OpDef> ops = {
      {"emptyCpuCache", 0, 0, EmptyCpuCache},
      {"cpuCacheStats", 1, 1, CpuCacheStats},
  };
  return ops;
}

}  // namespace ls
