#!/usr/bin/env bash
# Runs the eight MNIST panels of seed 001 Figure 1 (apps/swgan/configs/seed001_fig1?_*.pbtxt),
# resumably, in parallel lanes of one-thread runs, breadth first:
#
#   bash tools/run_swgan_figure1.sh [--out=DIR] [--lanes=N] [--stages=10000,50000]
#                                   [--precision=bf16|float32] [--panels=abcdefgh]
#
# Every panel is first run to the first stage (`--steps=10000`: the run ends there with its
# evaluation, sample grids and a checkpoint), then all of them to the next, and so on; the last
# stage should be the configs' 50000. A panel resumed from its checkpoint continues exactly as an
# uninterrupted run would (apps/common/training_loop.h), so the stages only order the work:
# evidence for all eight configs comes first. Run the script again after an interruption and it
# continues where it stopped. SIGINT/SIGTERM stop the runs, each writing a checkpoint
# (`pkill -TERM -f run_swgan_figure1.sh` when it runs in the background). --out is relative to
# the folder the script is run from.
#
# Panels go to lanes round robin in the order of --panels (default a e b f c g d h: the two rows
# of the figure side by side). One lane per core is fastest on small machines: one panel's
# iteration scales poorly past one thread (a 2-core Zen 4: 3.1 it/s on one thread, 5.4 on two).
#
# Outputs: DIR/<config>/out (metrics.csv, samples_<step>.png, checkpoints; see the README),
# DIR/<config>/{stdout,stderr}.log, DIR/<config>/REACHED_<stage>, DIR/queue.log. Each panel keeps
# the binary it started with (DIR/<config>/bin, with the commit it was built from), so one run is
# never continued by another build. The first evaluation needs the MNIST classifier: it is
# trained here once (about 4-7 minutes) when ~/.cache/otgen has none.
set -uo pipefail
invoked_from="$PWD"
cd "$(dirname "$0")/.."

out="otgen_runs/swgan_figure1"
lanes=2
stages="10000,50000"
precision="bf16"
panels="aebfcgdh"
for arg in "$@"; do
  case "$arg" in
    --out=*) out="${arg#*=}" ;;
    --lanes=*) lanes="${arg#*=}" ;;
    --stages=*) stages="${arg#*=}" ;;
    --precision=*) precision="${arg#*=}" ;;
    --panels=*) panels="${arg#*=}" ;;
    *) echo "run_swgan_figure1.sh: unknown argument '$arg' (see the header of $0)" >&2; exit 2 ;;
  esac
done
if ! [[ $lanes =~ ^[1-9][0-9]*$ ]]; then echo "run_swgan_figure1.sh: --lanes: expected a positive integer, got '$lanes'" >&2; exit 2; fi
if ! [[ $stages =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]]; then
  echo "run_swgan_figure1.sh: --stages: expected increasing step counts like 10000,50000, got '$stages'" >&2; exit 2
fi
if [[ $precision != bf16 && $precision != float32 ]]; then
  echo "run_swgan_figure1.sh: --precision: expected bf16 or float32, got '$precision'" >&2; exit 2
fi
if ! [[ $panels =~ ^[a-h]+$ ]]; then echo "run_swgan_figure1.sh: --panels: expected letters a-h, got '$panels'" >&2; exit 2; fi
IFS=, read -r -a stage_list <<< "$stages"
for ((i = 1; i < ${#stage_list[@]}; ++i)); do
  if ((stage_list[i] <= stage_list[i - 1])); then
    echo "run_swgan_figure1.sh: --stages: expected increasing step counts, got '$stages'" >&2; exit 2
  fi
done
[[ $out == /* ]] || out="$invoked_from/$out"
mkdir -p "$out" && out="$(cd "$out" && pwd)" || exit 1

log() { echo "$(date '+%F %T') $*" | tee -a "$out/queue.log" >&2; }

# The binaries of the current checkout, copied (with their runfiles) under a temporary name and
# renamed into place, so a run started earlier keeps its own copy.
bazel build -c opt //apps/swgan //apps/eval:train_mnist_classifier || exit 1
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo +changes)"
bin="$out/bin"
rm -rf "$bin.tmp" && mkdir -p "$bin.tmp" &&
  cp -L bazel-bin/apps/swgan/swgan "$bin.tmp/swgan" &&
  cp -rL bazel-bin/apps/swgan/swgan.runfiles "$bin.tmp/swgan.runfiles" &&
  echo "$commit" > "$bin.tmp/COMMIT" || exit 1
rm -rf "$bin.old" && { [[ ! -e $bin ]] || mv "$bin" "$bin.old"; } && mv "$bin.tmp" "$bin" && rm -rf "$bin.old" || exit 1
bazel-bin/apps/eval/train_mnist_classifier --threads=1 || exit 1

# Runs the lane's panels through every stage; stops at the first failure or signal.
run_lane() {
  local stage letter cfg name dir rc
  for stage in "${stage_list[@]}"; do
    for letter in "$@"; do
      cfg=$(ls apps/swgan/configs/seed001_fig1"${letter}"_*.pbtxt) || return 1
      name=$(basename "$cfg" .pbtxt)
      dir="$out/$name"
      [[ -f $dir/REACHED_$stage ]] && continue
      mkdir -p "$dir"
      if [[ ! -x $dir/bin/swgan ]]; then
        rm -rf "$dir/bin.tmp" && cp -a "$bin" "$dir/bin.tmp" && mv "$dir/bin.tmp" "$dir/bin" || return 1
      fi
      log "start $name to step $stage ($(cat "$dir/bin/COMMIT"))"
      "$dir/bin/swgan" --config="$cfg" --output_dir="$dir/out" --precision="$precision" --threads=1 --resume \
        --steps="$stage" >> "$dir/stdout.log" 2>> "$dir/stderr.log"
      rc=$?
      log "end $name at stage $stage: exit $rc"
      if ((rc != 0)); then
        echo "run_swgan_figure1.sh: $name stopped (exit $rc); its log: $dir/stderr.log" >&2
        return "$rc"
      fi
      touch "$dir/REACHED_$stage"
    done
  done
}

declare -a lane_panels=()
for ((i = 0; i < ${#panels}; ++i)); do lane_panels[i % lanes]+="${panels:i:1} "; done
pids=()
# The runs are the lanes' children: each checkpoints on SIGTERM and exits non-zero, which ends
# its lane. The lanes themselves ignore the signal (a no-op trap) so that they log the exit.
stop() {
  log "signal: stopping the runs (each writes a checkpoint)"
  local pid
  for pid in "${pids[@]}"; do pkill -TERM -P "$pid" 2>/dev/null; done
}
trap stop INT TERM
for ((l = 0; l < lanes && l < ${#panels}; ++l)); do
  # shellcheck disable=SC2086  # the lane's letters, one word each
  (trap ':' INT TERM; run_lane ${lane_panels[l]}) &
  pids+=($!)
  log "lane $l: panels ${lane_panels[l]}"
done
status=0
for pid in "${pids[@]}"; do
  while :; do
    wait "$pid"; rc=$?
    # A trapped signal interrupts wait with a status above 128 while the lane still runs.
    if kill -0 "$pid" 2>/dev/null; then continue; fi
    break
  done
  ((rc != 0)) && status=$rc
done
((status == 0)) && log "all panels reached step ${stage_list[-1]}"
exit "$status"
