"""A repository wrapping a library installed by the system package manager.

The BUILD file of the repository comes from this workspace (`build_file`, a Label string).
Headers in the compiler's default search path (/usr/include) need nothing more; headers in
a private folder (Eigen, HDF5) are linked into the repository with `include_dirs`
(system path -> folder in the repository) and exported by the BUILD file with `includes`.
"""

def _system_library_impl(rctx):
    rctx.symlink(rctx.path(Label(rctx.attr.build_file)), "BUILD.bazel")
    for path, label in rctx.attr.files.items():
        rctx.symlink(rctx.path(Label(label)), path)
    for system_path, repo_path in rctx.attr.include_dirs.items():
        if not rctx.path(system_path).exists:
            fail("@%s: %s is missing; run tools/setup.sh to install the system packages" %
                 (rctx.name, system_path))
        rctx.symlink(system_path, repo_path)
    rctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % rctx.name)

system_library = repository_rule(
    implementation = _system_library_impl,
    attrs = {
        "build_file": attr.string(mandatory = True, doc = "Label of the BUILD file."),
        "files": attr.string_dict(doc = "Repository path -> Label of extra files."),
        "include_dirs": attr.string_dict(doc = "System folder -> repository folder."),
    },
    local = True,
)
