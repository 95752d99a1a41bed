"""@com_google_absl from Debian's libabsl-dev (20220623), with upstream target labels.

Headers live in /usr/include/absl (the default search path). Each upstream package
(absl/status, absl/strings, ...) gets a BUILD file whose targets link the shared libraries
behind them. Debian splits Abseil into one shared library per component; targets link the
whole set through `//:abseil` so header-inlined code always finds its symbols (unused
libraries cost nothing with --as-needed).
"""

# Upstream package -> the targets it defines (the ones otgen and common users need).
ABSL_PACKAGES = {
    "absl/algorithm": ["algorithm", "container"],
    "absl/base": ["base", "core_headers", "config", "log_severity", "dynamic_annotations", "endian", "prefetch"],
    "absl/cleanup": ["cleanup"],
    "absl/container": ["btree", "fixed_array", "flat_hash_map", "flat_hash_set", "inlined_vector", "node_hash_map", "node_hash_set"],
    "absl/debugging": ["failure_signal_handler", "leak_check", "stacktrace", "symbolize"],
    "absl/flags": ["commandlineflag", "config", "flag", "marshalling", "parse", "reflection", "usage", "usage_config"],
    "absl/functional": ["any_invocable", "bind_front", "function_ref"],
    "absl/hash": ["hash"],
    "absl/memory": ["memory"],
    "absl/meta": ["type_traits"],
    "absl/numeric": ["bits", "int128", "representation"],
    "absl/random": ["bit_gen_ref", "distributions", "random", "seed_sequences"],
    "absl/status": ["status", "statusor"],
    "absl/strings": ["cord", "str_format", "strings"],
    "absl/synchronization": ["synchronization"],
    "absl/time": ["time"],
    "absl/types": ["any", "compare", "optional", "span", "variant"],
    "absl/utility": ["utility"],
}

# Every shared library of libabsl-dev 20220623 that a program may reference.
ABSL_LIBRARIES = [
    "bad_any_cast_impl", "bad_optional_access", "bad_variant_access", "base", "city",
    "civil_time", "cord", "cord_internal", "cordz_functions", "cordz_handle", "cordz_info",
    "cordz_sample_token", "debugging_internal", "demangle_internal", "examine_stack",
    "exponential_biased", "failure_signal_handler", "flags_commandlineflag",
    "flags_commandlineflag_internal", "flags_config", "flags_internal", "flags_marshalling",
    "flags_parse", "flags_private_handle_accessor", "flags_program_name", "flags_reflection",
    "flags_usage", "flags_usage_internal", "graphcycles_internal", "hash",
    "hashtablez_sampler", "int128", "leak_check", "log_severity", "low_level_hash",
    "malloc_internal", "periodic_sampler", "random_distributions",
    "random_internal_platform", "random_internal_pool_urbg", "random_internal_randen",
    "random_internal_randen_hwaes", "random_internal_randen_hwaes_impl",
    "random_internal_randen_slow", "random_internal_seed_material",
    "random_seed_gen_exception", "random_seed_sequences", "raw_hash_set",
    "raw_logging_internal", "spinlock_wait", "stacktrace", "status", "statusor",
    "str_format_internal", "strerror", "strings", "strings_internal", "symbolize",
    "synchronization", "throw_delegate", "time", "time_zone",
]

def _absl_repository_impl(rctx):
    if not rctx.path("/usr/include/absl/base/config.h").exists:
        fail("@com_google_absl: /usr/include/absl is missing; run tools/setup.sh (libabsl-dev)")
    rctx.file("WORKSPACE", "workspace(name = \"com_google_absl\")\n")
    rctx.file("BUILD.bazel", "\n".join([
        "# Abseil 20220623 from Debian (libabsl-dev).",
        "cc_library(",
        "    name = \"abseil\",",
        "    linkopts = [%s, \"-pthread\"]," % ", ".join(["\"-labsl_%s\"" % lib for lib in ABSL_LIBRARIES]),
        "    visibility = [\"//visibility:public\"],",
        ")",
        "",
    ]))
    for package, targets in ABSL_PACKAGES.items():
        lines = ["package(default_visibility = [\"//visibility:public\"])", ""]
        for target in targets:
            lines.append("cc_library(name = \"%s\", deps = [\"//:abseil\"])" % target)
        rctx.file(package + "/BUILD.bazel", "\n".join(lines) + "\n")

absl_repository = repository_rule(
    implementation = _absl_repository_impl,
    local = True,
    doc = "Abseil from the system, exposing upstream labels such as //absl/status:statusor.",
)
