#!/usr/bin/env bash
# Installs what is missing: the Arm toolchain, QEMU, LLVM 19, Node and npm, clang with libFuzzer, Chromium (PNG
# plots) and Fashion-MNIST (Debian packages), rp2040js (npm, pinned by
# device_runners/rp2040js/package-lock.json) and the Python package with its pinned dependencies.
# Safe to run again; needs root (or sudo) for apt-get.
set -euo pipefail
PYTHON=${PYTHON:-python3}

need_apt=()
command -v arm-none-eabi-gcc >/dev/null || need_apt+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null || need_apt+=(qemu-system-arm)
command -v llvm-mca-19 >/dev/null || need_apt+=(llvm-19)  # apollo5-sim's Cortex-M55 timing model
command -v gcc >/dev/null || need_apt+=(gcc libc6-dev)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
# clang with libFuzzer and the sanitizer runtimes: the weight decoders' fuzz benchmark
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 \
  || need_apt+=(clang libclang-rt-14-dev)
command -v chromium >/dev/null || need_apt+=(chromium)  # kaleido renders PNG plots with it
[ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || need_apt+=(dataset-fashion-mnist)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# rp2040js, the independent RP2040 emulator the rp2040-sim cross-check runs (tests/test_rp2040js.py).
(cd "$(dirname "$0")/../device_runners/rp2040js" && npm ci --no-audit --no-fund --loglevel=error)

"$PYTHON" -m pip install -q --disable-pip-version-check -e ".[test]"
