//===- tools/Commands.h - The gradc subcommands ----------------*- C++ -*-===//
#pragma once

#include <string>
#include <vector>

namespace gradc::tool {

/// Each subcommand takes its arguments (after the subcommand's name) and
/// returns the process exit status.
int runCheck(const std::vector<std::string> &args);
int runShow(const std::vector<std::string> &args);
int runOpt(const std::vector<std::string> &args);
int runGradcheck(const std::vector<std::string> &args);
int runTrain(const std::vector<std::string> &args);
int runEval(const std::vector<std::string> &args);
int runBuild(const std::vector<std::string> &args);
int runCache(const std::vector<std::string> &args);

} // namespace gradc::tool
