#!/usr/bin/env bash
# Break the trainer on purpose and watch the tests catch it. Each mutation is one edit to a copy of
# the tree (the working tree is never touched), built in its own build directory; the listed tests
# must FAIL with it. Prints one line per mutation: caught by which test, or NOT CAUGHT (exit 1).
#   scripts/mutation_check.sh            all mutations
#   scripts/mutation_check.sh NAME...    some of them
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
COPY=${SSL_MUT_DIR:-/tmp/sslrun-mutants}
rm -rf "$COPY/src" && mkdir -p "$COPY/src"
tar -C "$SRC" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$COPY/src" -xf -
cmake -S "$COPY/src" -B "$COPY/build" -DCMAKE_BUILD_TYPE=Release >/dev/null

# name | file | sed expression | tests (ctest -R regex) that must fail
MUTANTS=(
  "no-bn-comm|launch/pretrain.c|s/t->s.ctx.bn_comm = cfg->model.sync_bn ? t->comm : NULL;/t->s.ctx.bn_comm = NULL;/|test_mpi_equiv"
  "no-grad-allreduce|launch/pretrain.c|s/^ *ssl_allreduce(comm, t.s.params.grad, t.s.params.numel, SSL_F32, SSL_AVG);//|test_mpi_equiv"
  "grad-sum-not-avg|launch/pretrain.c|s/t.s.params.numel, SSL_F32, SSL_AVG);/t.s.params.numel, SSL_F32, SSL_SUM);/|test_mpi_equiv"
  "resume-keeps-fresh-weights|launch/pretrain.c|s/^            step = ck.step;/            step = ck.step; ssl_params_init_values(\&t.s.params, (uint64_t)cfg.run.seed);/|test_resume|test_mpi_equiv|test_ckpt_damage"
  "no-checksum|io/checkpoint.c|s/^        H5Pset_fletcher32(dcpl);//|test_ckpt_damage"
  "no-fallback|io/ckpt_resume.c|s/if (rc == SSL_CKPT_INCOMPATIBLE) break;/break;/|test_ckpt_damage"
  "no-clip|launch/pretrain.c|s/gnorm = ssl_optim_clip_global_norm(/gnorm = ssl_optim_grad_norm(/; s/(float)cfg.optim.clip_grad, 1.0f \/ (float)t.accum);/1.0f \/ (float)t.accum);/|test_mpi_equiv"
  "metrics-relogged|launch/pretrain.c|s/ssl_metrics_open(\&t.metrics, path, step)/ssl_metrics_open(\&t.metrics, path, 1LL << 62)/|test_resume|test_ckpt_damage"
  "no-replica-check|launch/pretrain.c|s/    if (replicas_agree(t, step, err, errlen)) return -1;/    if (0 \&\& replicas_agree(t, step, err, errlen)) return -1;/|test_mpi_faults"
  "accum-no-scale|launch/pretrain.c|s/oc.grad_scale = 1.0f \/ (float)t->accum;/oc.grad_scale = 1.0f;/|test_mpi_equiv"
)
want=("$@")
bad=0
for m in "${MUTANTS[@]}"; do
  IFS='|' read -r name file expr tests <<<"$m"
  tests=${m#*|*|*|}
  if [ ${#want[@]} -gt 0 ] && ! printf '%s\n' "${want[@]}" | grep -qx "$name"; then continue; fi
  cp "$SRC/$file" "$COPY/src/$file"
  sed -i "$expr" "$COPY/src/$file"
  if cmp -s "$SRC/$file" "$COPY/src/$file"; then echo "$name: the edit did not apply (stale mutation)"; bad=1; continue; fi
  if ! cmake --build "$COPY/build" -j"$(nproc)" >"$COPY/build.log" 2>&1; then
    echo "$name: does not build"; tail -5 "$COPY/build.log"; bad=1
  else
    caught=()
    IFS='|' read -ra ts <<<"$tests"
    for t in "${ts[@]}"; do
      (cd "$COPY/build" && ctest -R "^$t\$" >"$COPY/$name-$t.log" 2>&1) || caught+=("$t")
    done
    if [ ${#caught[@]} -gt 0 ]; then echo "$name: caught by ${caught[*]}"; else echo "$name: NOT CAUGHT by $tests"; bad=1; fi
  fi
  cp "$SRC/$file" "$COPY/src/$file"
done
cmake --build "$COPY/build" -j"$(nproc)" >/dev/null 2>&1 || true
exit $bad
