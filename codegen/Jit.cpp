//===- codegen/Jit.cpp - Kernels compiled in process with ORC LLJIT -------===//
//
// A thin wrapper in the manner of LLVM's BuildingAJIT chapter 1: an LLJIT
// for the host, the process's symbols (libc's memcpy, the runtime's
// gradc_parallel_for and gradc_dropout_mask) visible to generated code,
// and one JITDylib per call of addKernels so the same graph may be
// compiled twice under its own symbol.  Each kernel is lowered, optimised
// with the same pipeline as the printed IR and compiled to an object on
// its own thread; ORC then only links the objects.
//
//===----------------------------------------------------------------------===//
#include "codegen/Codegen.h"
#include "codegen/KernelLayout.h"
#include "codegen/Partition.h"
#include "codegen/Pipeline.h"
#include "ir/Graph.h"
#include "ir/Printer.h"
#include "runtime/Abi.h"

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/TargetParser/SubtargetFeature.h>

#include <llvm/ADT/StringExtras.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/Object/ObjectFile.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/Path.h>
#include <llvm/Support/Process.h>
#include <llvm/Support/SHA256.h>
#include <llvm/Support/raw_ostream.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <link.h>

namespace gradc::codegen {

using namespace llvm;

struct Jit::Impl {
  CodegenOptions options;
  std::unique_ptr<orc::LLJIT> jit;
  std::unique_ptr<TargetMachine> machine; ///< for the optimisation pipeline
  int kernels = 0;
  CompileTimes times;
};

Jit::Jit() : impl_(std::make_unique<Impl>()) {}
Jit::~Jit() = default;

/// The JITDylib through which generated code finds symbols of this process.
static Expected<orc::JITDylibSP> setUpProcessSymbols(orc::LLJIT &jit) {
  orc::JITDylib &dylib = jit.getExecutionSession().createBareJITDylib("<process symbols>");
  auto generator = orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
      jit.getDataLayout().getGlobalPrefix());
  if (!generator)
    return generator.takeError();
  dylib.addGenerator(std::move(*generator));
  // The runtime's C ABI by address too: an executable that links the
  // runtime statically does not export it for dlsym to find.
  orc::SymbolMap runtime;
  runtime[jit.mangleAndIntern("gradc_parallel_for")] = {
      orc::ExecutorAddr::fromPtr(&gradc_parallel_for),
      JITSymbolFlags::Exported | JITSymbolFlags::Callable};
  runtime[jit.mangleAndIntern("gradc_dropout_mask")] = {
      orc::ExecutorAddr::fromPtr(&gradc_dropout_mask),
      JITSymbolFlags::Exported | JITSymbolFlags::Callable};
  if (Error error = dylib.define(orc::absoluteSymbols(std::move(runtime))))
    return error;
  return orc::JITDylibSP(&dylib);
}

std::unique_ptr<Jit> Jit::create(const CodegenOptions &options, std::string &error) {
  if (!initializeLLVM(error))
    return nullptr;
  TargetChoice choice;
  if (!chooseTarget(options, choice, error))
    return nullptr;
  if (Triple(choice.triple).getArch() != Triple(sys::getProcessTriple()).getArch()) {
    error = "the JIT runs code on this machine, not on " + choice.triple;
    return nullptr;
  }
  orc::JITTargetMachineBuilder targetBuilder{Triple(choice.triple)};
  targetBuilder.setCPU(choice.cpu);
  SubtargetFeatures features(choice.features);
  targetBuilder.addFeatures(features.getFeatures());
  std::string machineError;
  auto machine = createTargetMachine(options, machineError);
  if (!machine) {
    error = machineError;
    return nullptr;
  }
  switch (options.optLevel) {
  case 0:
    targetBuilder.setCodeGenOptLevel(CodeGenOptLevel::None);
    break;
  case 1:
    targetBuilder.setCodeGenOptLevel(CodeGenOptLevel::Less);
    break;
  case 2:
    targetBuilder.setCodeGenOptLevel(CodeGenOptLevel::Default);
    break;
  default:
    targetBuilder.setCodeGenOptLevel(CodeGenOptLevel::Aggressive);
    break;
  }

  auto jit = orc::LLJITBuilder()
                 .setJITTargetMachineBuilder(std::move(targetBuilder))
                 .setProcessSymbolsJITDylibSetup(setUpProcessSymbols)
                 .create();
  if (!jit) {
    error = "cannot create the JIT: " + toString(jit.takeError());
    return nullptr;
  }
  std::unique_ptr<Jit> result(new Jit());
  result->impl_->options = options;
  result->impl_->jit = std::move(*jit);
  result->impl_->machine = std::move(machine);
  return result;
}

namespace {

using Clock = std::chrono::steady_clock;

double millisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

/// The parts a kernel that runs every step is cut into (codegen/
/// Partition.h): one per core of the machines gradc is built for, whatever
/// the thread count, so the objects do not depend on it.  Tail kernels,
/// compiled at -O0, take a fifth of the time and stay whole.
constexpr unsigned kPartsPerKernel = 2;

/// One part of a kernel taken from a graph to a relocatable object in
/// memory, on whichever thread runs it: its own LLVMContext and
/// TargetMachine, so kernels and parts compile in parallel.
struct KernelJob {
  const KernelRequest *request = nullptr;
  size_t requestIndex = 0;
  unsigned part = 0, parts = 1;
  KernelLayout layout;
  std::string symbol;
  std::vector<char> object;
  std::string error;
  CompileTimes times;
};

/// What identifies the code that lowers and compiles a kernel: the GNU
/// build ID of the object holding gradc's code generator and of the one
/// holding LLVM's (the executable and libLLVM.so, or one object when LLVM
/// is linked in), or, for an object built without one, its path, size and
/// modification time.  A rebuilt gradc or an upgraded LLVM so keys its
/// kernels afresh, whatever directory the caller keeps the cache in.
std::string buildIdentity() {
  struct Search {
    uintptr_t address = 0;
    bool found = false;
    std::string identity, path;
  };
  auto objectAt = [](const void *address) {
    Search search;
    search.address = reinterpret_cast<uintptr_t>(address);
    ::dl_iterate_phdr(
        [](dl_phdr_info *loaded, size_t, void *data) -> int {
          Search &search = *static_cast<Search *>(data);
          bool holds = false;
          for (int i = 0; i < loaded->dlpi_phnum; ++i) {
            const ElfW(Phdr) &header = loaded->dlpi_phdr[i];
            uintptr_t begin = loaded->dlpi_addr + header.p_vaddr;
            holds = holds || (header.p_type == PT_LOAD && search.address >= begin &&
                              search.address < begin + header.p_memsz);
          }
          if (!holds)
            return 0; // not this object: go on
          search.found = true;
          // The executable is listed without a name.
          search.path =
              loaded->dlpi_name && *loaded->dlpi_name ? loaded->dlpi_name : "/proc/self/exe";
          for (int i = 0; i < loaded->dlpi_phnum; ++i) {
            const ElfW(Phdr) &header = loaded->dlpi_phdr[i];
            if (header.p_type != PT_NOTE)
              continue;
            // Notes: a header, the name and the description, each padded
            // to the segment's alignment (4, or 8 for some); sizes are
            // checked against what is left before any pointer moves.
            const char *note = reinterpret_cast<const char *>(loaded->dlpi_addr + header.p_vaddr);
            const uint64_t align = header.p_align == 8 ? 8 : 4;
            uint64_t left = header.p_memsz;
            while (left >= sizeof(ElfW(Nhdr))) {
              const auto *nhdr = reinterpret_cast<const ElfW(Nhdr) *>(note);
              const uint64_t nameBytes = alignTo(nhdr->n_namesz, align);
              const uint64_t descBytes = alignTo(nhdr->n_descsz, align);
              if (nameBytes > left - sizeof(ElfW(Nhdr)) ||
                  descBytes > left - sizeof(ElfW(Nhdr)) - nameBytes)
                break; // malformed: no build ID from this segment
              const char *name = note + sizeof(ElfW(Nhdr));
              const char *desc = name + nameBytes;
              if (nhdr->n_type == NT_GNU_BUILD_ID && nhdr->n_namesz == 4 &&
                  std::memcmp(name, "GNU", 4) == 0) {
                search.identity = toHex(StringRef(desc, nhdr->n_descsz), /*LowerCase=*/true);
                return 1;
              }
              note = desc + descBytes;
              left -= sizeof(ElfW(Nhdr)) + nameBytes + descBytes;
            }
          }
          return 1; // found, without a build ID
        },
        &search);
    sys::fs::file_status status;
    if (search.found && search.identity.empty() && !sys::fs::status(search.path, status))
      search.identity = fmt::format("{} {} {}", search.path, status.getSize(),
                                    status.getLastModificationTime().time_since_epoch().count());
    return search.identity;
  };
  std::string gradc = objectAt(reinterpret_cast<const void *>(&buildKernelModule));
  std::string llvm = objectAt(reinterpret_cast<const void *>(&sys::getProcessTriple));
  if (gradc.empty() || llvm.empty())
    return ""; // unknown: no cache
  // LLVM's version as well: where the executable has a stub of its own
  // for sys::getProcessTriple, the second identity above is the
  // executable's, not libLLVM's.
  return (gradc == llvm ? gradc : gradc + " " + llvm) + " LLVM " LLVM_VERSION_STRING;
}

/// The cache file of one part of a kernel: SHA-256 of everything that
/// decides its object code.  That is the graph as text (without source
/// locations, which the code does not depend on), the kernel's name, the
/// part, the build of gradc and LLVM (buildIdentity: the lowering, the
/// partition and the pipelines are their code), target, CPU, features,
/// the code generator's level (the machine's: a rarely-run kernel's
/// passes run at -O0 under it), the pipeline's level and kind, gradc's
/// defaults for LLVM's options and the GRADC_LLVM_OPTIONS given to LLVM.
/// So a hit is the object a compilation would produce, and it is known
/// before any LLVM IR exists: a hit costs no lowering, and a miss no
/// printing of the IR (keying on the printed unoptimised module was an
/// eighth of a cold compile of the step).  The parts of one kernel may
/// come from different processes, one from the cache and one compiled:
/// that relies on the lowering and the cut being the same in every
/// process (no order from addresses; Partition.h).  Empty when the build
/// cannot be identified: no cache then.
std::string cachePath(const std::string &dir, const KernelJob &job, const TargetMachine &machine,
                      const CodegenOptions &options) {
  static const std::string identity = buildIdentity();
  if (identity.empty())
    return "";
  ir::PrintOptions printOptions;
  printOptions.locations = false;
  std::string text = ir::toString(*job.request->graph, printOptions);
  text +=
      fmt::format("\nkernel {} part {} of {}{}\n{}\n{}\n{}\n{}\n{} {} {}\n{}\n", job.request->name,
                  job.part, job.parts, job.request->rarelyRun ? " rarely run" : "", identity,
                  machine.getTargetTriple().str(), machine.getTargetCPU().str(),
                  machine.getTargetFeatureString().str(), static_cast<int>(machine.getOptLevel()),
                  options.optLevel, static_cast<int>(options.pipeline), codegenDefaults());
  if (const char *llvmOptions = std::getenv("GRADC_LLVM_OPTIONS"))
    text += fmt::format("{}\n", llvmOptions);
  SHA256 hash;
  hash.update(text);
  return fmt::format("{}/{}.o", dir, toHex(hash.final(), /*LowerCase=*/true));
}

/// What the cache holds for a part of a kernel that has no code: a line
/// of text, so that a damaged (say, emptied) object is not taken for it.
constexpr StringLiteral kNoCode = "gradc: this part of the kernel has no code\n";

/// A cached object if there is a readable, well-formed one, or the
/// kNoCode note (`object` left empty).
bool readCachedObject(const std::string &path, std::vector<char> &object) {
  auto buffer = MemoryBuffer::getFile(path, /*IsText=*/false, /*RequiresNullTerminator=*/false);
  if (!buffer)
    return false;
  if ((*buffer)->getBuffer() == kNoCode) {
    object.clear();
    return true;
  }
  auto parsed = object::ObjectFile::createObjectFile((*buffer)->getMemBufferRef());
  if (!parsed) {
    consumeError(parsed.takeError());
    return false; // damaged: compile again and overwrite it
  }
  object.assign((*buffer)->getBufferStart(), (*buffer)->getBufferEnd());
  return true;
}

/// Stores an object (kNoCode for an empty one) under `path` through a
/// temporary file and a rename, so a concurrent reader sees the whole file
/// or none.  Best effort: a cache that cannot be written is only slower.
void writeCachedObject(const std::string &path, const std::vector<char> &object) {
  std::error_code ec = sys::fs::create_directories(sys::path::parent_path(path));
  if (ec)
    return;
  // Unique to this process and this write: two jobs of one process may
  // store the same key at once.
  static std::atomic<uint64_t> writes{0};
  std::string temporary = fmt::format("{}.tmp-{}-{}", path, sys::Process::getProcessId(), writes++);
  {
    raw_fd_ostream out(temporary, ec, sys::fs::OF_None);
    if (ec)
      return;
    if (object.empty())
      out << kNoCode;
    else
      out.write(object.data(), object.size());
    out.close();
    if (out.has_error()) {
      out.clear_error();
      sys::fs::remove(temporary);
      return;
    }
  }
  if (sys::fs::rename(temporary, path))
    sys::fs::remove(temporary);
}

void compileKernelJob(KernelJob &job, const CodegenOptions &options) {
  auto start = Clock::now();
  std::unique_ptr<TargetMachine> machine = createTargetMachine(options, job.error);
  if (!machine)
    return;
  const CodegenOptions passOptions = kernelOptions(options, job.request->rarelyRun);
  std::string cached =
      options.cacheDir.empty() ? "" : cachePath(options.cacheDir, job, *machine, passOptions);
  if (!cached.empty() && readCachedObject(cached, job.object)) {
    // Part 0's layout gives the kernel's signature (addKernels); it is
    // decided without LLVM, and the lowering would give the same.
    if (job.part == 0 &&
        !layoutKernel(*job.request->graph, job.request->name, job.layout, job.error))
      return;
    ++job.times.cached;
    job.times.lowerMs = millisecondsSince(start);
    return;
  }
  LLVMContext context;
  std::unique_ptr<Module> module =
      buildKernelModule(*job.request->graph, job.request->name, context, job.layout, job.error);
  if (!module)
    return;
  configureModule(*module, *machine);
  bool empty = false;
  if (job.parts > 1) {
    if (canPartition(*module))
      keepPartition(*module, job.symbol, job.part, job.parts);
    else if (job.part > 0)
      empty = true; // part 0 compiles it whole
    empty = empty || std::all_of(module->begin(), module->end(),
                                 [](Function &fn) { return fn.isDeclaration(); });
  }
  job.times.lowerMs = millisecondsSince(start);
  if (empty) {
    // No code for this part: fewer functions than parts, or a kernel
    // that cannot be cut (canPartition), which part 0 compiles whole.  Cached as such (kNoCode), so
    // a warm start does not lower the kernel to learn that.
    if (!cached.empty())
      writeCachedObject(cached, job.object);
    return;
  }
  if (job.request->rarelyRun)
    markRarelyRun(*module);
  start = Clock::now();
  optimizeModule(*module, *machine, passOptions);
  job.times.optimizeMs = millisecondsSince(start);
  start = Clock::now();
  if (!emitObjectCode(*module, *machine, job.object, job.error))
    return;
  job.times.machineCodeMs = millisecondsSince(start);
  if (!cached.empty())
    writeCachedObject(cached, job.object);
}

} // namespace

bool Jit::addKernel(const ir::Graph &graph, const std::string &kernelName, rt::KernelSpec &spec,
                    std::string &error) {
  return addKernels({{&graph, kernelName, &spec}}, error);
}

bool Jit::addKernels(const std::vector<KernelRequest> &requests, std::string &error,
                     unsigned threads) {
  // Lowering, optimisation and instruction selection of each kernel, and
  // of each part of one, are independent: one job per part, as many
  // threads as cores.  The result does not depend on the thread count:
  // each job is the same deterministic compilation wherever it runs.
  std::vector<KernelJob> jobs;
  for (size_t i = 0; i < requests.size(); ++i) {
    std::string symbol = kernelSymbol(*requests[i].graph, requests[i].name);
    for (const KernelJob &job : jobs)
      if (job.symbol == symbol) {
        error = fmt::format("two kernels named {} in one addKernels call", symbol);
        return false;
      }
    const unsigned parts = requests[i].rarelyRun ? 1 : kPartsPerKernel;
    for (unsigned part = 0; part < parts; ++part) {
      KernelJob &job = jobs.emplace_back();
      job.request = &requests[i];
      job.requestIndex = i;
      job.part = part;
      job.parts = parts;
      job.symbol = symbol;
    }
  }
  forEachInParallel(
      jobs.size(), [&](size_t i) { compileKernelJob(jobs[i], impl_->options); }, threads);

  CompileTimes &times = impl_->times;
  // A kernel counts as cached when every part that has an object came
  // from the cache.
  std::vector<KernelCompileTime> perKernel(requests.size());
  for (KernelCompileTime &kernel : perKernel)
    kernel.cached = true;
  for (KernelJob &job : jobs) {
    if (!job.error.empty()) {
      error = job.error;
      return false;
    }
    times.lowerMs += job.times.lowerMs;
    times.optimizeMs += job.times.optimizeMs;
    times.machineCodeMs += job.times.machineCodeMs;
    KernelCompileTime &kernel = perKernel[job.requestIndex];
    kernel.name = job.request->name;
    kernel.lowerMs += job.times.lowerMs;
    kernel.optimizeMs += job.times.optimizeMs;
    kernel.machineCodeMs += job.times.machineCodeMs;
    if (!job.object.empty())
      kernel.cached = kernel.cached && job.times.cached > 0;
  }
  for (const KernelCompileTime &kernel : perKernel) {
    times.cached += kernel.cached ? 1 : 0;
    times.perKernel.push_back(kernel);
  }
  // One JITDylib per call, so the same graph may be compiled again later
  // under the same symbol.
  auto start = Clock::now();
  auto dylib = impl_->jit->createJITDylib(fmt::format("kernels#{}", impl_->kernels++));
  if (!dylib) {
    error = toString(dylib.takeError());
    return false;
  }
  for (KernelJob &job : jobs) {
    if (job.object.empty())
      continue; // a part with no code (see compileKernelJob)
    auto buffer = MemoryBuffer::getMemBufferCopy(StringRef(job.object.data(), job.object.size()),
                                                 fmt::format("{}.part{}", job.symbol, job.part));
    if (Error e = impl_->jit->addObjectFile(*dylib, std::move(buffer))) {
      error = "cannot add kernel " + job.symbol + " to the JIT: " + toString(std::move(e));
      return false;
    }
  }
  for (const KernelJob &job : jobs) {
    if (job.part > 0)
      continue;
    const size_t i = job.requestIndex;
    auto address = impl_->jit->lookup(*dylib, job.symbol);
    if (!address) {
      error = "cannot link kernel " + job.symbol + ": " + toString(address.takeError());
      return false;
    }
    *requests[i].spec = job.layout.spec;
    requests[i].spec->fn = address->toPtr<gradc_kernel_fn>();
  }
  times.machineCodeMs += millisecondsSince(start); // linking
  times.kernels += int(requests.size());
  return true;
}

const CompileTimes &Jit::times() const { return impl_->times; }

} // namespace gradc::codegen
