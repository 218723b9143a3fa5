#!/usr/bin/env bash
# `prep images` under mpirun and resumed: np=1, 2 and 3 write the same shards (names and dataset
# contents, checked with h5py) in the JPEG and the raw format, and --verify passes them; a prep
# killed with SIGKILL halfway and rerun (at np=2, with a damaged kept shard) equals an uninterrupted
# one (its progress lines counting up from the kept images); reruns with another --quality or another file list are refused, --force starts over; a
# corrupt image in a shard of rank 1 stops every rank with the message naming it.
source "$(dirname "$0")/common.sh"
mpi_env
PY=/usr/bin/python3
[ -f "$FMNIST/t10k-images-idx3-ubyte.gz" ] || { echo "no $FMNIST: skipping"; exit 77; }
$PY -c 'import h5py, PIL, numpy' 2>/dev/null || { echo "$PY lacks h5py, PIL or numpy: skipping"; exit 77; }
SAME="$PY $SSL_SOURCE/tests/tools/h5_same.py"
prep() { # prep NP ARGS...: sslrun prep images at NP ranks (1: without mpirun)
  local np=$1; shift
  if [ "$np" = 1 ]; then timeout 300 "$SSLRUN" prep images "$@"
  else timeout 300 "$MPIEXEC" --oversubscribe -np "$np" "$SSLRUN" prep images "$@"; fi
}
$PY "$SSL_SOURCE/tests/tools/make_jpeg_folder.py" --out "$WORK/src" --per-class 20 >/dev/null || fail "make_jpeg_folder.py"

# 1. np = 1, 2, 3: 200 images in 13 shards of 16 (uneven over 2 and 3 ranks)
for fmt in "jpeg" "raw --size 24"; do
  name=${fmt%% *}
  for np in 1 2 3; do
    prep $np "$WORK/src" --out "$WORK/$name$np" --format $fmt --shard-size 16 >"$WORK/log" 2>&1 ||
      { cat "$WORK/log"; fail "$name prep at np=$np"; }
    grep -q "13 shards written, 0 kept from an earlier run; .* images/s overall, .* per rank ($np rank" "$WORK/log" ||
      { cat "$WORK/log"; fail "$name np=$np summary"; }
    "$SSLRUN" prep --verify "$WORK/$name$np" >"$WORK/v.log" 2>&1 || { cat "$WORK/v.log"; fail "verify $name np=$np"; }
  done
  $SAME "$WORK/${name}1" "$WORK/${name}2" train || fail "$name: np=2 differs from np=1"
  $SAME "$WORK/${name}1" "$WORK/${name}3" train || fail "$name: np=3 differs from np=1"
  cmp -s "$WORK/${name}1/classes.txt" "$WORK/${name}3/classes.txt" || fail "$name: classes.txt differs"
done

# 2. resume: 1000 images in shards of 10, re-encoded at --size 40 (slow enough to stop halfway)
$PY "$SSL_SOURCE/tests/tools/make_jpeg_folder.py" --out "$WORK/big" --per-class 100 >/dev/null || fail "make_jpeg_folder.py"
ARGS=(--format jpeg --size 40 --shard-size 10)
prep 1 "$WORK/big" --out "$WORK/whole" "${ARGS[@]}" >"$WORK/log" 2>&1 || { cat "$WORK/log"; fail "uninterrupted prep"; }
"$SSLRUN" prep images "$WORK/big" --out "$WORK/cut" "${ARGS[@]}" >"$WORK/cut.log" 2>&1 &
pid=$!
for _ in $(seq 1 3000); do [ -e "$WORK/cut/train-00003.h5" ] && break; sleep 0.005; done
kill -STOP $pid 2>/dev/null || true
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
done_shards=$(ls "$WORK/cut" | grep -c '^train-.*\.h5$' || true)
echo "killed with $done_shards of 100 shards complete: $(ls "$WORK/cut" | grep -c '\.tmp$' || true) .tmp left"
[ "$done_shards" -ge 4 ] && [ "$done_shards" -lt 100 ] || fail "the kill did not land halfway ($done_shards shards)"
[ ! -e "$WORK/cut/classes.txt" ] || fail "classes.txt written before the prep completed"
# a kept shard that is damaged is rewritten, not kept; shard 0, so rank 0 writes (and prints) before
# the rounds that keep the others: its lines count every kept image from the first
head -c 3000 "$WORK/cut/train-00000.h5" > "$WORK/t" && mv "$WORK/t" "$WORK/cut/train-00000.h5"
SSL_PREP_PROGRESS_S=0 prep 2 "$WORK/big" --out "$WORK/cut" "${ARGS[@]}" >"$WORK/log" 2>&1 || { cat "$WORK/log"; fail "resumed prep"; }
grep -v "images/s, ETA" "$WORK/log"
kept=$(sed -nE 's/.*shards? written, ([0-9]+) kept from an earlier run.*/\1/p' "$WORK/log")
[ "$kept" = $((done_shards - 1)) ] || fail "kept $kept shards, expected $((done_shards - 1)) (all complete ones but the damaged)"
# the progress line (rank 0, one per image here): counts rise to at most 1000, kept images named, an ETA
$PY - "$WORK/log" "$kept" <<'PY' || fail "progress lines"
import re, sys
lines = [l for l in open(sys.argv[1]) if "images/s, ETA" in l]
pat = re.compile(r"^prep: .*/cut/train: (\d+)/1000 images \((\d+) kept\), ([\d.]+) images/s, ETA (\d+) s$")
got = [pat.match(l.rstrip("\n")) for l in lines]
assert len(lines) >= 10 and all(got), f"{len(lines)} progress lines, first unparsed: {[l for l, m in zip(lines, got) if not m][:1]}"
done = [int(m[1]) for m in got]
kept = 10 * int(sys.argv[2])
assert all(int(m[2]) == kept for m in got), "kept images"
assert done == sorted(done) and kept < done[0] and done[-1] <= 1000, done[:5]
print(f"progress: {len(lines)} lines, {done[0]} -> {done[-1]} of 1000")
PY
$SAME "$WORK/whole" "$WORK/cut" train || fail "the resumed prep differs from the uninterrupted one"
"$SSLRUN" prep --verify "$WORK/cut" >"$WORK/v.log" 2>&1 || { cat "$WORK/v.log"; fail "verify resumed"; }
[ -z "$(ls "$WORK/cut" | grep '\.tmp$' || true)" ] || fail ".tmp files left: $(ls "$WORK/cut")"
# a rerun of a complete prep keeps everything
prep 1 "$WORK/big" --out "$WORK/cut" "${ARGS[@]}" >"$WORK/log" 2>&1 || { cat "$WORK/log"; fail "rerun"; }
grep -q "0 shards written, 100 kept" "$WORK/log" || { cat "$WORK/log"; fail "rerun of a complete prep rewrote shards"; }
# other options or files: refused, naming the manifest; --force starts over
rc=0; prep 2 "$WORK/big" --out "$WORK/cut" --format jpeg --size 40 --shard-size 10 --quality 50 >"$WORK/log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "cut/train.manifest says --quality 90 (now 50).*new --out.*--force" "$WORK/log" ||
  { cat "$WORK/log"; fail "another --quality: exit $rc"; }
cp "$WORK/big/Bag/$(ls "$WORK/big/Bag" | head -1)" "$WORK/big/Bag/zz_extra.jpg"
rc=0; prep 1 "$WORK/big" --out "$WORK/cut" "${ARGS[@]}" >"$WORK/log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "lists another set of images (1000 then, 1001 now" "$WORK/log" ||
  { cat "$WORK/log"; fail "another file list: exit $rc"; }
prep 2 "$WORK/big" --out "$WORK/cut" "${ARGS[@]}" --force >"$WORK/log" 2>&1 || { cat "$WORK/log"; fail "--force"; }
grep -q "101 shards written, 0 kept" "$WORK/log" || { cat "$WORK/log"; fail "--force kept shards"; }

# 3. a corrupt JPEG in shard 1 (rank 1's at np=2): every rank stops, exit 1, the message names it
cp -r "$WORK/src" "$WORK/bad"
victim=$(cd "$WORK/bad" && ls -d */* | sort | sed -n 20p) # sample 19: shard 1 of 16-image shards
head -c 300 "$WORK/bad/$victim" > "$WORK/t" && mv "$WORK/t" "$WORK/bad/$victim"
rc=0; prep 2 "$WORK/bad" --out "$WORK/badout" --format jpeg --shard-size 16 >"$WORK/log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "$victim: corrupt or unsupported JPEG" "$WORK/log" ||
  { cat "$WORK/log"; fail "corrupt JPEG at np=2: exit $rc"; }
[ ! -e "$WORK/badout/classes.txt" ] || fail "classes.txt after a failed prep"
echo "prep images under mpirun, resume: all checks passed"
