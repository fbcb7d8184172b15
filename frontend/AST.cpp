//===- frontend/AST.cpp - Syntax tree of a model file ---------------------===//
#include "frontend/AST.h"

namespace gradc::frontend::ast {

const char *binaryOpSpelling(BinaryOp op) {
  switch (op) {
  case BinaryOp::Add:
    return "+";
  case BinaryOp::Sub:
    return "-";
  case BinaryOp::Mul:
    return "*";
  case BinaryOp::Div:
    return "/";
  case BinaryOp::MatMul:
    return "@";
  }
  return "?";
}

const char *elementTypeName(ElementType type) {
  switch (type) {
  case ElementType::F32:
    return "f32";
  case ElementType::I32:
    return "i32";
  }
  return "?";
}

const Block *File::findBlock(std::string_view name) const {
  for (const auto &definition : definitions)
    if (const Block *block = dynCast<Block>(definition.get()); block && block->name == name)
      return block;
  return nullptr;
}

std::vector<const Model *> File::models() const {
  std::vector<const Model *> result;
  for (const auto &definition : definitions)
    if (const Model *model = dynCast<Model>(definition.get()))
      result.push_back(model);
  return result;
}

} // namespace gradc::frontend::ast
