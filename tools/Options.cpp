//===- tools/Options.cpp - Command-line parsing for subcommands -----------===//
#include "tools/Options.h"
#include "tools/Driver.h"

#include <fmt/format.h>
#include <iostream>

namespace gradc::tool {

int parseOptions(const std::string &command, const std::string &synopsis,
                 po::options_description &options, const std::vector<std::string> &args,
                 po::variables_map &values) {
  options.add_options()("help,h", "print this help");
  po::options_description hidden;
  hidden.add_options()("file", po::value<std::string>(), "input file");
  po::options_description all;
  all.add(options).add(hidden);
  po::positional_options_description positional;
  positional.add("file", 1);
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), values);
    po::notify(values);
  } catch (const po::error &e) {
    return fail(fmt::format("{} (see 'gradc {} --help')", e.what(), command));
  }
  if (values.count("help")) {
    std::cout << fmt::format("usage: gradc {} {}\n\n", command, synopsis) << options << '\n';
    return 0;
  }
  if (!values.count("file"))
    return fail(fmt::format("'gradc {}' needs a file: gradc {} {}", command, command, synopsis));
  return -1;
}

} // namespace gradc::tool
