package(default_visibility = ["//visibility:public"])

exports_files(["defs.bzl"])

alias(
    name = "toolchain_type",
    actual = "@bazel_tools//tools/cpp:toolchain_type",
)
