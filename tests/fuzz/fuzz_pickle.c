/* libFuzzer harness for the CIFAR unpickler (io/pickle_cifar.c): the input is parsed from memory
 * with ssl_pickle_cifar_parse twice, as a CIFAR-10 batch (b'labels', 10 classes) and as a CIFAR-100
 * batch (b'fine_labels', 100 classes), and the CIFAR-10 way again from a file with
 * ssl_pickle_cifar_read.
 *
 * Invariants checked (abort() on violation):
 *  - a refusal comes with a message that starts with the name it was given ("NAME: "); one about an
 *    opcode names its offset ("pickle opcode 0xNN ('c') at offset K: ", K inside the input); one
 *    about the labels after the parse names the labels key; the batch is then empty;
 *  - an accepted batch has n >= 0, n x 3072 bytes of data and n labels in [0, num_classes) (every
 *    byte is read, so ASan sees a buffer shorter than promised);
 *  - parsing from memory and reading the same bytes from a file agree (result, message, batch). */
#define FZ_DEFAULT_INIT
#include "fuzz_common.h"

#include "framework/core/check.h"
#include "io/pickle_cifar.h"

#include <inttypes.h>

static void check_refusal(const char *err, const char *name, const char *key, size_t size,
                          const ssl_cifar_batch *b)
{
    size_t nl = strlen(name);
    FZ_CHECK(err[0] != '\0', "refused with an empty message");
    FZ_CHECK(strncmp(err, name, nl) == 0 && err[nl] == ':' && err[nl + 1] == ' ',
             "message does not start with the name '%s': %s", name, err);
    FZ_CHECK(b->n == 0 && b->data == NULL && b->labels == NULL, "refused, but the batch is not empty");
    const char *rest = err + nl + 2;
    if (strncmp(rest, "pickle opcode 0x", 16) == 0) {
        /* "pickle opcode 0x%02x ('%c') at offset %zu: " */
        const char *at = strstr(rest, " at offset ");
        unsigned long long off = 0;
        FZ_CHECK(at && sscanf(at, " at offset %llu:", &off) == 1 && off < size,
                 "opcode message without an offset inside the %zu-byte input: %s", size, err);
    } else if (strstr(rest, "label") && strncmp(rest, "ends at offset", 14) != 0) {
        char want[64];
        snprintf(want, sizeof want, "b'%s'", key);
        FZ_CHECK(strstr(rest, want) != NULL, "labels message does not name %s: %s", want, err);
    }
}

static void check_batch(const ssl_cifar_batch *b, int num_classes)
{
    FZ_CHECK(b->n >= 0 && b->data != NULL && b->labels != NULL, "accepted batch: n %" PRId64 ", data %p, labels %p",
             b->n, (void *)b->data, (void *)b->labels);
    unsigned sum = 0;
    for (size_t i = 0; i < (size_t)b->n * SSL_CIFAR_IMAGE_BYTES; i++) sum += b->data[i];
    for (int64_t i = 0; i < b->n; i++)
        FZ_CHECK(b->labels[i] >= 0 && b->labels[i] < num_classes, "label %" PRId64 " is %d, %d classes", i,
                 b->labels[i], num_classes);
    (void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct {
        const char *key;
        int classes;
    } kinds[2] = {{"labels", 10}, {"fine_labels", 100}};
    char path[512], err[2048], err2[2048];
    fz_write_file("batch", data, size, path, sizeof path);
    for (int k = 0; k < 2; k++) {
        ssl_cifar_batch b;
        err[0] = '\0';
        int rc = ssl_pickle_cifar_parse(data, size, path, kinds[k].key, kinds[k].classes, &b, err, sizeof err);
        FZ_CHECK(rc == 0 || rc == -1, "ssl_pickle_cifar_parse returned %d", rc);
        if (rc != 0) check_refusal(err, path, kinds[k].key, size, &b);
        else check_batch(&b, kinds[k].classes);
        if (k == 0) { /* the file entry point: the same bytes, the same answer */
            ssl_cifar_batch f;
            err2[0] = '\0';
            int rc2 = ssl_pickle_cifar_read(path, kinds[k].key, kinds[k].classes, &f, err2, sizeof err2);
            FZ_CHECK(rc2 == rc, "parse returned %d, read %d (%s / %s)", rc, rc2, err, err2);
            if (rc != 0) {
                FZ_CHECK(strcmp(err, err2) == 0, "parse and read differ:\n  %s\n  %s", err, err2);
            } else {
                FZ_CHECK(f.n == b.n && memcmp(f.data, b.data, (size_t)b.n * SSL_CIFAR_IMAGE_BYTES) == 0 &&
                             memcmp(f.labels, b.labels, (size_t)b.n * sizeof *b.labels) == 0,
                         "parse and read give different batches");
            }
            ssl_cifar_batch_free(&f);
        }
        ssl_cifar_batch_free(&b);
        FZ_CHECK(b.n == 0 && b.data == NULL && b.labels == NULL, "ssl_cifar_batch_free left the batch set");
    }
    return 0;
}
