# lit configuration for gradc: tests are .grad, .gir and .test files; each
# has RUN: lines using %gradc and FileCheck.
import os
import lit.formats

config.name = "gradc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".grad", ".gir", ".test"]
config.excludes = ["Inputs", "lit.cfg.py", "lit.site.cfg.py.in"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(os.path.dirname(config.gradc_bin_dir), "test", "lit-out")

config.substitutions.append(("%gradc", os.path.join(config.gradc_bin_dir, "gradc")))
config.substitutions.append(("%examples", os.path.join(config.gradc_source_dir, "examples")))
config.substitutions.append(("%python", config.python))
config.substitutions.append(("FileCheck", config.filecheck))
# Compiled kernels are cached between runs (tools/Driver.h); the tests keep
# theirs in the build tree, not in the user's home.
config.environment["GRADC_CACHE_DIR"] = os.path.join(config.test_exec_root, "kernel-cache")
# Likewise the inflated copies of gzipped data sets (runtime/InflatedCache.h).
config.environment["GRADC_DATA_CACHE_DIR"] = os.path.join(config.test_exec_root, "data-cache")
# `not` inverts an exit status; lit's internal shell provides it.
config.environment["PATH"] = os.pathsep.join(
    [config.gradc_bin_dir, "/usr/lib/llvm-19/bin", config.environment.get("PATH", "")])

# Tests on Debian's dataset-fashion-mnist run where it is installed (the
# test command installs it).
if os.path.isdir("/usr/share/datasets/fashion-mnist"):
    config.available_features.add("fashion-mnist")

# The PyTorch cross-check runs where Debian's python3-torch is installed (the
# test command installs it); lit's own Python may not be the system one.
# %syspython is Debian's Python, where apt installs python3-torch.
import subprocess
config.substitutions.append(("%syspython", "/usr/bin/python3"))
if os.path.exists("/usr/bin/python3") and subprocess.call(
        ["/usr/bin/python3", "-c", "import torch, numpy"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL) == 0:
    config.available_features.add("torch")

# Ahead-of-time builds (test/lit/aot): the build tree's libraries, a C and a
# C++ compiler to build programs against generated headers, and what a C
# program links besides a model's object.
gradc_build_dir = os.path.dirname(config.gradc_bin_dir)
gradc_lib_dir = os.path.join(gradc_build_dir, "lib")
config.substitutions.append(("%builddir", gradc_build_dir))
config.substitutions.append(("%libdir", gradc_lib_dir))
config.substitutions.append(("%srcroot", config.gradc_source_dir))
config.substitutions.append(("%cc", "cc"))
config.substitutions.append(("%cxx", "c++"))
config.substitutions.append(("%runtime_libs", os.path.join(gradc_lib_dir, "libgradc_runtime.a") +
                             " -lfmt -lz -ldeflate -lstdc++ -lm -pthread"))
# Debian's LLVM registers every target; check that AArch64 is among them.
if "aarch64" in subprocess.run(["/usr/lib/llvm-19/bin/llc", "--version"], capture_output=True,
                               text=True).stdout:
    config.available_features.add("aarch64-target")
for tool in ("cmake", "ninja", "file"):
    if subprocess.call(["sh", "-c", "command -v " + tool], stdout=subprocess.DEVNULL) == 0:
        config.available_features.add(tool)
