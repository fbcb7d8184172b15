//===- runtime/AotKernels.cpp - KernelSpecs from an AOT descriptor --------===//
#include "runtime/AotKernels.h"

#include <fmt/format.h>

namespace gradc::rt {

bool aotKernelSpecs(const gradc_aot_model &model, std::vector<KernelSpec> &kernels,
                    std::string &error) {
  kernels.clear();
  if (model.abi_version != GRADC_AOT_ABI_VERSION) {
    error = fmt::format("model '{}' was built for descriptor version {}, this runtime reads "
                        "version {}; rebuild it with this gradc",
                        model.name ? model.name : "?", model.abi_version, GRADC_AOT_ABI_VERSION);
    return false;
  }
  for (uint32_t k = 0; k < model.num_kernels; ++k) {
    const gradc_aot_kernel &in = model.kernels[k];
    KernelSpec spec;
    spec.name = in.name ? in.name : "";
    spec.fn = in.fn;
    spec.arenaBytes = in.arena_bytes;
    spec.batch = in.batch;
    auto bad = [&](const std::string &what) {
      error = fmt::format("model '{}', kernel '{}': {}", model.name, spec.name, what);
      return false;
    };
    if (!in.fn || in.num_buffers < 0 || in.num_hypers < 0 || in.arena_bytes < 0 || in.batch < 0)
      return bad("malformed descriptor");
    for (int32_t i = 0; i < in.num_buffers; ++i) {
      const gradc_aot_tensor &t = in.buffers[i];
      if (!t.name || t.rank < 0 || t.role < GRADC_ROLE_INPUT || t.role > GRADC_ROLE_OUTPUT ||
          t.num_init_args < 0)
        return bad(fmt::format("malformed buffer {}", i));
      TensorSpec tensor;
      tensor.name = t.name;
      tensor.role = static_cast<Role>(t.role);
      tensor.isInt = t.is_int != 0;
      tensor.dims.assign(t.dims, t.dims + t.rank);
      tensor.init.kind = t.init_kind ? t.init_kind : "";
      tensor.init.args.assign(t.init_args, t.init_args + t.num_init_args);
      tensor.init.fanIn = t.fan_in;
      tensor.init.fanOut = t.fan_out;
      spec.buffers.push_back(std::move(tensor));
    }
    for (int32_t i = 0; i < in.num_hypers; ++i)
      spec.hypers.emplace_back(in.hypers[i] ? in.hypers[i] : "");
    kernels.push_back(std::move(spec));
  }
  return true;
}

const KernelSpec *findKernel(const std::vector<KernelSpec> &kernels, const std::string &name,
                             int64_t batch) {
  for (const KernelSpec &kernel : kernels)
    if (kernel.name == name && (batch < 0 || kernel.batch == batch))
      return &kernel;
  return nullptr;
}

} // namespace gradc::rt
