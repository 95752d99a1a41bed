"""Embeds a text file (e.g. an app's default config) in a C++ header."""

load("//tools:copts.bzl", "otgen_cc_library")

def otgen_embedded_text(name, src, symbol, namespace = "otgen"):
    """A cc_library `name` with header `<name>.h` defining `inline constexpr char symbol[]`.

    The header is generated at build time from `src`, so the binary needs no runfiles to find
    the text. `src` must not contain the raw-string delimiter `)otgen_embedded"`.
    """
    header = name + ".h"
    guard = "OTGEN_EMBEDDED_" + native.package_name().upper().replace("/", "_") + "_" + name.upper() + "_H_"
    native.genrule(
        name = name + "_header",
        srcs = [src],
        outs = [header],
        cmd = ("if grep -q ')otgen_embedded\"' $<; then echo '$< contains the delimiter' >&2; exit 1; fi; " +
               "(echo '// Generated from $< by otgen_embedded_text; do not edit.'; " +
               "echo '#ifndef {guard}'; echo '#define {guard}'; " +
               "echo 'namespace {ns} {{'; " +
               "printf 'inline constexpr char {sym}[] = R\"otgen_embedded('; cat $<; " +
               "echo ')otgen_embedded\";'; echo '}}  // namespace {ns}'; echo '#endif') > $@").format(
            guard = guard,
            ns = namespace,
            sym = symbol,
        ),
    )
    otgen_cc_library(
        name = name,
        hdrs = [header],
    )
