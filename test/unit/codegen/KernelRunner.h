//===- test/unit/codegen/KernelRunner.h - Call a JIT kernel in a test -*- C++ -*-===//
//
// Owns the buffers, arena and hyperparameters of one compiled kernel, binds
// leaf values the way the reference interpreter takes them, and reads
// results back as doubles for comparison.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/Codegen.h"
#include "ir/Diagnostics.h"
#include "ir/Graph.h"
#include "ir/IRParser.h"
#include "ir/Interpreter.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace gradc::test {

/// 64-byte aligned storage of 4-byte words (f32 or i32), zero-filled.
class WordBuffer {
public:
  explicit WordBuffer(int64_t words = 0) : size_(words) {
    size_t bytes = (static_cast<size_t>(std::max<int64_t>(words, 1)) * 4 + 63) / 64 * 64;
    data_.reset(static_cast<uint32_t *>(std::aligned_alloc(64, bytes)));
    std::memset(data_.get(), 0, bytes);
  }
  uint32_t *data() const { return data_.get(); }
  float *floats() const { return reinterpret_cast<float *>(data_.get()); }
  int64_t size() const { return size_; }

private:
  struct Free {
    void operator()(uint32_t *p) const { std::free(p); }
  };
  std::unique_ptr<uint32_t, Free> data_;
  int64_t size_ = 0;
};

class KernelRunner {
public:
  KernelRunner(const ir::Graph &graph, rt::KernelSpec spec)
      : graph_(graph), spec_(std::move(spec)), arena_((spec_.arenaBytes + 3) / 4),
        hypers_(spec_.hypers.size(), 0.0f) {
    for (const rt::TensorSpec &tensor : spec_.buffers)
      buffers_.emplace_back(tensor.numel());
    for (const WordBuffer &buffer : buffers_)
      pointers_.push_back(buffer.data());
  }

  const rt::KernelSpec &spec() const { return spec_; }

  /// Gives a leaf its value (rounded to f32, or stored as i32 for labels).
  void bind(const ir::Node *leaf, const ir::Tensor &value) {
    if (leaf->is(ir::OpKind::Hyper)) {
      int index = 0;
      for (const ir::Node *hyper : graph_.nodesOfKind(ir::OpKind::Hyper)) {
        if (hyper == leaf)
          hypers_[index] = static_cast<float>(value.data[0]);
        ++index;
      }
      return;
    }
    int slot = spec_.find(leaf->name);
    const WordBuffer &buffer = buffers_.at(slot);
    for (size_t i = 0; i < value.data.size(); ++i) {
      if (spec_.buffers[slot].isInt) {
        buffer.data()[i] = static_cast<uint32_t>(static_cast<int32_t>(value.data[i]));
      } else {
        buffer.floats()[i] = static_cast<float>(value.data[i]);
      }
    }
  }

  /// Runs the kernel once; `pool` is a gradc::rt::ThreadPool or null (serial).
  void run(uint64_t seed = 0, uint64_t step = 0, void *pool = nullptr) {
    gradc_step_context ctx{};
    ctx.buffers = pointers_.data();
    ctx.arena = reinterpret_cast<char *>(arena_.data());
    ctx.seed = seed;
    ctx.step = step;
    ctx.hypers = hypers_.data();
    ctx.pool = pool;
    spec_.fn(&ctx);
  }

  /// The f32 contents of the buffer called `name` (a leaf or an output key).
  std::vector<float> floats(const std::string &name) const {
    int slot = spec_.find(name);
    const WordBuffer &buffer = buffers_.at(slot);
    return std::vector<float>(buffer.floats(), buffer.floats() + buffer.size());
  }
  /// The raw bits of the buffer called `name`.
  std::vector<uint32_t> bits(const std::string &name) const {
    int slot = spec_.find(name);
    const WordBuffer &buffer = buffers_.at(slot);
    return std::vector<uint32_t>(buffer.data(), buffer.data() + buffer.size());
  }
  /// Output buffer `key` (outputs come after the leaves in the signature).
  std::vector<float> output(const std::string &key) const {
    for (size_t i = 0; i < spec_.buffers.size(); ++i)
      if (spec_.buffers[i].role == rt::Role::Output && spec_.buffers[i].name == key)
        return std::vector<float>(buffers_[i].floats(), buffers_[i].floats() + buffers_[i].size());
    return {};
  }
  float *arena() const { return arena_.floats(); }

private:
  const ir::Graph &graph_;
  rt::KernelSpec spec_;
  std::vector<WordBuffer> buffers_;
  std::vector<void *> pointers_;
  WordBuffer arena_;
  std::vector<float> hypers_;
};

/// One JIT for the whole test binary (creating an LLJIT costs milliseconds).
inline codegen::Jit &sharedJit() {
  static std::unique_ptr<codegen::Jit> jit = [] {
    std::string error;
    auto created = codegen::Jit::create(codegen::CodegenOptions{}, error);
    if (!created)
      throw std::runtime_error("cannot create the JIT: " + error);
    return created;
  }();
  return *jit;
}

/// The graph in IR text `text` (named `name` in messages, kept in
/// `sources`, which must outlive the graph), or null and `errors`.
inline std::unique_ptr<ir::Graph> parseGraphText(SourceManager &sources, const char *name,
                                                 const char *text, std::string &errors) {
  const std::string *file = sources.add(name, text);
  std::ostringstream messages;
  Diagnostics diags(&sources, messages);
  std::unique_ptr<ir::Graph> graph = ir::parseGraph(sources.text(file), file, diags);
  errors = messages.str();
  return graph;
}

} // namespace gradc::test
