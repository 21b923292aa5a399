// An opt-in op profile for benchmark scripts (bench/train-step-profile.ts): libtorch's legacy
// autograd profiler (RECORD_FUNCTION ranges of every ATen op and autograd node, CPU time only)
// between profilerStart() and profilerStop(), aggregated per op name. Nothing records while it is
// off; no other code path calls it.
#include "common.h"

#include <map>
#include <torch/csrc/autograd/profiler_legacy.h>

namespace ls {
namespace {

namespace prof = torch::autograd::profiler;

// Whether the running profile keys its rows by the enclosing op and the input shapes too.
bool detailed = false;

// profilerStart(detailed): detailed rows are "grandparent > parent > name [shapes]".
Napi::Value ProfilerStart(Args& a) {
  detailed = a.boolean(0);
  prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU, /*report_input_shapes=*/detailed));
  return a.env().Undefined();
}

std::string Key(const prof::LegacyEvent& e, const prof::LegacyEvent* parent, const prof::LegacyEvent* grandparent) {
  if (!detailed) return e.name();
  std::string key = std::string(grandparent ? grandparent->name() : "") + " > " + std::string(parent ? parent->name() : "") + " > " + e.name() + " [";
  for (const auto& shape : e.shapes()) {
    key += "(";
    for (size_t i = 0; i < shape.size(); i++) key += (i ? "," : "") + std::to_string(shape[i]);
    key += ")";
  }
  return key + "]";
}

struct Totals {
  int64_t calls = 0;
  double totalUs = 0;
  double selfUs = 0;
};

// profilerStop() -> [[name, calls, totalUs, selfUs], ...]: per op name, the number of ranges, their
// summed duration and that duration less the ranges nested in them on the same thread (self time).
Napi::Value ProfilerStop(Args& a) {
  const prof::thread_event_lists lists = prof::disableProfilerLegacy();
  std::map<std::string, Totals> totals;
  for (const auto& events : lists) {
    // The open ranges of this thread: the push event and the time of its finished children.
    std::vector<std::pair<const prof::LegacyEvent*, double>> open;
    for (const auto& e : events) {
      if (e.kind() == prof::EventKind::PushRange) {
        open.emplace_back(&e, 0.0);
      } else if (e.kind() == prof::EventKind::PopRange && !open.empty()) {
        const auto [start, children] = open.back();
        open.pop_back();
        const double us = start->cpuElapsedUs(e);
        Totals& t = totals[Key(*start, open.empty() ? nullptr : open.back().first, open.size() < 2 ? nullptr : open[open.size() - 2].first)];
        t.calls++;
        t.totalUs += us;
        t.selfUs += us - children;
        if (!open.empty()) open.back().second += us;
      }
    }
  }
  Napi::Env env = a.env();
  Napi::Array out = Napi::Array::New(env, totals.size());
  uint32_t i = 0;
  for (const auto& [name, t] : totals) {
    Napi::Array row = Napi::Array::New(env, 4);
    row.Set(0u, Napi::String::New(env, name));
    row.Set(1u, Napi::Number::New(env, static_cast<double>(t.calls)));
    row.Set(2u, Napi::Number::New(env, t.totalUs));
    row.Set(3u, Napi::Number::New(env, t.selfUs));
    out.Set(i++, row);
  }
  return out;
}

}  // namespace

const std::vector<OpDef>& ProfilerOps() {
  static const std::vector<OpDef> ops = {
      {"profilerStart", 1, 1, ProfilerStart},
      {"profilerStop", 0, 0, ProfilerStop},
  };
  return ops;
}

}  // namespace ls
