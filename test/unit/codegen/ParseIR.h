//===- test/unit/codegen/ParseIR.h - LLVM IR text for pass tests -*- C++ -*-===//
#pragma once

#include <llvm/AsmParser/Parser.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/SourceMgr.h>
#include <llvm/Support/raw_ostream.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace gradc::test {

/// The module in `text`, or null after a test failure that shows where
/// the text does not parse (`name` stands for the text in the message).
inline std::unique_ptr<llvm::Module> parseIR(const char *text, const char *name,
                                             llvm::LLVMContext &context) {
  llvm::SMDiagnostic diagnostic;
  std::unique_ptr<llvm::Module> module = llvm::parseAssemblyString(text, diagnostic, context);
  if (!module) {
    std::string message;
    llvm::raw_string_ostream os(message);
    diagnostic.print(name, os);
    ADD_FAILURE() << message;
  }
  return module;
}

} // namespace gradc::test
