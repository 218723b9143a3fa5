# Shared setup for the end-to-end tests: a scratch dir, Fashion-MNIST shards, a tiny config.
set -euo pipefail
: "${SSLRUN:?set SSLRUN to the sslrun binary}"
: "${SSL_SOURCE:?set SSL_SOURCE to the source tree}"
FMNIST=/usr/share/datasets/fashion-mnist
WORK=$(mktemp -d /tmp/sslrun-e2e.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

need_fmnist() {
  [ -f "$FMNIST/t10k-images-idx3-ubyte.gz" ] || { echo "no $FMNIST: skipping"; exit 77; }
  "$SSLRUN" prep fashion-mnist --out "$WORK/data" >/dev/null 2>&1 || fail "prep failed"
}

# A tiny SimCLR run: width-4 ResNet-18, 512 images, batch 64 -> 8 steps per epoch.
write_config() {
  cat > "$WORK/tiny.yaml" <<YAML
run: {name: tiny, out_dir: "$WORK/runs", seed: 3, log_every: 1}
model: {arch: resnet18, small_stem: true, width: 4, img_size: 16}
method: {name: simclr}
simclr: {temperature: 0.5, proj_hidden: 32, proj_dim: 16}
data: {train: "$WORK/data/train-*.h5", test: "$WORK/data/test-*.h5", batch_size: 64, limit: 512, workers: 2}
augment: {crop_scale: [0.3, 1.0], brightness: 0.4, contrast: 0.4, saturation: 0.0, hue: 0.0, grayscale_p: 0.0}
optim: {name: lars, lr: 0.5, lr_scaling: linear, weight_decay: 0.000001}
schedule: {epochs: 2, warmup_epochs: 0.5}
checkpoint: {every_steps: 0, keep: 2}
eval: {knn_k: [5], linear_epochs: 2}
YAML
}

# run_epoch NAME overrides...: one epoch of the tiny config (8 steps) as run NAME, log in $WORK/NAME.log
run_epoch() {
  local name=$1 rc=0; shift
  "$SSLRUN" "$WORK/tiny.yaml" run.name="$name" schedule.epochs=1 "$@" >"$WORK/$name.log" 2>&1 || rc=$?
  [ $rc = 0 ] || { tail -5 "$WORK/$name.log"; fail "$name: exit $rc"; }
}

# "step loss" pairs of a run's metrics.jsonl, last record per step (a resumed run re-logs steps).
losses() {
  sed -nE 's/.*"step":([0-9]+).*"loss":([^,]+).*/\1 \2/p' "$1" | awk '{v[$1]=$2} END {for (s in v) print s, v[s]}' | sort -n
}

# same_finetune DIR_A DIR_B WHAT: two fine-tuning runs logged losses, the same ones, and the same top-1
same_finetune() {
  [ "$(losses "$1/metrics.jsonl" | wc -l)" -gt 0 ] || fail "$3: no losses logged"
  diff <(losses "$1/metrics.jsonl") <(losses "$2/metrics.jsonl") >/dev/null || fail "$3: losses differ"
  diff <(grep -o '"top1": [0-9.]*' "$1/finetune.json") <(grep -o '"top1": [0-9.]*' "$2/finetune.json") ||
    fail "$3: top-1 differs"
}

# resumed LOG CKPT_STEP: the run says it resumed, and from that step.
resumed() {
  grep -q "resumed from .*ckpt-$(printf %010d "$2").h5 at step $2\$" "$1" || { cat "$1"; fail "$1: did not say it resumed at step $2"; }
}
# once METRICS: every step has one record (a resumed run continues one history, it does not re-log).
once() {
  local dup
  dup=$(sed -nE 's/.*"step":([0-9]+).*"loss".*/\1/p' "$1" | sort -n | uniq -d | head -3 | tr '\n' ' ')
  [ -z "$dup" ] || fail "$1: steps logged twice: $dup"
}

# For the tests that run sslrun under mpirun: Open MPI as root, oversubscribed, one OpenMP thread
# per rank, and no leak detection in sanitized MPI processes (see tests/CMakeLists.txt).
mpi_env() {
  : "${MPIEXEC:?set MPIEXEC to mpirun}"
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
  if [ -n "${SSL_MPI_SAN_ENV:-}" ]; then export "${SSL_MPI_SAN_ENV?}"; fi
}

# For the equivalence tests (test_mpi_equiv, test_methods_equiv): tolerances derived in
# test_mpi_equiv.sh's header, and "go NP NAME overrides..." (one epoch, 8 steps of 64), "final NAME"
# (its last checkpoint), "same REF RUN [datasets...]" (losses of every step and final tensors agree).
equiv_setup() {
  : "${CKPT_COMPARE:?set CKPT_COMPARE}"
  TOL_LOSS=$(awk 'BEGIN {printf "%.3e", 2^-23 * sqrt(64 * 2 * 16 * 16) * 8}')
  TOL_W=$(awk -v t="$TOL_LOSS" 'BEGIN {printf "%.3e", t * 8}')
  echo "tolerances: loss $TOL_LOSS, tensors $TOL_W"
}

go() { # go NP NAME overrides...: one epoch (8 steps of 64)
  local np=$1 name=$2; shift 2
  local cmd=("$SSLRUN" "$WORK/tiny.yaml" run.name="$name" schedule.epochs=1 "$@")
  if [ "$np" = 1 ]; then "${cmd[@]}"; else "$MPIEXEC" --oversubscribe -np "$np" "${cmd[@]}"; fi >"$WORK/$name.log" 2>&1 ||
    { cat "$WORK/$name.log"; fail "$name: run failed"; }
}
final() { echo "$WORK/runs/$1/checkpoints/ckpt-0000000008.h5"; }
same() { # same REF RUN [datasets...]: losses of every step and final tensors within tolerance
  local ref=$1 run=$2; shift 2
  local args=()
  for d in "$@"; do args+=(--dataset "$d"); done
  [ "$(losses "$WORK/runs/$run/metrics.jsonl" | wc -l)" = 8 ] || fail "$run: expected 8 logged steps"
  paste <(losses "$WORK/runs/$ref/metrics.jsonl") <(losses "$WORK/runs/$run/metrics.jsonl") |
    awk -v tol="$TOL_LOSS" -v run="$run" '{ if ($1 != $3) exit 2; d = $2 - $4; if (d < 0) d = -d; r = d / ($2 < 0 ? -$2 : $2);
      if (r > m) m = r } END { printf "%s: loss max rel diff %.2e\n", run, m; exit m <= tol ? 0 : 1 }' ||
    fail "$run: losses differ from $ref beyond $TOL_LOSS"
  "$CKPT_COMPARE" "$(final "$ref")" "$(final "$run")" --rtol "$TOL_W" "${args[@]}" | sed "s/^/$run: /" ||
    { "$CKPT_COMPARE" -v "$(final "$ref")" "$(final "$run")" "${args[@]}" | sort -g -k3 -t= | tail -5; fail "$run: tensors differ from $ref"; }
}
