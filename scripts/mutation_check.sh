#!/usr/bin/env bash
# Break the trainer and the methods on purpose and watch the tests catch them. Each mutation is one edit to a copy of
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
  "no-bn-comm|framework/train/setup.c|s/t->s.ctx.bn_comm = cfg->model.sync_bn ? comm : NULL;/t->s.ctx.bn_comm = NULL;/|test_mpi_equiv"
  "no-grad-allreduce|framework/train/step.c|s/^ *ssl_allreduce(comm, t->s.params.grad, t->s.params.numel, SSL_F32, SSL_AVG);//|test_mpi_equiv"
  "grad-sum-not-avg|framework/train/step.c|s/t->s.params.numel, SSL_F32, SSL_AVG);/t->s.params.numel, SSL_F32, SSL_SUM);/|test_mpi_equiv"
  "resume-keeps-fresh-weights|framework/train/resume.c|s/^    t->step = ck.step;/    t->step = ck.step; ssl_params_init_values(\&t->s.params, (uint64_t)cfg->run.seed);/|test_resume|test_mpi_equiv|test_ckpt_damage"
  "no-checksum|io/checkpoint.c|s/^        H5Pset_fletcher32(dcpl);//|test_ckpt_damage"
  "no-fallback|io/ckpt_resume.c|s/if (rc == SSL_CKPT_INCOMPATIBLE) break;/break;/|test_ckpt_damage"
  "no-clip|framework/train/step.c|s/r->grad_norm = ssl_optim_clip_global_norm(\&t->s.ctx, \&t->s.params, (float)cfg->optim.clip_grad, gscale);/r->grad_norm = ssl_optim_grad_norm(\&t->s.ctx, \&t->s.params, gscale);/|test_mpi_equiv"
  "metrics-relogged|framework/train/resume.c|s/ssl_metrics_open(\&t->metrics, path, t->step)/ssl_metrics_open(\&t->metrics, path, 1LL << 62)/|test_resume|test_ckpt_damage"
  "no-replica-check|framework/train/save.c|s/    if (replicas_agree(t, \&ck, err, errlen)) return -1;/    if (0 \&\& replicas_agree(t, \&ck, err, errlen)) return -1;/|test_mpi_faults"
  "accum-no-scale|framework/train/setup.c|s/oc.grad_scale = 1.0f \/ (float)t->accum;/oc.grad_scale = 1.0f;/|test_mpi_equiv"
  "teacher-reset-on-resume|methods/siamese.c|s/    if (!resumed) ssl_teacher_copy(c, \&s->teacher, w);/    (void)resumed; ssl_teacher_copy(c, \&s->teacher, w);/|test_methods_equiv"
  "no-teacher-ema|methods/siamese.h|s/^void ssl_siamese_free(ssl_siamese \*s);/void ssl_siamese_free(ssl_siamese *s);\n#define ssl_teacher_ema(c, t, w, m) ((void)(c), (void)(t), (void)(w), (void)(m))/|test_ref_ema_methods|test_methods_equiv"
  "no-method-agree|framework/train/save.c|s/    if (m->vt->agree \&\& t->comm->world > 1)/    if (0 \&\& m->vt->agree \&\& t->comm->world > 1)/|test_methods_equiv"
  "queue-not-checkpointed|methods/moco_v2.c|s/^    ssl_ckpt_add_sharded(ck, \"queue\/keys\"/    if (0) ssl_ckpt_add_sharded(ck, \"queue\/keys\"/|test_methods_equiv"
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
