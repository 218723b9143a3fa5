#!/usr/bin/env bash
# ImageNet's layouts: a train tree whose files end in upper-case .JPEG, and the validation layout
# (a flat folder + LOC_val_solution.csv, or "name class" lines) labelled through the train prep's
# classes.txt: labels match (h5py), both label formats give the same shards, also at np=2; an image
# without a label or a class not in classes.txt is an error naming it.
source "$(dirname "$0")/common.sh"
mpi_env
PY=/usr/bin/python3
[ -f "$FMNIST/t10k-images-idx3-ubyte.gz" ] || { echo "no $FMNIST: skipping"; exit 77; }
$PY -c 'import h5py, PIL, numpy' 2>/dev/null || { echo "$PY lacks h5py, PIL or numpy: skipping"; exit 77; }
$PY "$SSL_SOURCE/tests/tools/make_jpeg_folder.py" --out "$WORK/train" --per-class 6 >/dev/null || fail "make_jpeg_folder.py"
for f in "$WORK"/train/*/*.jpg; do mv "$f" "${f%.jpg}.JPEG"; done # ImageNet's names

"$SSLRUN" prep images "$WORK/train" --out "$WORK/data" --format jpeg >"$WORK/log" 2>&1 || { cat "$WORK/log"; fail "train prep"; }
grep -q "60 images of 10 classes" "$WORK/log" || { cat "$WORK/log"; fail ".JPEG files not all taken"; }

# val: the same images flat, in a shuffled order of names, and the two labels files
$PY - "$WORK/train" "$WORK/val" "$WORK" <<'PY' || fail "making the val layout"
import os, random, shutil, sys
src, val, work = sys.argv[1:4]
os.makedirs(val)
files = [(c, f) for c in sorted(os.listdir(src)) for f in sorted(os.listdir(os.path.join(src, c)))]
random.Random(1).shuffle(files)
rows = []
for i, (c, f) in enumerate(files, 1):
    name = f"ILSVRC2012_val_{i:08d}"
    shutil.copy(os.path.join(src, c, f), os.path.join(val, name + os.path.splitext(f)[1]))
    rows.append((name, c, os.path.splitext(f)[1]))
order = rows[::-1]  # the files need not list the images in order
with open(os.path.join(work, "LOC_val_solution.csv"), "w") as f:
    f.write("ImageId,PredictionString\n")
    for name, c, _ in order:
        f.write(f"{name},{c} 10 20 30 40 {c} 1 2 3 4 \n")
with open(os.path.join(work, "val.txt"), "w") as f:
    for name, c, ext in order:
        f.write(f"{name}{ext} {c}\n")
with open(os.path.join(work, "expect.txt"), "w") as f:  # sorted file name -> class name
    for name, c, ext in sorted(rows):
        f.write(f"{name}{ext} {c}\n")
PY
"$SSLRUN" prep images "$WORK/val" --out "$WORK/data" --prefix val --format jpeg --labels "$WORK/LOC_val_solution.csv" \
  --classes "$WORK/data/classes.txt" --shard-size 25 >"$WORK/log" 2>&1 || { cat "$WORK/log"; fail "val prep (csv)"; }
grep -q "60 images of 10 classes" "$WORK/log" || { cat "$WORK/log"; fail "val summary"; }
$PY - "$WORK/data" "$WORK/val" "$WORK/expect.txt" <<'PY' || fail "val labels"
import glob, sys, h5py, numpy as np
data, val, expect = sys.argv[1:4]
classes = open(data + "/classes.txt").read().split("\n")[:-1]
want = [classes.index(line.split()[1]) for line in open(expect)]
names = [line.split()[0] for line in open(expect)]
got, blobs = [], []
for p in sorted(glob.glob(data + "/val-*.h5")):
    with h5py.File(p, "r") as f:
        got += list(f["labels"][:])
        j, o = f["jpeg"][:], f["offsets"][:]
        blobs += [j[o[i]:o[i + 1]].tobytes() for i in range(len(o) - 1)]
assert got == want, (got, want)
src = [open(f"{val}/{n}", "rb").read() for n in names]  # in name order, stored as they are (most)
same = sum(a == b for a, b in zip(src, blobs))
assert same >= 40, f"only {same} of 60 samples are their file's bytes: wrong order?"
print(f"val: 60 labels match, {same} samples byte for byte")
PY
# the "name class" format (names with extension), here at np=2 and with classes.txt by default
"$MPIEXEC" --oversubscribe -np 2 "$SSLRUN" prep images "$WORK/val" --out "$WORK/data2" --prefix val --format jpeg \
  --labels "$WORK/val.txt" --shard-size 25 >"$WORK/log" 2>&1 && fail "no classes.txt: should fail"
grep -q "data2/classes.txt: cannot open" "$WORK/log" || { cat "$WORK/log"; fail "missing classes.txt message"; }
mkdir -p "$WORK/data2" && cp "$WORK/data/classes.txt" "$WORK/data2/"
"$MPIEXEC" --oversubscribe -np 2 "$SSLRUN" prep images "$WORK/val" --out "$WORK/data2" --prefix val --format jpeg \
  --labels "$WORK/val.txt" --shard-size 25 >"$WORK/log" 2>&1 || { cat "$WORK/log"; fail "val prep (txt, np=2)"; }
$PY "$SSL_SOURCE/tests/tools/h5_same.py" "$WORK/data" "$WORK/data2" val || fail "csv and txt labels differ"

# errors: an image without a label; a class not in classes.txt
grep -v "ILSVRC2012_val_00000007," "$WORK/LOC_val_solution.csv" > "$WORK/missing.csv"
rc=0; "$SSLRUN" prep images "$WORK/val" --out "$WORK/e1" --prefix val --labels "$WORK/missing.csv" \
  --classes "$WORK/data/classes.txt" >"$WORK/log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "image ILSVRC2012_val_00000007.JPEG has no label in $WORK/missing.csv" "$WORK/log" ||
  { cat "$WORK/log"; fail "missing label: exit $rc"; }
sed 's/^ILSVRC2012_val_00000003,[^ ]*/ILSVRC2012_val_00000003,n99999999/' "$WORK/LOC_val_solution.csv" > "$WORK/badclass.csv"
rc=0; "$SSLRUN" prep images "$WORK/val" --out "$WORK/e2" --prefix val --labels "$WORK/badclass.csv" \
  --classes "$WORK/data/classes.txt" >"$WORK/log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "badclass.csv line [0-9]*: class 'n99999999' of ILSVRC2012_val_00000003 is not in" "$WORK/log" ||
  { cat "$WORK/log"; fail "unknown class: exit $rc"; }
[ -z "$(ls "$WORK/e1" "$WORK/e2" 2>/dev/null)" ] || fail "failed val preps left files"
echo "ImageNet layouts: all checks passed"
