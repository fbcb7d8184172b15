//===- runtime/Model.cpp - Tensor and kernel descriptions -----------------===//
//
// The out-of-line parts of runtime/Model.h: names for roles, element counts
// and printable shapes, and lookup of a kernel's buffers by name.
//
//===----------------------------------------------------------------------===//
#include "runtime/Model.h"

#include <fmt/format.h>
#include <fmt/ranges.h> // fmt::join lives here from fmt 10 on

namespace gradc::rt {

const char *roleName(Role role) {
  switch (role) {
  case Role::Input:
    return "input";
  case Role::Target:
    return "target";
  case Role::Param:
    return "param";
  case Role::State:
    return "state";
  case Role::Output:
    return "output";
  }
  return "unknown";
}

int64_t TensorSpec::numel() const {
  // A scalar has no dims and one element.
  int64_t count = 1;
  for (int64_t dim : dims)
    count *= dim;
  return count;
}

std::string TensorSpec::shapeStr() const { return fmt::format("[{}]", fmt::join(dims, ",")); }

int KernelSpec::find(const std::string &name) const {
  for (size_t i = 0; i < buffers.size(); ++i)
    if (buffers[i].name == name)
      return static_cast<int>(i);
  return -1;
}

} // namespace gradc::rt
