//===- tools/main.cpp - The gradc command line ----------------------------===//
//
// One binary, subcommands in the manner of git:  gradc <command> [options].
//
//===----------------------------------------------------------------------===//
#include "tools/Commands.h"
#include "tools/Driver.h"

#include "runtime/ThreadPool.h"

#include <fmt/format.h>
#include <iostream>

namespace {

struct Command {
  const char *name;
  int (*run)(const std::vector<std::string> &);
  const char *summary;
};

const Command kCommands[] = {
    {"check", gradc::tool::runCheck, "parse, elaborate and verify a model file"},
    {"show", gradc::tool::runShow,
     "print a stage: parsed, forward, backward, train, optimized, inference, llvm, llvm-opt, asm"},
    {"opt", gradc::tool::runOpt, "run named passes on a textual IR file"},
    {"gradcheck", gradc::tool::runGradcheck,
     "compare derived gradients with finite differences (f64 interpreter, f32 JIT)"},
    {"train", gradc::tool::runTrain, "JIT-compile the training step and train"},
    {"eval", gradc::tool::runEval,
     "loss and accuracy of a checkpoint on a data set, with the inference graph"},
    {"build", gradc::tool::runBuild,
     "compile a model ahead of time: object, static library, C header, standalone trainer"},
    {"cache", gradc::tool::runCache,
     "where compiled kernels and inflated data sets are kept, and clearing them"},
};

void printUsage(std::ostream &out) {
  out << "usage: gradc <command> [options]\n\ncommands:\n";
  for (const Command &command : kCommands)
    out << fmt::format("  {:<10} {}\n", command.name, command.summary);
  out << "\n'gradc <command> --help' describes a command's options.\n";
}

} // namespace

int main(int argc, char **argv) {
  gradc::rt::reserveKernelStacks();
  if (argc < 2) {
    printUsage(std::cerr);
    return 1;
  }
  std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    printUsage(std::cout);
    return 0;
  }
  if (name == "--version") {
    std::cout << "gradc 0.1.0\n";
    return 0;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const Command &command : kCommands)
    if (name == command.name)
      return command.run(args);
  std::vector<std::string> names;
  for (const Command &command : kCommands)
    names.push_back(command.name);
  return gradc::tool::fail(
      fmt::format("unknown command '{}'; expected one of: {}", name, fmt::join(names, ", ")));
}
