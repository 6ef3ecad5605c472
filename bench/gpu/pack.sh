#!/usr/bin/env bash
# Builds bench/gpu/.carry, everything bench/gpu/run.sh needs on a GPU machine that has Python with
# PyTorch but no Node.js, no node_modules and no network:
#   node.xz       this machine's Node binary (linux-x64), xz-compressed
#   app.tar.xz    the linux-x64 extension layout (scripts/package-targets.mjs --stage: bundles, wasm,
#                 engines/torch, Dawn under dist/node_modules), dist/bench-gpu.js, torch_reference.py
#                 and the Vulkan loader (vk/), for machines whose image has none
#   manifest.txt  what went in, with sizes
# Prints the sizes: a device call carries at most 64 MiB, working tree included.
#   usage: bash bench/gpu/pack.sh        (then name bench/gpu/.carry in the call's carry)
set -euo pipefail
trap 'echo "pack.sh: failed (exit $?) at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/../.."
ROOT=$PWD
CARRY=bench/gpu/.carry
REFERENCE=${IDC_TORCH_REFERENCE:-$ROOT/../shared/bench/torch_reference.py}

die() { echo "pack.sh: $*" >&2; exit 1; }
[ "$(uname -m)" = x86_64 ] || die "this machine is $(uname -m); the GPU machine is x86-64, so its Node binary must come from an x86-64 machine."
command -v xz >/dev/null || die "xz is missing (Debian/Ubuntu: apt-get install xz-utils)."
[ -f "$REFERENCE" ] || die "$REFERENCE is missing: the PyTorch reference (set IDC_TORCH_REFERENCE to its path)."
NODE=$(command -v node) || die "node is not on PATH."
NODE=$(readlink -f "$NODE")
# The GPU machine's glibc is 2.39 (Ubuntu 24.04); a Node linked against a newer one would not start there.
need_glibc=$(objdump -T "$NODE" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 || true)
echo "pack.sh: Node $("$NODE" --version) from $NODE${need_glibc:+ (needs $need_glibc)}"

npm run --silent build
STAGE=$(mktemp -d /tmp/idc-gpu-pack.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
node scripts/package-targets.mjs --stage "$STAGE/app" linux-x64 >/dev/null
node_modules/.bin/esbuild bench/gpu/bench.ts --bundle --platform=node --format=cjs --target=node20 --log-level=warning \
  --external:sharp --external:webgpu --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
  --outfile="$STAGE/app/dist/bench-gpu.js"
cp "$REFERENCE" "$STAGE/app/torch_reference.py"
cp bench/gpu/run.sh "$STAGE/app/run.sh.packed"   # to tell a stale carry from the script that reads it

# Dawn dlopens libvulkan.so.1; the NVIDIA ICD (libGLX_nvidia) needs libGLdispatch.so.0 (glvnd).
mkdir -p "$STAGE/app/vk"
for lib in libvulkan.so.1 libGLdispatch.so.0; do
  src=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ && !found {print $NF; found = 1}')  # no early exit: pipefail would see SIGPIPE
  [ -n "$src" ] || die "$lib not found here (Debian/Ubuntu: apt-get install libvulkan1 libglvnd0); run.sh falls back on it where the GPU machine has none."
  cp -L "$src" "$STAGE/app/vk/$lib"
done

NODE_LINE="node $("$NODE" --version) $(stat -c %s "$NODE") bytes${need_glibc:+, needs $need_glibc}"
# The same Node as last time: keep its node.xz (compressing it is most of this script's time).
if [ -f "$CARRY/node.xz" ] && grep -qxF "$NODE_LINE" "$CARRY/manifest.txt" 2>/dev/null; then
  mv "$CARRY/node.xz" "$STAGE/node.xz"
else
  echo "pack.sh: compressing Node (a minute or two)"
  xz -T0 -6 -c "$NODE" > "$STAGE/node.xz"
fi
rm -rf "$CARRY"; mkdir -p "$CARRY"
mv "$STAGE/node.xz" "$CARRY/node.xz"
tar -C "$STAGE/app" -cf - . | xz -T0 -6 > "$CARRY/app.tar.xz"
{
  echo "built $(date -u +%FT%TZ) from $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "$NODE_LINE"
  echo "torch_reference.py sha256 $(sha256sum "$REFERENCE" | cut -c1-16)"
  echo "run.sh sha256 $(sha256sum bench/gpu/run.sh | cut -c1-16)"
  (cd "$STAGE/app" && find . -type f -printf '%s\t%p\n' | sort -k2)
} > "$CARRY/manifest.txt"

carry=$(du -cb "$CARRY"/* | tail -1 | cut -f1)
tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo "pack.sh: $CARRY: node.xz $(mib "$(stat -c %s "$CARRY/node.xz")"), app.tar.xz $(mib "$(stat -c %s "$CARRY/app.tar.xz")"), $(mib "$carry") in all"
echo "pack.sh: with the working tree ($(mib "$tree")) a call carries $(mib $((carry + tree))) of its 64 MiB"
[ $((carry + tree)) -lt $((64 * 1048576)) ] || die "over the 64 MiB a device call carries."
