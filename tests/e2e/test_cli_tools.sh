#!/usr/bin/env bash
# The other subcommands as a user runs them: every one answers --help with its usage (exit 0);
# --version names the version and commit; `config` lists every key, resolves a file with
# overrides, and reads a run's config.yaml back to the same config; `augment-preview` and `plot` write PNGs of
# the size their content implies; `cmake --install` gives a prefix whose sslrun runs the installed
# recipes; device.backend=cuda is refused cleanly. (eval is driven by test_mpi_knn.sh, export by test_cli_export.sh.)
source "$(dirname "$0")/common.sh"
: "${SSL_BUILD:?set SSL_BUILD to the build directory}"
need_fmnist
write_config
export OMP_NUM_THREADS=1

# --help and --version
for c in pretrain eval export plot prep augment-preview mae-preview config; do
  "$SSLRUN" "$c" --help >"$WORK/help" 2>&1 || fail "sslrun $c --help: exit $?"
  grep -q "^usage: sslrun $c " "$WORK/help" || { cat "$WORK/help"; fail "sslrun $c --help: no usage line"; }
  grep -q "exit codes: 0" "$WORK/help" || fail "sslrun $c --help: exit codes not documented"
done
"$SSLRUN" "$WORK/tiny.yaml" --help | grep -q "^usage: sslrun pretrain" || fail "sslrun CONFIG --help"
"$SSLRUN" --help | grep -q "augment-preview" || fail "sslrun --help lists the commands"
rc=0; "$SSLRUN" >/dev/null 2>&1 || rc=$?; [ $rc = 2 ] || fail "sslrun without arguments: exit $rc, expected 2"
version=$("$SSLRUN" --version)
[[ $version =~ ^sslrun\ [0-9]+\.[0-9]+\.[0-9]+\ \(git\ ([0-9a-f]{12}(-dirty)?|unknown)\)$ ]] || fail "--version: '$version'"

# config: every key, a resolved file, and the round trip
"$SSLRUN" config >"$WORK/keys" || fail "sslrun config"
for k in run.seed optim.lr optim.clip_grad simclr.gather_negatives comm.timeout_s eval.knn_every_epochs; do
  grep -q "^$k " "$WORK/keys" || fail "sslrun config does not list $k"
done
"$SSLRUN" config "$WORK/tiny.yaml" optim.lr=0.3 optim.accum_steps=2 >"$WORK/resolved" || fail "sslrun config FILE"
grep -qE "^optim.lr +0.3( |$)" "$WORK/resolved" && grep -qE "^optim.accum_steps +2( |$)" "$WORK/resolved" || fail "overrides not applied"

# device.backend=cuda is refused before anything starts, with the reason (not built here, or its ops
# not yet verified on a GPU), never a crash; likewise for finetune
for cmd in pretrain finetune; do
  extra=(); [ $cmd = finetune ] && extra=(--scratch)
  rc=0; "$SSLRUN" $cmd "$WORK/tiny.yaml" "${extra[@]}" device.backend=cuda >"$WORK/cuda.log" 2>&1 || rc=$?
  { [ $rc = 1 ] && grep -q "device.backend 'cuda' is not available" "$WORK/cuda.log"; } ||
    { cat "$WORK/cuda.log"; fail "sslrun $cmd device.backend=cuda: exit $rc"; }
done
[ ! -e "$WORK/runs/tiny" ] || fail "device.backend=cuda created a run directory"

# binding: the plan names where rank 0 runs and which launcher variable said so (faked Slurm here; no
# OMPI_COMM_WORLD_SIZE/PMI_SIZE, which would start MPI). SSLRUN_REPORT_BINDING=1 does not print rank
# 0's line twice. A launcher environment that contradicts itself is a setup error naming the variable.
clean=(env -u OMPI_COMM_WORLD_LOCAL_RANK -u OMPI_COMM_WORLD_LOCAL_SIZE -u SLURM_NTASKS_PER_NODE -u SSLRUN_REPORT_BINDING)
"${clean[@]}" SLURM_JOB_ID=4242 SLURM_LOCALID=0 SLURM_NODEID=0 SLURM_TASKS_PER_NODE=1 SSLRUN_REPORT_BINDING=1 \
  "$SSLRUN" "$WORK/tiny.yaml" run.name=bind run.max_steps=1 >"$WORK/bind.log" 2>"$WORK/bind.err" ||
  { cat "$WORK/bind.log" "$WORK/bind.err"; fail "1-step run under faked Slurm"; }
grep -q "^binding: rank 0 host .* local 0/1 (SLURM_LOCALID) slurm job 4242; cpus [0-9].*; device cpu$" "$WORK/bind.log" ||
  { cat "$WORK/bind.log"; fail "no binding line naming SLURM_LOCALID and slurm job 4242"; }
[ "$(grep -c "^binding:" "$WORK/bind.log")" = 1 ] || fail "rank 0's binding line printed $(grep -c "^binding:" "$WORK/bind.log") times"
rc=0; "${clean[@]}" OMPI_COMM_WORLD_LOCAL_RANK=5 OMPI_COMM_WORLD_LOCAL_SIZE=2 \
  "$SSLRUN" "$WORK/tiny.yaml" run.name=bind_bad run.max_steps=1 >"$WORK/bind.log" 2>&1 || rc=$?
{ [ $rc = 1 ] && grep -q "OMPI_COMM_WORLD_LOCAL_RANK=5" "$WORK/bind.log"; } ||
  { cat "$WORK/bind.log"; fail "local rank 5 of 2: exit $rc, expected 1 with a message naming OMPI_COMM_WORLD_LOCAL_RANK"; }
[ ! -e "$WORK/runs/bind_bad" ] || fail "a contradictory launcher environment created a run directory"

png_size() { # width height of a PNG (IHDR), or nothing when it is not one
  [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || return 0
  od -An -tu1 -j16 -N8 "$1" | awk '{print $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8}'
}
# augment-preview: 8 images x 2 views of the config's img_size (16 px) in a grid
"$SSLRUN" augment-preview "$WORK/tiny.yaml" --out "$WORK/views.png" >"$WORK/aug.log" 2>&1 || { cat "$WORK/aug.log"; fail "augment-preview"; }
grep -q "8 images x 2 views" "$WORK/aug.log" || fail "augment-preview summary"
read -r w h < <(png_size "$WORK/views.png")
[ "${w:-0}" -ge 32 ] && [ "${h:-0}" -ge 128 ] || fail "augment-preview: PNG of ${w:-?}x${h:-?} cannot hold 8 x 2 views of 16 px"
# per-view pipelines: view 2 solarized always changes the picture; a list of the base values does not
for s in "0.0, 0.0" "0.0, 1.0"; do
  "$SSLRUN" augment-preview "$WORK/tiny.yaml" augment.solarize_p=0 "augment.view_solarize_p=[$s]" \
    --out "$WORK/views-${s/, /-}.png" >"$WORK/aug.log" 2>&1 || { cat "$WORK/aug.log"; fail "augment-preview [$s]"; }
done
"$SSLRUN" augment-preview "$WORK/tiny.yaml" augment.solarize_p=0 --out "$WORK/views-base.png" >/dev/null 2>&1 ||
  fail "augment-preview, solarize_p 0"
cmp -s "$WORK/views-base.png" "$WORK/views-0.0-0.0.png" || fail "view_solarize_p [0, 0] differs from solarize_p 0"
cmp -s "$WORK/views-0.0-0.0.png" "$WORK/views-0.0-1.0.png" && fail "view_solarize_p [0, 1] did not solarize view 2"

# mae-preview: a 2-step MAE run, then 8 test images x 3 rows (original, masked, reconstruction) of 16 px:
# 8 * 18 + 2 = 146 by 3 * 18 + 2 = 56 px; the masks are keyed by the checkpoint's step (the PNG is the same twice)
M=(run.name=mae method.name=mae model.arch=vit_tiny model.patch_size=4 model.sincos_pos=true model.vit_dim=16
  model.vit_depth=1 model.vit_heads=2 augment.views=1 mae.decoder_depth=1 mae.decoder_dim=16 mae.decoder_heads=2
  optim.name=adamw optim.lr=0.001 run.max_steps=2)
"$SSLRUN" "$WORK/tiny.yaml" "${M[@]}" >"$WORK/mae.log" 2>&1 || { cat "$WORK/mae.log"; fail "mae training for mae-preview"; }
for f in recon recon2; do
  "$SSLRUN" mae-preview "$WORK/tiny.yaml" "${M[@]}" --out "$WORK/$f.png" >"$WORK/maep.log" 2>&1 || { cat "$WORK/maep.log"; fail "mae-preview"; }
done
grep -q "wrote $WORK/recon2.png: 8 test images of 16x16 .* at step 2, loss on the masked patches [0-9.]*$" "$WORK/maep.log" ||
  { cat "$WORK/maep.log"; fail "mae-preview summary"; }
read -r w h < <(png_size "$WORK/recon.png")
[ "${w:-0}" = 146 ] && [ "${h:-0}" = 56 ] || fail "mae-preview: PNG of ${w:-?}x${h:-?}, expected 146x56 (8 images x 3 rows of 16 px)"
cmp -s "$WORK/recon.png" "$WORK/recon2.png" || fail "mae-preview: two runs drew different masks"
rc=0; "$SSLRUN" mae-preview "$WORK/tiny.yaml" --out "$WORK/x.png" >"$WORK/maep.log" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "mae-preview needs method.name mae" "$WORK/maep.log" || fail "mae-preview of a simclr config: exit $rc, $(cat "$WORK/maep.log")"

# plot: a short run with the kNN monitor, then its PNG
"$SSLRUN" "$WORK/tiny.yaml" run.name=p schedule.epochs=1 eval.knn_every_epochs=1 eval.train_limit=2000 >"$WORK/p.log" 2>&1 ||
  { cat "$WORK/p.log"; fail "training for plot"; }
# metrics.jsonl: a header naming the producer, then per step the fields a user plots and debugs with
m="$WORK/runs/p/metrics.jsonl"
head -1 "$m" | grep -q "\"event\":\"start\".*\"sslrun_version\":\"$(cut -d' ' -f2 <<<"$version")\"" || fail "metrics header: $(head -1 "$m")"
for k in step epoch loss lr wd grad_norm img_per_s step_s data_s time; do
  [ "$(grep -c "\"$k\":[0-9.e+-]*[,}]" "$m")" -ge 8 ] || fail "metrics: '$k' missing from step records"
done
grep -q '"step":1,"epoch":1,' "$m" && ! grep -q '"epoch":0' "$m" || fail "metrics: epochs must be 1-based"
"$SSLRUN" plot "$WORK/runs/p/" >"$WORK/plot.log" 2>&1 || { cat "$WORK/plot.log"; fail "plot"; }
grep -q "steps 1..8 (8 logged, 1 kNN records)$" "$WORK/plot.log" || { cat "$WORK/plot.log"; fail "plot summary (run headers must not count as damage)"; }
read -r w h < <(png_size "$WORK/runs/p/plot.png")
# the run's resolved config.yaml reads back to the config it was resolved from
P=(run.name=p schedule.epochs=1 eval.knn_every_epochs=1 eval.train_limit=2000)
grep -q "sslrun config$" "$WORK/runs/p/config.yaml" || fail "config.yaml header points at a command that does not list the keys"
diff <("$SSLRUN" config "$WORK/tiny.yaml" "${P[@]}" | awk '{print $1, $2}') \
     <("$SSLRUN" config "$WORK/runs/p/config.yaml" | awk '{print $1, $2}') || fail "config.yaml does not round-trip"
[ "${w:-0}" -ge 200 ] && [ "${h:-0}" -ge 100 ] || fail "plot: not a PNG of a plot (${w:-?}x${h:-?})"
rc=0; "$SSLRUN" plot "$WORK/nowhere" >"$WORK/perr.log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "nowhere/metrics.jsonl" "$WORK/perr.log" || fail "plot of a missing run: exit $rc, $(cat "$WORK/perr.log")"

# install into a prefix: the binary runs from there and finds nothing in the build tree
cmake --install "$SSL_BUILD" --prefix "$WORK/prefix" >/dev/null || fail "cmake --install"
[ "$("$WORK/prefix/bin/sslrun" --version)" = "$version" ] || fail "installed sslrun --version differs"
# every recipe in the source tree is installed and loads
n=0
for src in "$SSL_SOURCE"/configs/*.yaml; do
  r=$(basename "$src")
  "$WORK/prefix/bin/sslrun" config "$WORK/prefix/share/sslrun/configs/$r" >/dev/null || fail "installed recipe $r"
  n=$((n + 1))
done
[ "$n" -ge 7 ] || fail "only $n recipes in configs/"
echo "cli tools: all checks passed"
