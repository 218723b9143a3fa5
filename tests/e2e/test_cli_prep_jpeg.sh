#!/usr/bin/env bash
# `sslrun prep images --format jpeg` and `sslrun prep --verify` on an ImageFolder tree made from the
# Fashion-MNIST test split (tests/tools/make_jpeg_folder.py: JPEGs of varying sizes, grayscale,
# progressive, CMYK and slightly damaged ones, a few PNGs). Checked with h5py + PIL: the layout of shard_writer.h,
# every sample decoding to its `sizes`, JPEG sources stored byte for byte unless resized or CMYK,
# re-encoded ones close to their source; --verify passes them, names the shard and dataset of a
# flipped byte and of a wrong size, and prep names a truncated JPEG.
source "$(dirname "$0")/common.sh"
PY=/usr/bin/python3 # Debian's, with h5py and PIL (the python3 first on PATH may lack them)
[ -f "$FMNIST/t10k-images-idx3-ubyte.gz" ] || { echo "no $FMNIST: skipping"; exit 77; }
$PY -c 'import h5py, PIL, numpy' 2>/dev/null || { echo "$PY lacks h5py, PIL or numpy: skipping"; exit 77; }

$PY "$SSL_SOURCE/tests/tools/make_jpeg_folder.py" --out "$WORK/src" --per-class 20 >/dev/null ||
  fail "make_jpeg_folder.py failed"

# check.py DATA PREFIX SRC SIZE: the shards of DATA/PREFIX-*.h5 against the source tree
cat > "$WORK/check.py" <<'PY'
import glob, io, os, sys
import h5py, numpy as np
from PIL import Image
data, prefix, src, S = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
classes = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
def junk(path):  # bytes other than a marker between segments: libjpeg warns (PIL does not)
    b, at = open(path, "rb").read(), 2
    while b[at] == 0xFF and b[at + 1] not in (0xDA, 0xD9):
        at += 2 + int.from_bytes(b[at + 2:at + 4], "big")
    return b[at] != 0xFF
files = [(c, os.path.join(src, name, f)) for c, name in enumerate(classes)
         for f in sorted(os.listdir(os.path.join(src, name)))]
assert open(os.path.join(data, "classes.txt")).read() == "".join(n + "\n" for n in classes), "classes.txt"
shards = sorted(glob.glob(os.path.join(data, prefix + "-*.h5")))
assert shards, "no shards"
k = verbatim = encoded = 0
for path in shards:
    with h5py.File(path, "r") as f:
        a = f.attrs
        assert a["format"] == b"sslrun-shard" and a["version"] == 3 and a["encoding"] == b"jpeg", path
        assert a["channels"] == 3 and a["height"] == 0 and a["width"] == 0, path
        assert a["num_classes"] == len(classes), path
        for name in ("jpeg", "offsets", "sizes", "labels"):
            assert f[name].fletcher32 and f[name].chunks and f[name].compression is None, (path, name)
        jpeg, offs, sizes, labels = f["jpeg"][:], f["offsets"][:], f["sizes"][:], f["labels"][:]
    n = len(labels)
    assert jpeg.dtype == np.uint8 and offs.dtype == np.int64 and sizes.dtype == np.int32, path
    assert offs.shape == (n + 1,) and sizes.shape == (n, 2) and offs[0] == 0 and offs[-1] == len(jpeg), path
    for i in range(n):
        c, srcpath = files[k]
        k += 1
        assert labels[i] == c, (path, i, "label", labels[i], c)
        raw = jpeg[offs[i]:offs[i + 1]].tobytes()
        img = Image.open(io.BytesIO(raw))
        assert img.format == "JPEG", (path, i)
        img.load()
        assert (img.height, img.width) == tuple(sizes[i]), (path, i, img.size, sizes[i])
        s = Image.open(srcpath)
        w, h = s.size
        if S and min(w, h) != S:
            w, h = (S, h * S // w) if w <= h else (w * S // h, S)
        assert (img.width, img.height) == (w, h), (srcpath, "stored", img.size, "expected", (w, h))
        as_is = s.format == "JPEG" and s.mode in ("RGB", "L") and s.size == (w, h) and not junk(srcpath)
        same = raw == open(srcpath, "rb").read()
        assert same == as_is, (srcpath, "stored byte for byte" if same else "re-encoded")
        verbatim += same
        encoded += not same
        if not same and s.size == (w, h):  # re-encoded at the source size: the same picture
            d = np.abs(np.asarray(img.convert("RGB"), np.int16) - np.asarray(s.convert("RGB"), np.int16))
            assert d.mean() < 4, (srcpath, "mean abs difference", d.mean())
assert k == len(files), f"{k} samples for {len(files)} files"
print(f"{k} samples: {verbatim} stored as they are, {encoded} encoded")
PY

# keep-size: 200 images in shards of 64
"$SSLRUN" prep images "$WORK/src" --out "$WORK/data" --format jpeg --shard-size 64 >"$WORK/log" 2>&1 ||
  { cat "$WORK/log"; fail "prep images --format jpeg failed"; }
cat "$WORK/log"
grep -q "200 images of 10 classes, JPEG (160 stored as they are, 40 encoded at quality 90), 4 shards" "$WORK/log" ||
  fail "summary"
grep -Eq "[0-9]+ bytes of JPEG, [0-9]+ bytes/image, [0-9.]+ images/s" "$WORK/log" || fail "size and speed line"
$PY "$WORK/check.py" "$WORK/data" train "$WORK/src" 0 | tee "$WORK/check.log" || fail "keep-size shards"
grep -q "200 samples: 160 stored as they are, 40 encoded" "$WORK/check.log" || fail "verbatim count"
rc=0; "$SSLRUN" prep --verify "$WORK/data" >"$WORK/v.log" 2>&1 || rc=$?
cat "$WORK/v.log"
[ $rc = 0 ] && grep -q "verify: 4 shards, 4 ok, 0 bad; 200 samples" "$WORK/v.log" || fail "verify good shards: exit $rc"

# --size 40: shorter side 40, no crop; sources already 40 on their shorter side stay as they are
"$SSLRUN" prep images "$WORK/src" --out "$WORK/data" --prefix s40 --format jpeg --size 40 >"$WORK/log" 2>&1 ||
  { cat "$WORK/log"; fail "prep --size 40 failed"; }
$PY "$WORK/check.py" "$WORK/data" s40 "$WORK/src" 40 || fail "--size 40 shards"
"$SSLRUN" prep --verify "$WORK/data/s40-*.h5" >"$WORK/v.log" 2>&1 || { cat "$WORK/v.log"; fail "verify --size 40"; }

# --quality: the re-encoded images get smaller (quality 20 against 90)
"$SSLRUN" prep images "$WORK/src" --out "$WORK/q20" --format jpeg --quality 20 --shard-size 1000 >"$WORK/log" 2>&1 ||
  { cat "$WORK/log"; fail "prep --quality 20 failed"; }
$PY - "$WORK/data" "$WORK/q20" <<'PY' || fail "--quality 20 did not shrink the re-encoded images"
import glob, sys, h5py, numpy as np
def lens(d):
    out = []
    for p in sorted(glob.glob(d + "/train-*.h5")):
        with h5py.File(p, "r") as f:
            out += list(np.diff(f["offsets"][:]))
    return np.array(out)
a, b = lens(sys.argv[1]), lens(sys.argv[2])
re = a != b  # the verbatim ones are equal at every quality
print(f"{re.sum()} re-encoded: {a[re].sum()} bytes at quality 90, {b[re].sum()} at 20")
assert re.sum() == 40 and (b[re] < a[re]).all()
PY

# a flipped byte in the data of chunk 0 of `jpeg`; wrong entries (valid checksums) in `sizes`, in
# `offsets`, and in the labels of a raw shard
mkdir -p "$WORK/bad"
cp "$WORK/data/train-0000"[0-3].h5 "$WORK/bad/"
"$SSLRUN" prep images "$WORK/src" --out "$WORK/raw" --size 16 >"$WORK/log" 2>&1 || { cat "$WORK/log"; fail "raw prep"; }
cp "$WORK/raw/train-00000.h5" "$WORK/bad/raw-00000.h5"
$PY - "$WORK/bad/train-00003.h5" "$WORK/bad/raw-00000.h5" <<'PY' || fail "damaging the copies"
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f["offsets"][-1] = f["offsets"][-1] - 1
with h5py.File(sys.argv[2], "r+") as f:
    f["labels"][7] = 10
PY
$PY - "$WORK/bad/train-00001.h5" "$WORK/bad/train-00002.h5" <<'PY' || fail "damaging the copies"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    info = f["jpeg"].id.get_chunk_info(0)
with open(sys.argv[1], "r+b") as f:
    f.seek(info.byte_offset + info.size // 2)
    b = f.read(1)
    f.seek(-1, 1)
    f.write(bytes([b[0] ^ 0x40]))
with h5py.File(sys.argv[2], "r+") as f:
    f["sizes"][5] = f["sizes"][5] + [1, 0]
PY
# shards written by h5py as shard_writer.h documents them, each with a JPEG that decodes only with
# a warning: 3 junk bytes between segments (prep would re-encode it), data cut short (prep would
# refuse it). --verify decodes with TJFLAG_STOPONWARNING.
$PY - "$WORK/bad/h5py" "$WORK/src" <<'PY' || fail "writing shards with h5py"
import glob, io, sys, h5py, numpy as np
from PIL import Image
jpegs = sorted(glob.glob(sys.argv[2] + "/*/img_*.jpg"))
junk = [p for p in jpegs if b"\x12\x34\x56\xff" in open(p, "rb").read()[:64]]  # see make_jpeg_folder.py
assert junk, "make_jpeg_folder.py made no JPEG with junk bytes"
good = open(jpegs[0], "rb").read()
for k, bad in enumerate([open(junk[0], "rb").read(), good[:len(good) * 2 // 3]]):
    blobs = [good, bad]
    with h5py.File(f"{sys.argv[1]}-{k:05d}.h5", "w", libver=("v110", "latest")) as f:
        f.attrs.update(format="sslrun-shard", version=3, encoding="jpeg", channels=3, num_classes=0,
                       height=0, width=0)
        f.create_dataset("jpeg", data=np.frombuffer(b"".join(blobs), np.uint8), chunks=(1024,), fletcher32=True)
        f.create_dataset("offsets", data=np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64), fletcher32=True)
        sizes = [Image.open(io.BytesIO(b)).size[::-1] for b in blobs]
        f.create_dataset("sizes", data=np.array(sizes, np.int32), fletcher32=True)
PY
rc=0; "$SSLRUN" prep --verify "$WORK/bad" >"$WORK/v.log" 2>&1 || rc=$?
cat "$WORK/v.log"
[ $rc = 1 ] || fail "verify of a damaged shard: exit $rc, expected 1"
grep -q "^ok   $WORK/bad/train-00000.h5: 64 samples" "$WORK/v.log" || fail "the good shard is not reported ok"
grep -q "^BAD  $WORK/bad/train-00001.h5: dataset 'jpeg': .*Fletcher32" "$WORK/v.log" ||
  fail "the flipped byte is not reported with the shard and dataset 'jpeg'"
grep -q "^BAD  $WORK/bad/train-00002.h5: dataset 'jpeg' sample 5 is .* but dataset 'sizes' says" "$WORK/v.log" ||
  fail "the wrong size is not reported"
grep -q "^BAD  $WORK/bad/train-00003.h5: dataset 'offsets' runs from 0 to " "$WORK/v.log" ||
  fail "the wrong offset is not reported"
grep -q "^BAD  $WORK/bad/raw-00000.h5: dataset 'labels' row 7 has value 10, outside \[0, 10)" "$WORK/v.log" ||
  fail "the raw shard's bad label is not reported"
grep -q "^BAD  $WORK/bad/h5py-00000.h5: dataset 'jpeg' sample 1 (bytes \[[0-9]*, [0-9]*)) does not decode: .*extraneous bytes" "$WORK/v.log" ||
  fail "the JPEG with junk bytes is not reported"
grep -q "^BAD  $WORK/bad/h5py-00001.h5: dataset 'jpeg' sample 1 (bytes \[[0-9]*, [0-9]*)) does not decode: .*end of JPEG" "$WORK/v.log" ||
  fail "the JPEG cut short is not reported"
grep -q "verify: 7 shards, 1 ok, 6 bad" "$WORK/v.log" || fail "verify summary"
"$SSLRUN" prep --verify "$WORK/raw" >"$WORK/v.log" 2>&1 || { cat "$WORK/v.log"; fail "verify of a good raw shard"; }
grep -q "^ok   $WORK/raw/train-00000.h5: 200 samples (raw 16x16x3)\$" "$WORK/v.log" || { cat "$WORK/v.log"; fail "raw ok line"; }

# a truncated JPEG stops the prep, naming the file, and leaves no shard behind
cp -r "$WORK/src" "$WORK/src2"
victim=$(ls "$WORK/src2/Coat/"*.jpg | head -3 | tail -1)
head -c $(( $(stat -c %s "$victim") / 2 )) "$victim" > "$WORK/cut" && mv "$WORK/cut" "$victim"
rc=0; "$SSLRUN" prep images "$WORK/src2" --out "$WORK/cutdata" --format jpeg >"$WORK/log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "$victim: corrupt or unsupported JPEG" "$WORK/log" ||
  { cat "$WORK/log"; fail "truncated JPEG: exit $rc"; }
[ -z "$(ls "$WORK/cutdata")" ] || fail "a failed prep left $(ls "$WORK/cutdata")"

# re-prep with larger shards: refused (the manifest says 64), then with --force it starts over and
# removes the stale higher-numbered shards
rc=0; "$SSLRUN" prep images "$WORK/src" --out "$WORK/data" --format jpeg --shard-size 1000 >"$WORK/log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "train.manifest says --shard-size 64 (now 1000).*--force" "$WORK/log" ||
  { cat "$WORK/log"; fail "re-prep with another shard size: exit $rc"; }
"$SSLRUN" prep images "$WORK/src" --out "$WORK/data" --format jpeg --shard-size 1000 --force >"$WORK/log" 2>&1 ||
  { cat "$WORK/log"; fail "re-prep --force failed"; }
[ "$(cd "$WORK/data" && ls train-*)" = "train-00000.h5" ] || fail "stale shards left: $(ls "$WORK/data")"
rc=0; "$SSLRUN" prep images "$WORK/src" --out "$WORK/x" --quality 50 >"$WORK/log" 2>&1 || rc=$?
[ $rc = 2 ] || fail "--quality without --format jpeg: exit $rc"
rc=0; "$SSLRUN" prep --verify "$WORK/nothing-here" >"$WORK/log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "nothing-here" "$WORK/log" || fail "verify of a missing path: exit $rc"
echo "prep images --format jpeg, prep --verify: all checks passed"
