#!/usr/bin/env bash
# The GPU benchmark, in one command on a machine with an NVIDIA GPU, its driver and a Python with
# PyTorch (CUDA), but no Node.js and no network. bench/gpu/pack.sh builds what it needs into
# bench/gpu/.carry on the build machine; carry that folder with the working tree.
#
# Prints, and writes to $OUT/gpu-bench.md when OUT is set, training and inference img/s of
#   - our torch engine (what engine.backend "torch" trains with) on CUDA, on batches in memory and
#     from a patch cache it reads itself (as idc train runs it: Macenko, flips, rotation on the GPU),
#   - WebGPU (Dawn on the NVIDIA Vulkan driver; the row says why when no Vulkan ICD is found),
#   - ../shared/bench/torch_reference.py (the same CNN in plain PyTorch) on the same card,
# then a 2-epoch `idc train --backend torch` on the full-scale synthetic archive (279 patients)
# with each epoch's validation AUC. Not run on a GPU yet; estimated 3-6 minutes there. Every step
# has a time limit inside IDC_GPU_BENCH_BUDGET, so the command ends within about 8 minutes.
#
#   bash bench/gpu/run.sh            the GPU run
#   bash bench/gpu/run.sh --dry      the same path on the CPU with tiny sizes (torch on cpu,
#                                    WebGPU on any adapter, lavapipe included); IDC_GPU_BENCH_DRY=1 too
# Environment: IDC_GPU_BENCH_PYTHON (default python3; --dry: /usr/bin/python3), IDC_GPU_BENCH_BUDGET
# (seconds for the whole run, default 420), IDC_GPU_BENCH_KEEP=1 (keep the archive and patch cache).
# Exit: 0 every row and both epochs done; 1 something it needs is missing (nothing run); 2 usage;
# 3 the table is incomplete (a row failed or was skipped, or training ran out of time).
set -uo pipefail
T0=$SECONDS
cd "$(dirname "$0")/../.."
CARRY=$PWD/bench/gpu/.carry

DRY=${IDC_GPU_BENCH_DRY:-0}
for a in "$@"; do
  case $a in
    --dry) DRY=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $a (try --help)" >&2; exit 2 ;;
  esac
done
BUDGET=${IDC_GPU_BENCH_BUDGET:-420}

die() { echo "run.sh: $*" >&2; exit 1; }
log() { printf '[%3ds] %s\n' $((SECONDS - T0)) "$*"; }

# ------------------------------------------------------------------ what must be here
[ -f "$CARRY/node.xz" ] && [ -f "$CARRY/app.tar.xz" ] ||
  die "$CARRY is missing or incomplete: run 'bash bench/gpu/pack.sh' on the build machine and name bench/gpu/.carry in the call's carry."
if [ "$DRY" = 1 ]; then
  PY=${IDC_GPU_BENCH_PYTHON:-/usr/bin/python3}; DEVICE=cpu
else
  PY=${IDC_GPU_BENCH_PYTHON:-python3}; DEVICE=cuda
fi
command -v "$PY" >/dev/null || die "$PY not found: set IDC_GPU_BENCH_PYTHON to a Python with PyTorch."
"$PY" -c 'import torch, numpy' 2>/dev/null || die "$PY has no torch or numpy (pip install torch numpy; or set IDC_GPU_BENCH_PYTHON)."
"$PY" -c 'import lzma, tarfile' 2>/dev/null || die "$PY has no lzma module: it cannot unpack the carry."
if [ "$DRY" != 1 ]; then
  command -v nvidia-smi >/dev/null || die "nvidia-smi not found: no NVIDIA driver here (use --dry to try the script on a CPU)."
  "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' ||
    die "torch $("$PY" -c 'import torch; print(torch.__version__)') sees no CUDA device (CPU-only build, or the GPU is not visible)."
fi

W=$(mktemp -d /tmp/idc-gpu-bench.XXXXXX)
mkdir -p "$W/rows" "$W/logs" "$W/full"
log "unpacking the carry into $W"
"$PY" - "$CARRY" "$W" <<'PY' || die "could not unpack $CARRY (rerun bench/gpu/pack.sh)."
import lzma, shutil, sys, tarfile, os
carry, w = sys.argv[1:]
with lzma.open(f'{carry}/node.xz') as src, open(f'{w}/node', 'wb') as dst: shutil.copyfileobj(src, dst, 1 << 20)
os.chmod(f'{w}/node', 0o755)
with tarfile.open(f'{carry}/app.tar.xz') as t: t.extractall(f'{w}/app')
PY
NODE=$W/node APP=$W/app
"$NODE" --version >/dev/null 2>"$W/logs/node.err" || die "the carried Node does not run here: $(head -c 300 "$W/logs/node.err")"
cmp -s "$APP/run.sh.packed" "$0" || log "note: bench/gpu/.carry was packed with another run.sh; rerun pack.sh if this run fails"

# ------------------------------------------------------------------ Vulkan for Dawn
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$W/xdg}; mkdir -p "$XDG_RUNTIME_DIR"
ICD="" ICD_NOTE=""
if [ "$DRY" != 1 ]; then
  searched=()
  for v in "${VK_DRIVER_FILES:-}" "${VK_ICD_FILENAMES:-}"; do IFS=: read -ra parts <<< "$v"; searched+=("${parts[@]}"); done
  searched+=(/usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d /usr/local/nvidia/etc/vulkan/icd.d)
  for d in "${searched[@]}"; do
    for f in "$d" "$d"/nvidia*.json; do
      [ -f "$f" ] && grep -qi nvidia "$f" 2>/dev/null && { ICD=$f; break 2; }
    done
  done
  # An ICD naming a bare soname (libGLX_nvidia.so.0) needs the driver's own folder on the path.
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do [ -d "$d" ] && export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d; done
  if [ -n "$ICD" ]; then export VK_DRIVER_FILES=$ICD VK_ICD_FILENAMES=$ICD
  else ICD_NOTE="no NVIDIA Vulkan ICD found (no nvidia*.json in $(IFS=,; echo "${searched[*]}" | sed 's/,/, /g')), so Dawn has no driver for this GPU"; fi
fi
# The Vulkan loader (and glvnd's dispatch library, which NVIDIA's ICD links) where the image has none.
missing=$(for lib in libvulkan.so.1 libGLdispatch.so.0; do ldconfig -p 2>/dev/null | grep -q "^[[:space:]]*$lib " || echo "$lib"; done)
if [ -n "$missing" ]; then export LD_LIBRARY_PATH=$APP/vk${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}; log "using the carried $(echo $missing)"; fi

# ------------------------------------------------------------------ what ran where
{
  echo "IDC Inspector GPU benchmark, $(date -u '+%F %H:%M UTC')$([ "$DRY" = 1 ] && echo ' — DRY RUN on the CPU with tiny sizes: these figures say nothing about a GPU')"
  [ "$DRY" != 1 ] && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/GPU: /'
  echo "CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "Node $("$NODE" --version) (carried); $("$PY" -c 'import sys, torch; print(f"Python {sys.version.split()[0]} ({sys.executable}), PyTorch {torch.__version__}, CUDA {torch.version.cuda}")')"
  echo "Vulkan ICD: ${ICD:-${ICD_NOTE:-system default}}${LD_LIBRARY_PATH:+; LD_LIBRARY_PATH=$LD_LIBRARY_PATH}"
  [ -f "$CARRY/manifest.txt" ] && echo "carry: $(head -1 "$CARRY/manifest.txt")"
} > "$W/env.txt"
cat "$W/env.txt"

left() { echo $((BUDGET - (SECONDS - T0))); }
# cap LIMIT: LIMIT, or less so the run ends inside its budget with 20 s for the table (10 s at least).
cap() { local l=$(( $(left) - 20 )); [ "$l" -ge 10 ] || l=10; echo $(( $1 < l ? $1 : l )); }
# phase NAME TIMEOUT NOTE CMD...: runs CMD with a time limit, logs it, and records the seconds taken.
phase() {
  local name=$1 limit note=$3; limit=$(cap "$2"); shift 3
  local t=$EPOCHREALTIME rc
  log "$name (limit ${limit}s)"
  timeout --kill-after=10 "$limit" "$@" > "$W/logs/$name.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.2f", b - a}')" "$rc" "$note" >> "$W/timings.tsv"
  [ $rc -eq 0 ] || log "$name: $([ $rc -eq 124 ] && echo "timed out after ${limit}s" || echo "exit $rc"): $(tail -n 3 "$W/logs/$name.log" | tr '\n' ' ')"
  return $rc
}
row() {  # row KIND LIMIT ARGS...: one throughput row in its own process
  local kind=$1 limit rc why; limit=$(cap "$2"); shift 2
  log "row $kind (limit ${limit}s)"
  timeout --kill-after=10 "$limit" "$NODE" "$APP/dist/bench-gpu.js" row "$kind" --json "$W/rows/$kind.json" --python "$PY" --device "$DEVICE" "$@" > "$W/logs/row-$kind.log" 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then
    why=$([ $rc -eq 124 ] && echo "timed out after ${limit}s" || echo "failed (exit $rc): $(grep -v '^\s*at ' "$W/logs/row-$kind.log" | tail -n 2 | tr '\n' ' ')")
    echo "$why" > "$W/rows/$kind.skipped"; rm -f "$W/rows/$kind.json"; log "row $kind $why"
  else
    log "$(tail -n 1 "$W/logs/row-$kind.log")"
  fi
}

# ------------------------------------------------------------------ throughput rows
if [ "$DRY" = 1 ]; then SIZES=(--batches 16 --infer 32 --steps 2); else SIZES=(--batches 64,256,1024 --infer 256,1024 --steps 20); fi
row torch 90 "${SIZES[@]}"
row torch-rows 90 "${SIZES[@]}"
if [ -n "$ICD_NOTE" ]; then
  echo "not run: $ICD_NOTE" > "$W/rows/webgpu.skipped"; log "row webgpu skipped: $ICD_NOTE"
else
  row webgpu $([ "$DRY" = 1 ] && echo 240 || echo 120) "${SIZES[@]}" $([ "$DRY" = 1 ] && echo --allow-software-adapter)
fi
row reference 90 "${SIZES[@]}" --reference "$APP/torch_reference.py"

# ------------------------------------------------------------------ full-scale 2 epochs
cd "$W/full"
if [ "$DRY" = 1 ]; then
  PATIENTS=8
  echo "{\"paths\":{\"archive\":\"archive\",\"output\":\"out\"},\"engine\":{\"backend\":\"torch\",\"python\":\"$PY\"},\"train\":{\"epochs\":2,\"batchSize\":16,\"stepsPerEpoch\":5}}" > idc.config.json
else
  PATIENTS=279
  echo "{\"paths\":{\"archive\":\"archive\",\"output\":\"out\"},\"engine\":{\"backend\":\"torch\",\"python\":\"$PY\"},\"train\":{\"epochs\":2}}" > idc.config.json
fi
IDC=("$NODE" "$APP/dist/cli.js")
phase synth 150 "$PATIENTS patients" "${IDC[@]}" synth archive --patients "$PATIENTS" &&
  sed -i "\$s/\$/, $(grep -o '[0-9]* patches' "$W/logs/synth.log" | head -1)/" "$W/timings.tsv" &&
  phase organize 120 "" "${IDC[@]}" organize &&
  phase split 60 "" "${IDC[@]}" split &&
  phase train 600 "patch cache build + 2 epochs on the torch engine ($DEVICE), validation each epoch" "${IDC[@]}" train --epochs 2 --backend torch
cd - >/dev/null

# ------------------------------------------------------------------ the table
"$NODE" "$APP/dist/bench-gpu.js" report --dir "$W" > "$W/gpu-bench.md"
status=$?
echo; cat "$W/gpu-bench.md"
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"; cp "$W/gpu-bench.md" "$OUT/"
  # One log file: $OUT returns at most 8 files.
  for f in "$W"/logs/*.log; do echo "===== $(basename "$f")"; tail -n 60 "$f"; done > "$OUT/gpu-bench-logs.txt"
fi
# The archive and patch cache are most of the folder (GBs at full scale); logs and the run stay.
[ "${IDC_GPU_BENCH_KEEP:-0}" = 1 ] || rm -rf "$W/full/archive" "$W/full/out/cache"
log "done in $((SECONDS - T0)) s; work folder $W"
case $status in
  0) exit 0 ;;
  3) echo "run.sh: the table is incomplete (see the rows and steps above)" >&2; exit 3 ;;
  *) echo "run.sh: the report failed (exit $status)" >&2; exit 3 ;;
esac
