/* Writes the seed inputs of the fuzz harnesses with sslrun's own writers, so that a change of a file
 * format (e.g. the checkpoint layout) is followed by regenerating them with one command:
 *     build-fuzz/fuzz_gen_seeds tests/fuzz          (or: scripts/fuzz.sh --seeds)
 * Output, under the given directory:
 *   corpus/shard/seed-*.h5   tiny shards (8x8 images, 4-16 samples, with and without labels,
 *                            chunked/deflated, and one contiguous h5py-style file without the
 *                            format/version attributes)
 *   corpus/ckpt/seed-*.h5    tiny checkpoints from ssl_ckpt_save, with the arrays fuzz_ckpt
 *                            registers (fuzz_common.h, and the int64 "method/queue_ptr"), with
 *                            and without config and segments,
 *                            and one written by hand with contiguous datasets
 *                            (seed-handmade-contiguous.h5)
 *   corpus/config/seed-*     YAML configs, some with overrides appended (NUL-separated)
 *   config.dict              libFuzzer dictionary: every section, key, dotted override and enum
 *                            value of the schema, and YAML punctuation
 * Existing seed-* files are overwritten; other corpus files are left alone. */
#include "fuzz_common.h"

#include "io/checkpoint.h"
#include "io/config.h"
#include "io/jpeg_shard_writer.h"
#include "io/shard_writer.h"

#include <turbojpeg.h>

#include <hdf5.h>

static int failures;

#define REQUIRE(cond, ...)                                                                     \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz_gen_seeds: " __VA_ARGS__);                                   \
            fputc('\n', stderr);                                                               \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    REQUIRE(fp && fwrite(data, 1, n, fp) == n && fclose(fp) == 0, "cannot write %s", path);
}

static void copy_file(const char *from, const char *to)
{
    FILE *fp = fopen(from, "rb");
    REQUIRE(fp, "cannot read %s", from);
    if (!fp) return;
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, fp);
    REQUIRE(feof(fp), "%s: seed larger than 64 KiB", from);
    fclose(fp);
    write_bytes(to, buf, n);
}

/* ---- shards ----------------------------------------------------------------------------------- */

static void shard_seed(const char *dir, const char *prefix, int h, int w, int c, int n, int ncls,
                       int chunk, int deflate)
{
    ssl_shard_spec sp = {dir, prefix, h, w, c, ncls, ncls > 0, n, chunk, deflate};
    char err[1024];
    ssl_shard_writer *wr = ssl_shard_writer_open(&sp, err, sizeof err);
    REQUIRE(wr, "%s", err);
    if (!wr) return;
    size_t bytes = (size_t)h * w * c;
    uint8_t *img = malloc(bytes * (size_t)n);
    int32_t lab[64];
    for (size_t i = 0; i < bytes * (size_t)n; i++) img[i] = (uint8_t)(i * 37 + i / 64);
    for (int i = 0; i < n; i++) lab[i] = ncls ? i % ncls : 0;
    int rc = ssl_shard_writer_add(wr, img, ncls ? lab : NULL, n, err, sizeof err);
    REQUIRE(rc == 0, "%s", err);
    rc = ssl_shard_writer_close(wr, err, sizeof err);
    REQUIRE(rc == 0, "%s", err);
    free(img);
}

/* A JPEG shard (version 3) of n tiny 8 x 12 images, encoded here with TurboJPEG. */
static void jpeg_shard_seed(const char *dir, const char *prefix, int n, int ncls)
{
    ssl_jpeg_shard_spec sp = {dir, prefix, ncls, ncls > 0, n, 256};
    char err[1024];
    ssl_jpeg_shard_writer *wr = ssl_jpeg_shard_writer_open(&sp, err, sizeof err);
    REQUIRE(wr, "%s", err);
    if (!wr) return;
    tjhandle tj = tjInitCompress();
    uint8_t img[8 * 12 * 3];
    for (int k = 0; k < n; k++) {
        for (int i = 0; i < (int)sizeof img; i++) img[i] = (uint8_t)(i * 7 + k * 31);
        unsigned char *buf = NULL;
        unsigned long len = 0;
        REQUIRE(tjCompress2(tj, img, 12, 0, 8, TJPF_RGB, &buf, &len, TJSAMP_420, 75, 0) == 0, "tjCompress2");
        REQUIRE(ssl_jpeg_shard_writer_add(wr, buf, len, 8, 12, ncls ? k % ncls : 0, err, sizeof err) == 0, "%s",
                err);
        tjFree(buf);
    }
    tjDestroy(tj);
    REQUIRE(ssl_jpeg_shard_writer_close(wr, err, sizeof err) == 0, "%s", err);
}

static void int_attr(hid_t f, const char *name, int v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(a >= 0 && H5Awrite(a, H5T_NATIVE_INT, &v) >= 0 && H5Aclose(a) >= 0, "attr %s", name);
    H5Sclose(sp);
}

/* What h5py writes with libver=("v110", "latest") (the reader refuses HDF5's unchecksummed default
 * format): contiguous datasets, no format/version/num_classes attributes. */
static void shard_h5py_style(const char *path)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    REQUIRE(f >= 0, "cannot create %s", path);
    if (f < 0) return;
    hsize_t dims[4] = {4, 8, 8, 1}, ldim[1] = {4};
    uint8_t img[4 * 64];
    int32_t lab[4] = {3, 1, 4, 1};
    for (int i = 0; i < 4 * 64; i++) img[i] = (uint8_t)(255 - i);
    hid_t s = H5Screate_simple(4, dims, NULL), ls = H5Screate_simple(1, ldim, NULL);
    hid_t d = H5Dcreate2(f, "images", H5T_STD_U8LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t l = H5Dcreate2(f, "labels", H5T_STD_I32LE, ls, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(d >= 0 && l >= 0 && H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, img) >= 0 &&
                H5Dwrite(l, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, lab) >= 0,
            "write %s", path);
    int_attr(f, "height", 8);
    int_attr(f, "width", 8);
    int_attr(f, "channels", 1);
    H5Dclose(d);
    H5Dclose(l);
    H5Sclose(s);
    H5Sclose(ls);
    REQUIRE(H5Fclose(f) >= 0, "close %s", path);
}

/* ---- checkpoints ------------------------------------------------------------------------------ */

static void ckpt_seed(const char *scratch, const char *out, int64_t step, const char *config,
                      const char *segments)
{
    static float params[FZ_CKPT_PARAMS], mom[FZ_CKPT_MOM], queue[FZ_CKPT_QUEUE];
    static int64_t qptr[FZ_CKPT_I64];
    for (int i = 0; i < FZ_CKPT_I64; i++) qptr[i] = (int64_t)(i * 4096 - 1) * 1000003;
    for (int i = 0; i < FZ_CKPT_PARAMS; i++) params[i] = 0.25f * (float)(i - 7);
    for (int i = 0; i < FZ_CKPT_MOM; i++) mom[i] = 1e-3f * (float)i;
    for (int i = 0; i < FZ_CKPT_QUEUE; i++) queue[i] = -1.0f / (float)(i + 1);
    ssl_ckpt ck;
    memset(&ck, 0, sizeof ck);
    ck.step = step;
    ck.epoch = step / 10;
    ck.epoch_step = step % 10;
    ck.world_size = 1;
    ck.in_chans = 1;
    ck.seed = 42;
    ck.config_yaml = config;
    ck.segments = segments;
    ssl_ckpt_add(&ck, "params", params, FZ_CKPT_PARAMS);
    ssl_ckpt_add(&ck, "optim/m", mom, FZ_CKPT_MOM);
    ssl_ckpt_add_sharded(&ck, "queue", queue, FZ_CKPT_QUEUE, 0, FZ_CKPT_QUEUE);
    ssl_ckpt_add_i64(&ck, "method/queue_ptr", qptr, FZ_CKPT_I64);
    char err[1024], path[1024];
    int rc = ssl_ckpt_save(&ck, scratch, 0, err, sizeof err);
    REQUIRE(rc == 0, "%s", err);
    if (rc != 0) return;
    REQUIRE(ssl_ckpt_find_latest(scratch, path, sizeof path) == 0, "no checkpoint in %s", scratch);
    copy_file(path, out);
    unlink(path);
}

/* A checkpoint written by hand rather than by ssl_ckpt_save: checksummed metadata (the reader
 * refuses superblocks below 2) but contiguous, unfiltered datasets and a scalar string 'config', as
 * another tool or an older sslrun could write; a different structure for the fuzzer to mutate. */
static void ckpt_handmade_seed(const char *path)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    REQUIRE(f >= 0, "cannot create %s", path);
    if (f < 0) return;
    const char *an[7] = {"version", "step", "epoch", "epoch_step", "world_size", "in_chans", "seed"};
    const long long av[7] = {SSL_CKPT_VERSION, 12, 1, 2, 1, 1, 42};
    hid_t sc = H5Screate(H5S_SCALAR);
    for (int i = 0; i < 7; i++) {
        hid_t a = H5Acreate2(f, an[i], H5T_STD_I64LE, sc, H5P_DEFAULT, H5P_DEFAULT);
        REQUIRE(a >= 0 && H5Awrite(a, H5T_NATIVE_LLONG, &av[i]) >= 0 && H5Aclose(a) >= 0, "attr");
    }
    const char *names[3] = {"params", "optim/m", "queue"};
    const hsize_t n[3] = {FZ_CKPT_PARAMS, FZ_CKPT_MOM, FZ_CKPT_QUEUE};
    float v[FZ_CKPT_PARAMS];
    for (int i = 0; i < FZ_CKPT_PARAMS; i++) v[i] = (float)i - 3.5f;
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    for (int i = 0; i < 3; i++) {
        hid_t sp = H5Screate_simple(1, &n[i], NULL);
        hid_t d = H5Dcreate2(f, names[i], H5T_IEEE_F32LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        REQUIRE(d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0 &&
                    H5Dclose(d) >= 0,
                "dataset %s", names[i]);
        H5Sclose(sp);
    }
    const hsize_t ni = FZ_CKPT_I64;
    int64_t iv[FZ_CKPT_I64];
    for (int i = 0; i < FZ_CKPT_I64; i++) iv[i] = (int64_t)1 << (20 * i);
    hid_t isp = H5Screate_simple(1, &ni, NULL);
    hid_t id = H5Dcreate2(f, "method/queue_ptr", H5T_STD_I64LE, isp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(id >= 0 && H5Dwrite(id, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, iv) >= 0 && H5Dclose(id) >= 0,
            "dataset method/queue_ptr");
    H5Sclose(isp);
    H5Pclose(lcpl);
    const char *texts[2][2] = {{"config", "run:\n  seed: 42\nmodel:\n  img_size: 8\n"},
                               {"segments", "w 0 16\nb 16 8\n"}};
    for (int i = 0; i < 2; i++) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, strlen(texts[i][1]) + 1);
        hid_t d = H5Dcreate2(f, texts[i][0], t, sc, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        REQUIRE(d >= 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, texts[i][1]) >= 0 &&
                    H5Dclose(d) >= 0,
                "dataset %s", texts[i][0]);
        H5Tclose(t);
    }
    H5Sclose(sc);
    REQUIRE(H5Fclose(f) >= 0, "close %s", path);
}

/* ---- config ----------------------------------------------------------------------------------- */

static void config_seed(const char *dir, const char *name, const char *yaml, const char *const *ov,
                        int nov)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/seed-%s", dir, name);
    FILE *fp = fopen(path, "wb");
    REQUIRE(fp, "cannot write %s", path);
    if (!fp) return;
    fputs(yaml, fp);
    for (int i = 0; i < nov; i++) {
        fputc('\0', fp);
        fputs(ov[i], fp);
    }
    REQUIRE(fclose(fp) == 0, "write %s", path);
}

static void dict_entry(FILE *fp, const char *s)
{
    fputc('"', fp);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(fp, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f) fprintf(fp, "\\x%02X", *p);
        else fputc(*p, fp);
    }
    fputs("\"\n", fp);
}

static void write_dict(const char *path)
{
    FILE *fp = fopen(path, "w");
    REQUIRE(fp, "cannot write %s", path);
    if (!fp) return;
    fprintf(fp, "# libFuzzer dictionary for fuzz_config, written by fuzz_gen_seeds from the schema "
                "(io/config_schema.c).\n");
    int n;
    const ssl_config_key *s = ssl_config_schema(&n);
    char buf[256];
    for (int i = 0; i < n; i++) {
        if (i == 0 || strcmp(s[i].section, s[i - 1].section) != 0) {
            snprintf(buf, sizeof buf, "%s:\n", s[i].section);
            dict_entry(fp, buf);
        }
        snprintf(buf, sizeof buf, "  %s: ", s[i].key);
        dict_entry(fp, buf);
        snprintf(buf, sizeof buf, "%s.%s=", s[i].section, s[i].key);
        dict_entry(fp, buf);
        if (s[i].type == SSL_CONFIG_ENUM) {
            const char *c = s[i].choices;
            while (*c) {
                size_t l = strcspn(c, "|");
                snprintf(buf, sizeof buf, "%.*s", (int)l, c);
                dict_entry(fp, buf);
                c += l + (c[l] == '|');
            }
        }
    }
    static const char *const yaml[] = {
        "\n", "  ", ": ", "- ", "[", "]", "{", "}", ", ", " #", "&a ", "*a", "<<: ", "!!str ",
        "!!int ", "!!float ", "!!map", "!!seq", "!x ", "---\n", "...\n", "'", "\"", "|\n", ">-\n",
        "~", "null", "true", "false", "yes", "Off", ".inf", "-.inf", ".nan", "1e308", "-0",
        "4.9e-324", "2147483647", "-2147483648", "2147483648", "0x10", "0o17", "1_000", "%YAML 1.1\n",
        "%TAG ! tag:x,2000:\n", "\xEF\xBB\xBF", "\xC2\x85", "\xE2\x80\xA8", "\t", "\r\n", "\\x00",
        "\\u00e9", "*.h5", "=", "\x00"};
    for (size_t i = 0; i < sizeof yaml / sizeof yaml[0]; i++) {
        if (!yaml[i][0]) {
            fputs("\"\\x00\"\n", fp);
            continue;
        }
        dict_entry(fp, yaml[i]);
    }
    REQUIRE(fclose(fp) == 0, "write %s", path);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FUZZ_DIR   (writes FUZZ_DIR/corpus/{shard,ckpt,config}/seed-* and "
                        "FUZZ_DIR/config.dict)\n", argv[0]);
        return 2;
    }
    const char *root = argv[1];
    char dir[1024], path[1200];
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);

    snprintf(dir, sizeof dir, "%s/corpus/shard", root);
    shard_seed(dir, "seed-labels-8x8x1", 8, 8, 1, 4, 10, 2, 0);
    shard_seed(dir, "seed-nolabels-8x8x3", 8, 8, 3, 8, 0, 0, 1);
    shard_seed(dir, "seed-labels-8x8x1-deflate", 8, 8, 1, 16, 4, 16, 6);
    jpeg_shard_seed(dir, "seed-jpeg-labels", 6, 3);
    snprintf(path, sizeof path, "%s/seed-h5py-style.h5", dir);
    shard_h5py_style(path);

    snprintf(dir, sizeof dir, "%s/corpus/ckpt", root);
    const char *scratch = fz_scratch();
    snprintf(path, sizeof path, "%s/seed-full.h5", dir);
    ckpt_seed(scratch, path, 30,
              "run:\n  name: fuzz\n  seed: 42\nmodel:\n  arch: resnet18\n  img_size: 8\n"
              "augment:\n  mean: [0.5]\n  std: [0.25]\n",
              "conv1.w 0 16\nbn1.b 16 8\n");
    snprintf(path, sizeof path, "%s/seed-bare.h5", dir);
    ckpt_seed(scratch, path, 1, NULL, NULL);
    snprintf(path, sizeof path, "%s/seed-badconfig.h5", dir);
    ckpt_seed(scratch, path, 7, "optim:\n  lr: fast\n", "w 0 24\n");
    snprintf(path, sizeof path, "%s/seed-handmade-contiguous.h5", dir);
    ckpt_handmade_seed(path);

    snprintf(dir, sizeof dir, "%s/corpus/config", root);
    ssl_config c;
    ssl_config_defaults(&c);
    char *def = ssl_config_to_yaml(&c);
    REQUIRE(def, "ssl_config_to_yaml");
    if (def) config_seed(dir, "defaults.yaml", def, NULL, 0);
    free(def);
    const char *const ov1[] = {"optim.lr=0.1", "data.train=data/train-*.h5", "eval.knn_k=[10, 20]",
                               "model.arch=vit_tiny"};
    config_seed(dir, "overrides",
                "run:\n  name: x\n  seed: 3\nmodel:\n  arch: resnet18\n  img_size: 32\n"
                "augment:\n  crop_scale: [0.2, 1.0]\n  mean:\n    - 0.5\n  std: [0.5]\n",
                ov1, 4);
    const char *const ov2[] = {"augment.mean=[0.1,0.2,0.3]", "augment.std=", "run.name='#a: b'",
                               "optim.name=lars"};
    config_seed(dir, "crosskey", "optim: {name: sgd, lr: 0.3, nesterov: yes}\n# comment\n", ov2, 4);
    config_seed(dir, "errors",
                "run:\n  seed: 1\n  seed: 2\nmodle:\n  x: 1\nmethod:\n  temperature: \"0.1\"\n",
                NULL, 0);
    config_seed(dir, "anchors", "data: &d\n  batch_size: 64\neval: ~\nschedule:\n  epochs: 1\n---\n"
                "run: *d\n", NULL, 0);
    write_dict(strcat(strcpy(path, root), "/config.dict"));
    return failures ? 1 : 0;
}
