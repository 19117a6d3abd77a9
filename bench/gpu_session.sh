#!/usr/bin/env bash
# The GPU checks and runs of the training issue, as one script per device call (one H100; results under $OUT).
#
#   bench/gpu_session.sh check           the GPU path works and how fast it is, to size the main phase (~2 min):
#                                        a smoke run stopped and resumed on the GPU, the imagenette64 preset alone
#                                        for 3 epochs, then the four arms together for 2 epochs
#   EPOCHS=N ARMS_S=S bench/gpu_session.sh main
#                                        the step and multi-crop benchmarks alone on the GPU; then the four arms
#                                        (mst, none, random, plain DINO) together for N epochs each, stopped at S
#                                        seconds if they run late, while the notebook tests run with their cuda
#                                        cells; then one table (bench/collect_runs.py). Also: bench/syncs.py (host waits
#                                        per step) and bench/jpeg.py (a folder of 400-px JPEGs end to end, decoded
#                                        in workers and on the GPU)
#   EPOCHS=N ARMS_S=S [GAMMA=G] bench/gpu_session.sh attention
#                                        does the imagenette64 preset's teacher attend by position after a few minutes
#                                        (issue 27, item 5)? MST, MST with the habit penalty (weight G, default 0.02)
#                                        and plain DINO together for N epochs (stopped at S seconds), each logging its
#                                        attention measures every 5 epochs; then bench/attention.py's table of the three
#                                        and the shipped teacher, in $OUT/attention/
#   EPOCHS=N ARMS_S=S bench/gpu_session.sh seeds
#                                        the four arms at the imagenette64 preset's small-data recipe for seeds 0, 1
#                                        and 2 (one seed's four arms at a time, each round stopped at S/3 seconds);
#                                        one table per seed (bench/collect_runs.py); the runs' log.csv, config.json
#                                        and summary.json come back under $OUT/runs/
#
# Before the call, on the development machine: wheels of what the GPU image lacks in .whl/ (fastai, fastcore,
# fastprogress and their needs, nbdev for the notebook tests, timm at our pin) and ../shared/data/imagenette64
# copied to .data/; both folders are git-ignored and travel through the device tool's `carry`.
set -u
PHASE=${1:?usage: bench/gpu_session.sh check|main|attention|seeds}
OUT=${OUT:-$PWD/bench/out}; mkdir -p "$OUT"
RUNS=/tmp/runs; mkdir -p $RUNS
DATA=${DATA:-npz:.data/imagenette64}
EXTRA=${EXTRA:-}  # more train flags (a local dry run of this script shrinks the model with them)
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 MPLBACKEND=Agg OMP_NUM_THREADS=3
if [ -d .whl ] && [ -z "${SKIP_WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    >/dev/null 2>&1 || { echo 'wheel install failed'; exit 3; }
  export PYTHONPATH=$PWD:/tmp/site
else export PYTHONPATH=$PWD; fi
PY=${PY:-python3}
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/session.log"; }
run() { log "\$ $*"; "$@" 2>&1 | tee -a "$OUT/session.log"; }
arm_flags() {  # the four arms: same preset, data and budget; only masking and the decoder differ
  case $1 in
    mst) echo --mask-strategy mst ;;  none) echo --mask-strategy none ;;  random) echo --mask-strategy random ;;
    dino) echo --mask-strategy none --use-decoder false ;;
  esac
}
arms() {  # arms EPOCHS WARMUP KNN_EVERY SAVE_EVERY DEADLINE_S TAG [SEED]: the four arms at once on the one GPU
  local pids=()
  for a in mst none random dino; do
    timeout "$5" $PY -m mst_nb.train --preset imagenette64 --data $DATA --epochs "$1" --warmup-epochs "$2" \
      --knn-every "$3" --save-every "$4" --seed "${7:-0}" $(arm_flags $a) $EXTRA --out $RUNS/$6$a > $RUNS/$6$a.log 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"   # not a bare wait: the nvidia-smi sampler runs in the background until the end
  for a in mst none random dino; do log "$6$a: $(tr '\r' '\n' < $RUNS/$6$a.log | grep -E 'k-NN|images/s|error|Error' | tr '\n' ' ')"; done
  $PY bench/collect_runs.py $RUNS/$6mst $RUNS/$6none $RUNS/$6random $RUNS/$6dino | tee -a "$OUT/report.md"
}

log "phase $PHASE"
run nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
run $PY -c "import torch, timm, fastai, accelerate; print('torch', torch.__version__, 'timm', timm.__version__, 'fastai', fastai.__version__, 'accelerate', accelerate.__version__)"
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 5 > "$OUT/gpu_use.csv" 2>&1 &
SMI=$!

if [ "$PHASE" = check ]; then
  run $PY -m mst_nb.train --preset smoke --epochs 1 --out $RUNS/smoke
  run $PY -m mst_nb.train --preset smoke --epochs 2 --resume auto --out $RUNS/smoke
  run $PY -m mst_nb.train --preset imagenette64 --data $DATA --epochs 3 --warmup-epochs 1 --knn-every 3 $EXTRA --out $RUNS/solo
  run cat $RUNS/solo/log.csv
  echo '## check: four arms together, 2 epochs' >> "$OUT/report.md"
  arms 2 1 2 2 150 probe_
  for a in mst dino; do run cat $RUNS/probe_$a/log.csv; done
elif [ "$PHASE" = main ]; then
  EPOCHS=${EPOCHS:?set EPOCHS}; ARMS_S=${ARMS_S:?set ARMS_S}; WARM=$(( (EPOCHS + 9) / 10 ))
  { echo '## step (bench/step.py)'; } >> "$OUT/report.md"
  run $PY bench/step.py --device cuda --presets imagenette64 --batch 256 --steps 10 --warmup 3
  run $PY bench/step.py --device cuda --presets in1k_vit_small --batch 64 --steps 10 --warmup 3
  run $PY bench/step.py --device cuda --presets imagenette64 --batch 256 --steps 10 --warmup 5 --compile reduce-overhead
  run $PY bench/step.py --device cuda --presets in1k_vit_small --batch 64 --steps 10 --warmup 5 --compile default
  run $PY bench/multicrop.py --device cuda --iters 10 --batch 64 256 --compile default                  # eager and compiled crops
  run $PY bench/multicrop.py --device cuda --iters 10 --batch 64 256 --compile default --step --no-reference --presets in1k_vit_small   # crops' share of the compiled step (target < 10%)
  run $PY bench/syncs.py --data $DATA
  run $PY bench/loop.py --device cuda --preset imagenette64 --data $DATA
  run $PY bench/jpeg.py --device cuda --images 4096 --workers 8 16 --device-decode --folder /tmp/jpegs   # JPEG folders at ImageNet size
  ( timeout $((ARMS_S - 10)) $PY -m pytest tests/test_notebooks.py -q -ra -p no:cacheprovider > "$OUT/nbtests.log" 2>&1
    timeout 120 ${ACCELERATE:-accelerate} launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
      -m mst_nb.train --preset smoke --out $RUNS/accelerate >> "$OUT/nbtests.log" 2>&1 ) &
  TESTS=$!
  echo "## four arms together, $EPOCHS epochs ($WARM warm-up), imagenette64 preset" >> "$OUT/report.md"
  arms "$EPOCHS" "$WARM" 5 5 "$ARMS_S" ""
  wait $TESTS
  log "notebook tests: $(tail -3 "$OUT/nbtests.log" | tr '\n' ' ')"
elif [ "$PHASE" = attention ]; then
  EPOCHS=${EPOCHS:?set EPOCHS}; ARMS_S=${ARMS_S:?set ARMS_S}; WARM=$(( (EPOCHS + 9) / 10 ))
  declare -A FLAGS=([att_mst]='' [att_habit]="--attention-habit-weight ${GAMMA:-0.02}" [att_dino]='--mask-strategy none --use-decoder false')
  pids=()
  for n in att_mst att_habit att_dino; do
    timeout "$ARMS_S" $PY -m mst_nb.train --preset imagenette64 --data $DATA --epochs "$EPOCHS" --warmup-epochs "$WARM" \
      --knn-every 5 --save-every 5 ${FLAGS[$n]} $EXTRA --out $RUNS/$n > $RUNS/$n.log 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  for n in att_mst att_habit att_dino; do log "$n: $(tr '\r' '\n' < $RUNS/$n.log | grep -E 'k-NN|error|Error' | tail -3 | tr '\n' ' ')"; done
  echo "## attention after $EPOCHS epochs of the imagenette64 preset (issue 27, item 5)" >> "$OUT/report.md"
  run $PY bench/attention.py --pretrained $RUNS/att_mst $RUNS/att_habit $RUNS/att_dino --out "$OUT/attention"
  cat "$OUT/attention/table.md" >> "$OUT/report.md"
  for n in att_mst att_habit att_dino; do mkdir -p "$OUT/runs/$n"; cp $RUNS/$n/log.csv $RUNS/$n/config.json $RUNS/$n/summary.json "$OUT/runs/$n/" 2>/dev/null; done
elif [ "$PHASE" = seeds ]; then
  EPOCHS=${EPOCHS:?set EPOCHS}; ARMS_S=${ARMS_S:?set ARMS_S}; WARM=$(( (EPOCHS + 9) / 10 ))
  for seed in 0 1 2; do
    echo "## four arms together, seed $seed, $EPOCHS epochs ($WARM warm-up), imagenette64 preset" >> "$OUT/report.md"
    arms "$EPOCHS" "$WARM" 5 5 $((ARMS_S / 3)) "seed${seed}_" "$seed"
  done
  for d in $RUNS/seed*_*/; do n=$(basename "$d"); mkdir -p "$OUT/runs/$n"; cp "$d"/log.csv "$d"/config.json "$d"/summary.json "$OUT/runs/$n/" 2>/dev/null; done
fi
kill $SMI 2>/dev/null
tar czf "$OUT/runs.tgz" --exclude='*.pt' --exclude='*.safetensors' -C /tmp runs
log "done"
