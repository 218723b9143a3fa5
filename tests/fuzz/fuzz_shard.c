/* libFuzzer harness for the HDF5 shard reader (io/dataset.c): the input is written to a file in a
 * per-process scratch directory, opened with ssl_dataset_open, and when it opens, a few samples are
 * read (first, last, a run of consecutive rows, and an out-of-range index that must be refused).
 *
 * Invariants checked (abort() on violation):
 *  - a failed open or read comes with a message naming the file;
 *  - an open dataset has a positive size and shape, labels (when present) in [0, num_classes);
 *  - without labels, ssl_dataset_read reports -1 for every label.
 * libhdf5 is not instrumented: ASan sees its heap misuse only through intercepted calls (memcpy,
 * free, ...) and segfaults, UBSan not at all. */
#include <hdf5.h>

#define FZ_DEFAULT_INIT
#include "fuzz_common.h"

#include "framework/core/check.h"
#include "io/dataset.h"

/* The harness allocates the output of a read itself: samples larger than this are not read (the
 * reader would do it, but 2 GiB per sample, which the format allows, is out of a fuzzer's RSS
 * budget). The open path, where the validation lives, is exercised for every input. */
#define READ_MAX_BYTES ((size_t)4 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], err[2048] = "";
    fz_write_file("shard.h5", data, size, path, sizeof path);
    ssl_dataset *d = ssl_dataset_open(path, err, sizeof err);
    if (!d) {
        FZ_CHECK(err[0] != '\0', "ssl_dataset_open failed with an empty message");
        FZ_CHECK(strstr(err, path) != NULL, "open error does not name the file: %s", err);
        check_no_open_objects();
        return 0;
    }
    int64_t n = ssl_dataset_size(d);
    int h = ssl_dataset_height(d), w = ssl_dataset_width(d), c = ssl_dataset_channels(d);
    int nc = ssl_dataset_num_classes(d), hl = ssl_dataset_has_labels(d), jpeg = ssl_dataset_is_jpeg(d);
    FZ_CHECK(n > 0 && (jpeg ? h == 0 && w == 0 : h > 0 && w > 0) && c > 0 && nc >= 0,
             "open dataset: n %lld shape %dx%dx%d classes %d jpeg %d", (long long)n, h, w, c, nc, jpeg);
    FZ_CHECK(ssl_dataset_num_shards(d) == 1 && ssl_dataset_shard_path(d, 0) &&
                 strcmp(ssl_dataset_shard_path(d, 0), path) == 0,
             "one file is one shard");

    if (jpeg) {
        /* sizes held in memory within JPEG's limits; encoded reads of {0, n-1} and {0, 1} fit the
         * offsets; an index past the end is refused naming the file */
        const int32_t *hw = ssl_dataset_sizes(d);
        FZ_CHECK(hw != NULL, "JPEG dataset without sizes");
        for (int64_t i = 0; i < n; i++)
            FZ_CHECK(hw[2 * i] > 0 && hw[2 * i + 1] > 0 && hw[2 * i] <= 65535 && hw[2 * i + 1] <= 65535,
                     "row %lld size %d x %d", (long long)i, hw[2 * i], hw[2 * i + 1]);
        int64_t idx[4] = {0, n - 1, 0, 1};
        int k = n >= 2 ? 4 : 2;
        uint8_t *buf = NULL;
        size_t cap = 0, off[5];
        int32_t lab[4];
        if (ssl_dataset_read_encoded(d, idx, k, &buf, &cap, off, lab, err, sizeof err) != 0)
            FZ_CHECK(err[0] != '\0' && strstr(err, path) != NULL, "read error does not name the file: %s", err);
        else
            FZ_CHECK(off[k] <= cap, "encoded bytes %zu past the buffer of %zu", off[k], cap);
        int64_t bad = n;
        err[0] = '\0';
        FZ_CHECK(ssl_dataset_read_encoded(d, &bad, 1, &buf, &cap, off, NULL, err, sizeof err) != 0 &&
                     strstr(err, path) != NULL,
                 "index %lld of %lld rows was not refused with a message naming the file: %s", (long long)bad,
                 (long long)n, err);
        ssl_free(buf);
        ssl_dataset_close(d);
        check_no_open_objects();
        return 0;
    }
    size_t sample = (size_t)h * (size_t)w * (size_t)c;
    if (sample <= READ_MAX_BYTES / 4) {
        int64_t idx[4] = {0, n - 1, 0, 1};
        int k = n >= 2 ? 4 : 2; /* {0, n-1} and, if there are two rows, the run {0, 1} */
        uint8_t *img = malloc((size_t)k * sample);
        int32_t lab[4];
        FZ_CHECK(img != NULL, "out of memory");
        if (ssl_dataset_read(d, idx, k, img, lab, err, sizeof err) != 0) {
            /* a corrupt data block is only found when read */
            FZ_CHECK(err[0] != '\0' && strstr(err, path) != NULL,
                     "read error does not name the file: %s", err);
        } else {
            for (int i = 0; i < k; i++)
                FZ_CHECK(hl ? lab[i] >= 0 && (nc == 0 || lab[i] < nc) : lab[i] == -1,
                         "label %d of row %lld (has_labels %d, classes %d)", lab[i],
                         (long long)idx[i], hl, nc);
        }
        int64_t bad = n;
        err[0] = '\0';
        FZ_CHECK(ssl_dataset_read(d, &bad, 1, img, NULL, err, sizeof err) != 0 &&
                     strstr(err, path) != NULL,
                 "index %lld of %lld rows was not refused with a message naming the file: %s",
                 (long long)bad, (long long)n, err);
        free(img);
    }
    ssl_dataset_close(d);
    check_no_open_objects();
    return 0;
}
