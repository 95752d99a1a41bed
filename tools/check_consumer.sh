#!/usr/bin/env bash
# Builds and runs tests/consumer: a separate Bazel workspace that imports otgen with
# local_repository + otgen_dependencies() and loads MNIST through otgen's data library.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/tests/consumer"
status=0
bazel run --nosandbox_debug --noshow_progress //:mnist_summary || status=$?
bazel shutdown >/dev/null 2>&1 || true
if [[ $status -ne 0 ]]; then
  echo "check_consumer: the consumer workspace failed (exit $status)" >&2
  exit $status
fi
echo "check_consumer: OK"
