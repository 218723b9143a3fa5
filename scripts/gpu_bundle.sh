#!/usr/bin/env bash
# Pack what benchmarks/gpu_check.sh needs on a GPU machine that has CUDA, cuDNN (PyTorch's wheels) and
# Python but none of sslrun's other libraries: the CUDA build's sslrun, test_backend_ops, bench_step
# test_dev_comm, ckpt_compare and bench_loader, every shared library they load except glibc, libstdc++ and
# the CUDA libraries and NCCL (the machine's own are used), one Fashion-MNIST shard and a JPEG shard of
# 256 photographs (benchmarks/make_photo_set.py), into build/gpu-bundle.tar.xz.
#   scripts/gpu_bundle.sh [SHARD.h5]      (default data/fmnist/train-00000.h5)
# Then, with the device tool: run "bash benchmarks/gpu_check.sh" carrying build/gpu-bundle.tar.xz.
set -euo pipefail
cd "$(dirname "$0")/.."
shard=${1:-data/fmnist/train-00000.h5}
[ -f "$shard" ] || { echo "no shard $shard (sslrun prep fashion-mnist --out data/fmnist)" >&2; exit 2; }
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSSL_WITH_CUDA=ON >/dev/null
cmake --build build -j"$(nproc)" --target sslrun test_backend_ops test_dev_comm test_ref_mixed bench_step ckpt_compare \
  bench_loader
grep -q '^SSL_CUDA_BUILT:INTERNAL=ON' build/CMakeCache.txt || { echo "build/ has no CUDA backend" >&2; exit 1; }
d=build/gpu-bundle
rm -rf "$d" && mkdir -p "$d/bin" "$d/lib" "$d/benchmarks" "$d/data" "$d/fixtures"
bins=(build/launch/sslrun build/tests/test_backend_ops build/tests/test_dev_comm build/tests/test_ref_mixed
  build/benchmarks/bench_step build/tests/ckpt_compare build/benchmarks/bench_loader)
cp "${bins[@]}" "$d/bin/"
ln -s ../bin/bench_step "$d/benchmarks/bench_step" # torch_step.py --build looks for benchmarks/bench_step
# glibc's own libraries stay the machine's: they call each other through GLIBC_PRIVATE symbols, which
# differ between glibc releases (Debian 12's libresolv, pulled in by HDF5's libcurl, imports 16)
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libresolv\.so|libnsl\.so|libanl\.so|libutil\.so|libmvec\.so|libnss_|libthread_db|libBrokenLocale|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcudnn|libnvrtc|libnvJitLink|libnccl)'
for b in "${bins[@]}"; do
  ldd "$b" | awk '$3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  [[ $name =~ $skip ]] && continue
  cp -L "$path" "$d/lib/$name"
done
cp "$shard" "$d/data/shard.h5"
photos=build/gpu-photos
if ! [ -f "$photos/jpeg/train-00000.h5" ]; then
  rm -rf "$photos"
  /usr/bin/python3 benchmarks/make_photo_set.py "$photos/images" --images 256 >/dev/null
  build/launch/sslrun prep images "$photos/images" --out "$photos/jpeg" --format jpeg >/dev/null
fi
cp "$photos/jpeg/train-00000.h5" "$d/data/photos.h5"
cp tests/ref/fixtures/mixed.bin "$d/fixtures/"
tar -C "$d" -cJf build/gpu-bundle.tar.xz .
echo "build/gpu-bundle.tar.xz: $(du -h build/gpu-bundle.tar.xz | cut -f1) ($(ls "$d/lib" | wc -l) libraries)"
