#!/usr/bin/env bash
# Installs everything otgen's build, tests and apps need on Debian bookworm.
#
# Idempotent: on a ready machine it checks the package list with dpkg and exits
# within seconds, without calling `apt-get update`. Run as root (or via sudo).
set -euo pipefail

PACKAGES=(
  bazel-bootstrap
  bazel-rules-java
  default-jdk-headless
  g++
  libeigen3-dev
  libdnnl-dev
  libabsl-dev
  libprotobuf-dev
  protobuf-compiler
  libgtest-dev
  libgmock-dev
  libbenchmark-dev
  libpng-dev
  libcairo2-dev
  libhdf5-dev
  pkg-config
  nodejs
  npm
)

missing=()
for p in "${PACKAGES[@]}"; do
  # nodejs/npm may come from elsewhere (e.g. nodesource); accept the commands.
  if [[ "$p" == nodejs ]] && command -v node >/dev/null 2>&1; then continue; fi
  if [[ "$p" == npm ]] && command -v npm >/dev/null 2>&1; then continue; fi
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  if [[ "$status" != ii* ]]; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup.sh: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "setup.sh: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup.sh: done"
