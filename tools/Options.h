//===- tools/Options.h - Command-line parsing for subcommands --*- C++ -*-===//
#pragma once

#include <boost/program_options.hpp>
#include <string>
#include <vector>

namespace gradc::tool {

namespace po = boost::program_options;

/// Parses `args` for a subcommand with one positional FILE argument.
/// Returns -1 when the command should go on, or the exit status to return
/// (0 after --help, 1 after a usage error, which it reports).
int parseOptions(const std::string &command, const std::string &synopsis,
                 po::options_description &options, const std::vector<std::string> &args,
                 po::variables_map &values);

} // namespace gradc::tool
