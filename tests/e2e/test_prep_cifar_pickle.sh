#!/usr/bin/env bash
# CIFAR's Python release: `prep cifar10/cifar100 --src` of pickles as Python 2's cPickle wrote them
# and as Python 3 writes protocol 2 (tests/tools/make_cifar_release.py) equal, sample for sample,
# the prep of the binary release of the same pixels; the release's folder name is found under
# --src; a truncated pickle (at many lengths) and one calling another global fail naming the file.
source "$(dirname "$0")/common.sh"
PY=/usr/bin/python3
$PY -c 'import h5py, numpy' 2>/dev/null || { echo "$PY lacks h5py or numpy: skipping"; exit 77; }
SAME="$PY $SSL_SOURCE/tests/tools/h5_same.py"
for c in 10 100; do
  $PY "$SSL_SOURCE/tests/tools/make_cifar_release.py" --out "$WORK/c$c" --cifar $c --per-batch 30 >/dev/null || fail "fixtures"
  for form in bin py2 py3; do
    "$SSLRUN" prep cifar$c --src "$WORK/c$c/$form" --out "$WORK/o$c$form" --shard-size 40 >"$WORK/log" 2>&1 ||
      { cat "$WORK/log"; fail "prep cifar$c from $form"; }
  done
  for form in py2 py3; do
    for split in train test; do $SAME "$WORK/o${c}bin" "$WORK/o$c$form" $split || fail "cifar$c $form $split differs from bin"; done
  done
done
# the folder the archive unpacks to, under --src
mkdir -p "$WORK/rel" && mv "$WORK/c10/py2" "$WORK/rel/cifar-10-batches-py"
"$SSLRUN" prep cifar10 --src "$WORK/rel" --out "$WORK/orel" --shard-size 40 >"$WORK/log" 2>&1 || { cat "$WORK/log"; fail "cifar-10-batches-py"; }
$SAME "$WORK/o10bin" "$WORK/orel" train || fail "cifar-10-batches-py differs"

# damaged pickles: cut at many lengths, a global that is not numpy's, a non-uint8 dtype
B="$WORK/rel/cifar-10-batches-py/data_batch_3"
cp "$B" "$WORK/good"
size=$(stat -c %s "$WORK/good")
for len in 0 1 2 3 10 40 100 200 300 400 500 $((size / 2)) $((size - 200)) $((size - 2)) $((size - 1)); do
  head -c $len "$WORK/good" > "$B"
  rc=0; "$SSLRUN" prep cifar10 --src "$WORK/rel" --out "$WORK/ocut" >"$WORK/log" 2>&1 || rc=$?
  [ $rc = 1 ] && grep -q "sslrun prep: $B: " "$WORK/log" || { cat "$WORK/log"; fail "pickle cut at $len bytes: exit $rc"; }
done
grep -q "without a STOP opcode (truncated?)" "$WORK/log" || { cat "$WORK/log"; fail "truncation message"; }
$PY - "$WORK/good" "$B" <<'PY' || fail "writing the evil pickle"
import sys
b = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(b.replace(b"cnumpy\ndtype\n", b"cos\nsystem\n\n\n", 1)[:len(b)])
PY
rc=0; "$SSLRUN" prep cifar10 --src "$WORK/rel" --out "$WORK/ocut" >"$WORK/log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "$B: pickle opcode 0x63 ('c') at offset [0-9]*: global os.system is not one a CIFAR batch uses" "$WORK/log" ||
  { cat "$WORK/log"; fail "evil global: exit $rc"; }
$PY - "$WORK/good" "$B" <<'PY' || fail "writing the int16 pickle"
import sys
b = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(b.replace(b"U\x02u1", b"U\x02i2", 1))
PY
rc=0; "$SSLRUN" prep cifar10 --src "$WORK/rel" --out "$WORK/ocut" >"$WORK/log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "$B: pickle opcode 0x52 ('R') at offset [0-9]*: numpy dtype is not u1" "$WORK/log" ||
  { cat "$WORK/log"; fail "int16 dtype: exit $rc"; }
echo "prep cifar10/cifar100 from the Python release: all checks passed"
