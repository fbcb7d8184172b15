//===- frontend/TrainSection.cpp - The model's train { } settings ---------===//
//
//   train {
//     optimizer = sgd(lr = 0.05, momentum = 0.9, nesterov = true)
//     batch = 128
//     epochs = 15
//     seed = 1
//     schedule = cosine(lr_min = 0.001)      # constant | step(step_size, gamma) | cosine(lr_min)
//     clip_grad_norm = 5
//   }
//
// Each setting's value is a literal, a name, or a call with keyword
// arguments; anything else is reported where it stands.
//
//===----------------------------------------------------------------------===//
#include "frontend/TrainSection.h"
#include "frontend/AST.h"
#include "ir/Diagnostics.h"
#include "ir/Graph.h"

#include <cmath>
#include <fmt/format.h>
#include <map>
#include <set>

namespace gradc::frontend {
namespace {

using namespace ast;

class TrainSectionReader {
public:
  TrainSectionReader(Diagnostics &diags, TrainSettings &settings, ir::OptimizerConfig &optimizer)
      : diags_(diags), settings_(settings), optimizer_(optimizer) {}

  bool read(const TrainStmt &train) {
    std::set<std::string> seen;
    for (const auto &setting : train.settings) {
      if (!seen.insert(setting->name).second) {
        error(setting->loc, fmt::format("'{}' is set twice in the 'train' section", setting->name),
              setting->name.size());
        continue;
      }
      apply(*setting);
    }
    return ok_;
  }

private:
  void error(SourceLoc loc, const std::string &message, size_t length = 1) {
    diags_.error(loc, message, static_cast<unsigned>(std::max<size_t>(length, 1)));
    ok_ = false;
  }

  /// A number literal (possibly negated), or nullopt after an error.
  std::optional<double> number(const Expr &expr, std::string_view what) {
    if (const auto *n = dynCast<NumberExpr>(&expr))
      return n->number.value;
    if (const auto *neg = dynCast<NegateExpr>(&expr))
      if (const auto *n = dynCast<NumberExpr>(neg->operand.get()))
        return -n->number.value;
    error(expr.loc, fmt::format("expected a number for {}", what), expr.length);
    return std::nullopt;
  }

  std::optional<double> positive(const Expr &expr, std::string_view what) {
    std::optional<double> value = number(expr, what);
    if (value && !(*value > 0 && std::isfinite(*value))) {
      error(expr.loc, fmt::format("{} must be a positive number, got {}", what, *value),
            expr.length);
      return std::nullopt;
    }
    return value;
  }

  std::optional<int64_t> count(const Expr &expr, std::string_view what, bool allowZero = false) {
    std::optional<double> value = number(expr, what);
    if (!value)
      return std::nullopt;
    if (*value != std::floor(*value) || *value < (allowZero ? 0 : 1) || *value > 1e15) {
      error(expr.loc,
            fmt::format("{} must be a whole number {}, got {}", what, allowZero ? ">= 0" : ">= 1",
                        *value),
            expr.length);
      return std::nullopt;
    }
    return static_cast<int64_t>(*value);
  }

  std::optional<bool> boolean(const Expr &expr, std::string_view what) {
    if (const auto *name = dynCast<NameExpr>(&expr)) {
      if (name->name == "true")
        return true;
      if (name->name == "false")
        return false;
    }
    error(expr.loc, fmt::format("expected true or false for {}", what), expr.length);
    return std::nullopt;
  }

  /// The callee and keyword arguments of `name` or `name(k = v, ...)`.
  bool call(const Expr &expr, std::string &callee, std::map<std::string, const Argument *> &args,
            std::string_view what) {
    if (const auto *name = dynCast<NameExpr>(&expr)) {
      callee = name->name;
      return true;
    }
    const auto *c = dynCast<CallExpr>(&expr);
    if (!c || c->hasInputs) {
      error(expr.loc,
            fmt::format("expected {} such as {}", what,
                        what == "an optimizer" ? "sgd(lr = 0.1, momentum = 0.9)"
                                               : "cosine(lr_min = 0.001)"),
            expr.length);
      return false;
    }
    callee = c->callee;
    for (const Argument &arg : c->args) {
      if (arg.keyword.empty()) {
        error(arg.value->loc,
              fmt::format("the settings of '{}' are named: write name = value", callee),
              arg.value->length);
        continue;
      }
      if (!args.emplace(arg.keyword, &arg).second)
        error(arg.keywordLoc, fmt::format("'{}' is given twice", arg.keyword), arg.keyword.size());
    }
    return true;
  }

  void unknownArgument(const Argument &arg, const std::string &callee, std::string_view known) {
    error(arg.keywordLoc,
          fmt::format("'{}' has no setting '{}'; expected {}", callee, arg.keyword, known),
          arg.keyword.size());
  }

  void readOptimizer(const Expr &expr) {
    std::string kind;
    std::map<std::string, const Argument *> args;
    if (!call(expr, kind, args, "an optimizer"))
      return;
    if (kind != "sgd" && kind != "adam" && kind != "adamw") {
      error(expr.loc,
            fmt::format("unknown optimizer '{}'; expected one of {}", kind, ir::kOptimizerKinds),
            kind.size());
      return;
    }
    optimizer_.kind = kind;
    bool sgd = kind == "sgd";
    for (auto &[key, arg] : args) {
      const Expr &value = *arg->value;
      if (key == "lr") {
        if (auto v = positive(value, "the learning rate"))
          settings_.lr = *v;
      } else if (sgd && key == "momentum") {
        if (auto v = number(value, "momentum")) {
          if (*v < 0 || *v >= 1)
            error(value.loc, fmt::format("momentum must be in [0, 1), got {}", *v), value.length);
          else
            optimizer_.momentum = *v;
        }
      } else if (sgd && key == "nesterov") {
        if (auto v = boolean(value, "nesterov"))
          optimizer_.nesterov = *v;
      } else if (!sgd && (key == "beta1" || key == "beta2")) {
        if (auto v = number(value, key)) {
          if (*v < 0 || *v >= 1)
            error(value.loc, fmt::format("{} must be in [0, 1), got {}", key, *v), value.length);
          else
            (key == "beta1" ? optimizer_.beta1 : optimizer_.beta2) = *v;
        }
      } else if (!sgd && key == "eps") {
        if (auto v = positive(value, "eps"))
          optimizer_.eps = *v;
      } else {
        unknownArgument(*arg, kind, sgd ? "lr, momentum or nesterov" : "lr, beta1, beta2 or eps");
      }
    }
    if (optimizer_.nesterov && optimizer_.momentum == 0)
      error(expr.loc, "nesterov momentum needs momentum > 0", kind.size());
  }

  void readSchedule(const Expr &expr) {
    std::string kind;
    std::map<std::string, const Argument *> args;
    if (!call(expr, kind, args, "a schedule"))
      return;
    if (kind != "constant" && kind != "step" && kind != "cosine") {
      error(expr.loc, fmt::format("unknown schedule '{}'; expected constant, step or cosine", kind),
            kind.size());
      return;
    }
    settings_.schedule = kind;
    for (auto &[key, arg] : args) {
      const Expr &value = *arg->value;
      if (kind == "step" && key == "step_size") {
        if (auto v = count(value, "step_size"))
          settings_.stepSize = static_cast<double>(*v);
      } else if (kind == "step" && key == "gamma") {
        if (auto v = positive(value, "gamma"))
          settings_.gamma = *v;
      } else if (kind == "cosine" && key == "lr_min") {
        if (auto v = number(value, "lr_min")) {
          if (*v < 0)
            error(value.loc, fmt::format("lr_min must be >= 0, got {}", *v), value.length);
          else
            settings_.lrMin = *v;
        }
      } else {
        unknownArgument(*arg, kind,
                        kind == "step" ? "step_size or gamma"
                                       : (kind == "cosine" ? "lr_min" : "no settings"));
      }
    }
  }

  void apply(const AssignStmt &setting) {
    const std::string &key = setting.name;
    const Expr &value = *setting.value;
    if (key == "optimizer") {
      readOptimizer(value);
    } else if (key == "lr") {
      if (auto v = positive(value, "the learning rate"))
        settings_.lr = *v;
    } else if (key == "batch") {
      settings_.batch = count(value, "the batch size");
    } else if (key == "epochs") {
      settings_.epochs = count(value, "the number of epochs", true);
    } else if (key == "seed") {
      if (auto v = count(value, "the seed", true))
        settings_.seed = static_cast<uint64_t>(*v);
    } else if (key == "schedule") {
      readSchedule(value);
    } else if (key == "clip_grad_norm") {
      if (auto v = positive(value, "clip_grad_norm"))
        optimizer_.clipGradNorm = *v;
    } else {
      error(setting.loc,
            fmt::format("unknown setting '{}' in the 'train' section; expected optimizer, lr, "
                        "batch, epochs, seed, schedule or clip_grad_norm",
                        key),
            key.size());
    }
  }

  Diagnostics &diags_;
  TrainSettings &settings_;
  ir::OptimizerConfig &optimizer_;
  bool ok_ = true;
};

} // namespace

bool readTrainSection(const Model &model, Diagnostics &diags, TrainSettings &settings,
                      ir::OptimizerConfig &optimizer) {
  const TrainStmt *train = nullptr;
  bool ok = true;
  for (const StmtPtr &stmt : model.body) {
    const auto *section = dynCast<TrainStmt>(stmt.get());
    if (!section)
      continue;
    if (train) {
      diags.error(section->loc, "the model has a second 'train' section", 5);
      diags.note(train->loc, "the first one is here");
      ok = false;
      continue;
    }
    train = section;
  }
  if (!train)
    return ok;
  return TrainSectionReader(diags, settings, optimizer).read(*train) && ok;
}

} // namespace gradc::frontend
