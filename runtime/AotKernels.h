//===- runtime/AotKernels.h - KernelSpecs from an AOT descriptor -*- C++ -*-===//
//
// The runtime's side of runtime/AotModel.h: the constant descriptor that
// `gradc build` writes into a model's object file, read back as the
// KernelSpecs the trainer and the TensorStore take, checked on the way
// (ABI version, roles, ranks, names), so a damaged or mismatched object is
// an error message rather than a kernel reading past its buffers.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/AotModel.h"
#include "runtime/Model.h"

#include <string>
#include <vector>

namespace gradc::rt {

/// Every kernel of `model`, in descriptor order.  Returns false and sets
/// `error` when the descriptor is not one this runtime can read.
bool aotKernelSpecs(const gradc_aot_model &model, std::vector<KernelSpec> &kernels,
                    std::string &error);

/// The kernel called `name` (with batch `batch`, when batch >= 0), or null.
const KernelSpec *findKernel(const std::vector<KernelSpec> &kernels, const std::string &name,
                             int64_t batch = -1);

} // namespace gradc::rt
