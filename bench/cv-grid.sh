#!/usr/bin/env bash
# The evidence behind the training defaults: patient-grouped 5-fold cross-validation on the real
# sample (../shared/data/idc-sample, 16 patients), for each recipe and training seed, scored
# without and with test-time augmentation. Resumable: rerun to continue; finished folds are kept.
# Usage: bench/cv-grid.sh [work dir] [cli.js]   (about 1-2 h on 2 cores)
# Environment: IDC_GRID_RECIPES, IDC_GRID_SEEDS, IDC_SAMPLE, IDC_GRID_TTA (default "none dihedral"),
# IDC_GRID_BACKEND (default wasm; torch trains in the PyTorch engine with IDC_GRID_PYTHON, default
# /usr/bin/python3). A recipe's "+bn0.9" sets model.bnMomentum to 0.9.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$here/.idc-cv-grid}
cli=${2:-$here/dist/cli.js}
sample=${IDC_SAMPLE:-$here/../shared/data/idc-sample}
seeds=${IDC_GRID_SEEDS:-"1 2"}
# notebook = idc config init --preset notebook; defaults = idc config init; +macenko on either.
recipes=${IDC_GRID_RECIPES:-"notebook notebook+macenko defaults defaults+macenko"}
ttas=${IDC_GRID_TTA:-"none dihedral"}
backend=${IDC_GRID_BACKEND:-wasm}
python=${IDC_GRID_PYTHON:-/usr/bin/python3}
mkdir -p "$work/results"
cd "$work"
[ -f out/manifest.csv ] || node "$cli" organize "$sample" --out out -q
# Seed outer: a grid stopped early still compares every recipe on the same seeds.
for seed in $seeds; do
  for recipe in $recipes; do
    id="${recipe//+/-}-seed$seed"; id="${id//./}"
    for tta in $ttas; do
      # The recipe: the notebook preset or the defaults, then the variant, the seed and the scoring on top.
      preset=(); [[ $recipe == notebook* ]] && preset=(--preset notebook)
      node "$cli" config init "${preset[@]}" --force >/dev/null
      node -e '
        const fs = require("fs");
        const [recipe, seed, tta, backend, python] = process.argv.slice(1);
        const c = JSON.parse(fs.readFileSync("idc.config.json", "utf8"));
        c.paths.output = "out"; c.engine.backend = backend; c.train.seed = Number(seed); c.evaluate.tta = tta;
        if (backend === "torch") c.engine.python = python;
        if (recipe.includes("macenko")) c.data.stainNormalization = "macenko";
        if (recipe.includes("bn0.9")) c.model = { ...c.model, bnMomentum: 0.9 };
        fs.writeFileSync("idc.config.json", JSON.stringify(c, null, 2));
      ' "$recipe" "$seed" "$tta" "$backend" "$python"
      node "$cli" cv --folds 5 --seed 42 --id "$id" -q | tee "results/$id-$tta.log"
      mkdir -p "results/$id-$tta"
      cp "out/evals/$id/test/metrics.json" "out/evals/$id/test/predictions.csv" "results/$id-$tta/"
    done
  done
done
echo "Results in $work/results"
