"""Compiler flags for otgen's own targets, chosen in one place (cf. absl/copts).

Every BUILD file of otgen uses these macros instead of the native rules, so the language
standard and warnings are uniform. The flags live in the targets, not in .bazelrc, so a
consumer workspace builds otgen exactly as otgen's CI does.
"""

OTGEN_COPTS = [
    "-std=c++20",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-missing-field-initializers",
    "-Wno-sign-compare",
    # GCC 12 reports false "may be used uninitialized" warnings inside Eigen's and its own
    # AVX-512 intrinsics at -O2 with -march=native; they would break -Werror builds.
    "-Wno-uninitialized",
    "-Wno-maybe-uninitialized",
]

# Compute kernels are vectorized for the machine that builds them (AVX-512 here).
OTGEN_OPT_COPTS = ["-march=native"]

def otgen_cc_library(name, copts = [], **kwargs):
    native.cc_library(name = name, copts = OTGEN_COPTS + OTGEN_OPT_COPTS + copts, **kwargs)

def otgen_cc_binary(name, copts = [], **kwargs):
    native.cc_binary(name = name, copts = OTGEN_COPTS + OTGEN_OPT_COPTS + copts, **kwargs)

def otgen_cc_test(name, copts = [], deps = [], **kwargs):
    """A GoogleTest test; links gtest_main unless deps already name a main."""
    if not any([d.endswith("gtest_main") or d.endswith("benchmark_main") for d in deps]):
        deps = deps + ["@com_google_googletest//:gtest_main"]
    native.cc_test(name = name, copts = OTGEN_COPTS + OTGEN_OPT_COPTS + copts, deps = deps, **kwargs)

def otgen_cc_bench(name, copts = [], deps = [], **kwargs):
    """A Google Benchmark binary (`bazel run -c opt //pkg:name_bench`)."""
    native.cc_binary(
        name = name,
        copts = OTGEN_COPTS + OTGEN_OPT_COPTS + copts,
        deps = deps + ["@benchmark//:benchmark_main"],
        testonly = True,
        **kwargs
    )
