//===- codegen/Object.cpp - Ahead-of-time object files --------------------===//
//
// Every kernel is lowered, configured and optimised in a module of its own
// on a thread of its own, as codegen/Jit.cpp does; then the modules are
// linked (helpers renamed where they clash) and the descriptor of runtime/AotModel.h is added as
// plain constant data.  Instruction selection then runs once over the
// linked module; it works function by function, so each kernel gets the
// machine code the JIT gives it.
//
//===----------------------------------------------------------------------===//
#include "codegen/Object.h"
#include "codegen/KernelLayout.h"
#include "codegen/Pipeline.h"
#include "ir/Graph.h"
#include "runtime/AotModel.h"

#include <llvm/Bitcode/BitcodeReader.h>
#include <llvm/Bitcode/BitcodeWriter.h>
#include <llvm/IR/Constants.h>
#include <llvm/IR/DerivedTypes.h>
#include <llvm/IR/GlobalVariable.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Linker/Linker.h>
#include <llvm/Object/ArchiveWriter.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/TargetParser/Triple.h>

#include <cctype>
#include <fmt/format.h>

namespace gradc::codegen {

using namespace llvm;

std::string modelSymbol(const std::string &modelName) {
  std::string out = "gradc_model_" + modelName;
  for (char &c : out)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_'))
      c = '_';
  return out;
}

namespace {

/// Builds the descriptor's constants in `module`.
class DescriptorBuilder {
public:
  explicit DescriptorBuilder(Module &module)
      : module_(module), context_(module.getContext()), ptr_(PointerType::getUnqual(context_)),
        i32_(Type::getInt32Ty(context_)), i64_(Type::getInt64Ty(context_)),
        f64_(Type::getDoubleTy(context_)) {
    // The field order of runtime/AotModel.h.
    tensorType_ = StructType::create(
        context_, {ptr_, ptr_, ptr_, ptr_, i64_, i64_, i32_, i32_, i32_, i32_}, "gradc_aot_tensor");
    kernelType_ = StructType::create(context_, {ptr_, ptr_, ptr_, ptr_, i64_, i64_, i32_, i32_},
                                     "gradc_aot_kernel");
    modelType_ = StructType::create(
        context_,
        {i32_, i32_, ptr_, ptr_, ptr_, ptr_, ptr_, ptr_, f64_, f64_, f64_, f64_, i64_, i64_},
        "gradc_aot_model");
  }

  Constant *string(const std::string &text) {
    if (auto it = strings_.find(text); it != strings_.end())
      return it->second;
    Constant *data = ConstantDataArray::getString(context_, text, /*AddNull=*/true);
    auto *global = new GlobalVariable(module_, data->getType(), true, GlobalValue::PrivateLinkage,
                                      data, ".gradc.str");
    global->setUnnamedAddr(GlobalValue::UnnamedAddr::Global);
    global->setAlignment(Align(1));
    strings_[text] = global;
    return global;
  }

  /// A private constant array, or null for an empty one.
  template <typename T> Constant *array(const std::vector<T> &values, const char *name) {
    if (values.empty())
      return ConstantPointerNull::get(ptr_);
    Constant *data = ConstantDataArray::get(context_, ArrayRef<T>(values));
    return new GlobalVariable(module_, data->getType(), true, GlobalValue::PrivateLinkage, data,
                              name);
  }

  Constant *tensor(const rt::TensorSpec &spec) {
    std::vector<uint64_t> dims(spec.dims.begin(), spec.dims.end());
    return ConstantStruct::get(
        tensorType_,
        {string(spec.name), array(dims, ".gradc.dims"), string(spec.init.kind),
         array(spec.init.args, ".gradc.args"), ConstantInt::get(i64_, spec.init.fanIn),
         ConstantInt::get(i64_, spec.init.fanOut), ConstantInt::get(i32_, spec.dims.size()),
         ConstantInt::get(i32_, static_cast<int>(spec.role)),
         ConstantInt::get(i32_, spec.isInt ? 1 : 0),
         ConstantInt::get(i32_, spec.init.args.size())});
  }

  Constant *kernel(const rt::KernelSpec &spec, Function *fn) {
    std::vector<Constant *> buffers, hypers;
    for (const rt::TensorSpec &tensor : spec.buffers)
      buffers.push_back(this->tensor(tensor));
    for (const std::string &hyper : spec.hypers)
      hypers.push_back(string(hyper));
    return ConstantStruct::get(
        kernelType_,
        {string(spec.name), fn, constantArray(tensorType_, buffers, ".gradc.buffers"),
         constantArray(ptr_, hypers, ".gradc.hypers"), ConstantInt::get(i64_, spec.arenaBytes),
         ConstantInt::get(i64_, spec.batch), ConstantInt::get(i32_, buffers.size()),
         ConstantInt::get(i32_, hypers.size())});
  }

  void model(const ObjectModelInfo &info, const std::string &target,
             const std::vector<Constant *> &kernels) {
    Constant *value = ConstantStruct::get(
        modelType_,
        {ConstantInt::get(i32_, GRADC_AOT_ABI_VERSION), ConstantInt::get(i32_, kernels.size()),
         string(info.name), string(info.source), string(target), string(info.optimizer),
         constantArray(kernelType_, kernels, ".gradc.kernels"), string(info.schedule),
         ConstantFP::get(f64_, info.lr), ConstantFP::get(f64_, info.stepSize),
         ConstantFP::get(f64_, info.gamma), ConstantFP::get(f64_, info.lrMin),
         ConstantInt::get(i64_, info.epochs), ConstantInt::get(i64_, info.seed)});
    new GlobalVariable(module_, modelType_, true, GlobalValue::ExternalLinkage, value,
                       modelSymbol(info.name));
  }

private:
  Constant *constantArray(Type *element, const std::vector<Constant *> &values, const char *name) {
    if (values.empty())
      return ConstantPointerNull::get(ptr_);
    ArrayType *type = ArrayType::get(element, values.size());
    return new GlobalVariable(module_, type, true, GlobalValue::PrivateLinkage,
                              ConstantArray::get(type, values), name);
  }

  Module &module_;
  LLVMContext &context_;
  PointerType *ptr_;
  IntegerType *i32_, *i64_;
  Type *f64_;
  StructType *tensorType_, *kernelType_, *modelType_;
  std::map<std::string, Constant *> strings_;
};

} // namespace

bool emitModelObject(const std::vector<ObjectKernel> &kernels, const ObjectModelInfo &info,
                     const CodegenOptions &options, ModelObject &object, std::string &error) {
  std::unique_ptr<TargetMachine> machine = createTargetMachine(options, error);
  if (!machine)
    return false;
  object.triple = machine->getTargetTriple().str();
  object.cpu = machine->getTargetCPU().str();
  object.specs.clear();

  // Each kernel is lowered and optimised on its own thread, in its own
  // context, as the JIT does; the optimised modules travel to the linked
  // module as bitcode (lossless).  Instruction selection then runs once.
  struct Job {
    const ObjectKernel *kernel = nullptr;
    KernelLayout layout;
    std::string symbol, error;
    SmallString<0> bitcode;
  };
  std::vector<Job> jobs(kernels.size());
  for (size_t i = 0; i < kernels.size(); ++i) {
    jobs[i].kernel = &kernels[i];
    jobs[i].symbol = kernelSymbol(*kernels[i].graph, kernels[i].symbolName);
  }
  forEachInParallel(jobs.size(), [&](size_t i) {
    Job &job = jobs[i];
    std::unique_ptr<TargetMachine> jobMachine = createTargetMachine(options, job.error);
    if (!jobMachine)
      return;
    LLVMContext jobContext;
    std::unique_ptr<Module> module = buildKernelModule(*job.kernel->graph, job.kernel->symbolName,
                                                       jobContext, job.layout, job.error);
    if (!module)
      return;
    // What the JIT does, step for step (codegen/Jit.cpp).
    configureModule(*module, *jobMachine);
    if (job.kernel->rarelyRun)
      markRarelyRun(*module);
    optimizeModule(*module, *jobMachine, kernelOptions(options, job.kernel->rarelyRun));
    // Only the kernel is the object's business; helpers that the JIT
    // keeps in an object of their own become private here, so two
    // kernels' helpers cannot clash.
    for (GlobalValue &value : module->global_values())
      if (!value.isDeclaration() && !value.hasLocalLinkage() && value.getName() != job.symbol)
        value.setLinkage(GlobalValue::InternalLinkage);
    raw_svector_ostream os(job.bitcode);
    WriteBitcodeToFile(*module, os);
  });

  LLVMContext context;
  auto linked = std::make_unique<Module>(modelSymbol(info.name), context);
  configureModule(*linked, *machine);
  Linker linker(*linked);
  std::vector<std::string> symbols;
  for (Job &job : jobs) {
    if (!job.error.empty()) {
      error = job.error;
      return false;
    }
    auto module = parseBitcodeFile(
        MemoryBufferRef(StringRef(job.bitcode.data(), job.bitcode.size()), job.symbol), context);
    if (!module) {
      error = "internal error: kernel " + job.symbol + ": " + toString(module.takeError());
      return false;
    }
    if (linker.linkInModule(std::move(*module))) {
      error = "cannot link kernel " + job.symbol + " into the model's object";
      return false;
    }
    rt::KernelSpec spec = job.layout.spec;
    spec.name = job.kernel->role;
    spec.fn = nullptr;
    object.specs.push_back(std::move(spec));
    symbols.push_back(job.symbol);
  }

  DescriptorBuilder descriptor(*linked);
  std::vector<Constant *> entries;
  for (size_t i = 0; i < kernels.size(); ++i) {
    Function *fn = linked->getFunction(symbols[i]);
    if (!fn) {
      error = "internal error: kernel " + symbols[i] + " vanished while linking";
      return false;
    }
    entries.push_back(descriptor.kernel(object.specs[i], fn));
  }
  descriptor.model(info, fmt::format("{}, cpu {}", object.triple, object.cpu), entries);

  std::string invalid;
  raw_string_ostream problems(invalid);
  if (verifyModule(*linked, &problems)) {
    error = "internal error: invalid object module:\n" + problems.str();
    return false;
  }

  std::vector<char> code;
  if (!emitObjectCode(*linked, *machine, code, error))
    return false;
  object.bytes.assign(code.begin(), code.end());
  return true;
}

bool runsOnHost(const std::string &triple) {
  return Triple(triple).getArch() == Triple(sys::getProcessTriple()).getArch();
}

bool writeStaticLibrary(const std::string &path, const std::string &memberName,
                        const std::string &object, std::string &error) {
  NewArchiveMember member(MemoryBufferRef(object, memberName));
  member.MemberName = memberName;
  if (Error e = writeArchive(path, {std::move(member)}, SymtabWritingMode::NormalSymtab,
                             object::Archive::K_GNU, /*Deterministic=*/true, /*Thin=*/false)) {
    error = fmt::format("cannot write '{}': {}", path, toString(std::move(e)));
    return false;
  }
  return true;
}

} // namespace gradc::codegen
