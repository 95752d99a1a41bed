#!/usr/bin/env bash
# Checks that tools/run_swgan_figure1.sh rejects bad arguments before it builds or runs anything:
# exit status 2 and a message naming the flag and what was expected.
set -uo pipefail
script="$TEST_SRCDIR/$TEST_WORKSPACE/tools/run_swgan_figure1.sh"
out="$TEST_TMPDIR/out"
failures=0

# expect_rejected <message fragment> <args...>
expect_rejected() {
  local want="$1"; shift
  local stderr rc
  stderr=$(bash "$script" --out="$out" "$@" 2>&1 >/dev/null)
  rc=$?
  if ((rc != 2)); then
    echo "FAIL: $* exited $rc, expected 2 (stderr: $stderr)"; failures=$((failures + 1))
  elif [[ $stderr != *"$want"* ]]; then
    echo "FAIL: $*: stderr '$stderr' does not contain '$want'"; failures=$((failures + 1))
  else
    echo "ok: $* -> $stderr"
  fi
}

expect_rejected "--lanes: expected a positive integer, got '0'" --lanes=0
expect_rejected "--lanes: expected a positive integer, got 'two'" --lanes=two
expect_rejected "--stages: expected increasing step counts, got '5,3'" --stages=5,3
expect_rejected "--stages: expected increasing step counts, got '10,10'" --stages=10,10
expect_rejected "--stages: expected increasing step counts like 10000,50000, got '1e4'" --stages=1e4
expect_rejected "--stages: expected increasing step counts like 10000,50000, got ''" --stages=
expect_rejected "--panels: expected letters a-h, got 'ax'" --panels=ax
expect_rejected "--precision: expected bf16 or float32, got 'fp16'" --precision=fp16
expect_rejected "unknown argument '--steps=5'" --steps=5
if [[ -e $out ]]; then echo "FAIL: a rejected call created $out"; failures=$((failures + 1)); fi
((failures == 0)) || { echo "$failures failure(s)"; exit 1; }
