# Cairo 1.16 from Debian (libcairo2-dev); #include <cairo/cairo.h>, cairo-svg.h.
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "cairo",
    linkopts = ["-lcairo"],
)
