#!/usr/bin/env bash
# `sslrun prep images`: a two-class folder of PNGs (one 8x6 RGB PNG, embedded below) becomes
# train shards and classes.txt; --prefix writes a second split next to them; a corrupt file is named.
source "$(dirname "$0")/common.sh"
PNG=iVBORw0KGgoAAAANSUhEUgAAAAgAAAAGCAIAAABxZ0isAAAAEUlEQVR42mM4IReFFTEMpAQAqjU8AcuAEy4AAAAASUVORK5CYII=
mkdir -p "$WORK/src/zebra" "$WORK/src/apple"
for f in zebra/1.png zebra/2.png apple/x.png; do echo "$PNG" | base64 -d > "$WORK/src/$f"; done
echo "not an image" > "$WORK/src/apple/notes.txt"

"$SSLRUN" prep images "$WORK/src" --out "$WORK/data" --size 4 --shard-size 2 >"$WORK/log" 2>&1 ||
  { cat "$WORK/log"; fail "prep images failed"; }
grep -q "3 images of 2 classes, 4x4x3, 2 shards" "$WORK/log" || { cat "$WORK/log"; fail "summary"; }
grep -q "skipped 1 file that is neither PNG nor JPEG" "$WORK/log" || { cat "$WORK/log"; fail "skip count"; }
[ -f "$WORK/data/train-00000.h5" ] && [ -f "$WORK/data/train-00001.h5" ] || fail "missing shards"
[ "$(cat "$WORK/data/classes.txt")" = "$(printf 'apple\nzebra')" ] || fail "classes.txt: $(cat "$WORK/data/classes.txt")"

"$SSLRUN" prep images --src "$WORK/src" --out "$WORK/data" --prefix val >"$WORK/log" 2>&1 ||
  { cat "$WORK/log"; fail "prep images --prefix val failed"; }
[ -f "$WORK/data/val-00000.h5" ] || fail "missing val shard"
grep -q "3 images of 2 classes, 6x8x3, 1 shard" "$WORK/log" || { cat "$WORK/log"; fail "keep-size summary"; }

head -c 40 "$WORK/src/zebra/1.png" > "$WORK/src/zebra/3.png"
rc=0; "$SSLRUN" prep images "$WORK/src" --out "$WORK/bad" --size 4 >"$WORK/log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "zebra/3.png: corrupt or unsupported PNG" "$WORK/log" ||
  { cat "$WORK/log"; fail "corrupt PNG: exit $rc"; }
rc=0; "$SSLRUN" prep images "$WORK/src" >"$WORK/log" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "sslrun prep images SRC_DIR --out DIR" "$WORK/log" || fail "usage: exit $rc"
echo "prep images: all checks passed"
