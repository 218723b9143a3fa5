/* libFuzzer harness for the checkpoint reader (io/checkpoint.c), serial (comm = NULL): the input is
 * written to a file, loaded with ssl_ckpt_load into the arrays gen_seeds.c saves (fuzz_common.h,
 * and the int64 "method/queue_ptr" below), and its config text read with ssl_ckpt_read_config
 * and, if present, parsed as a config.
 *
 * Invariants checked (abort() on violation): every failure comes with a non-empty message naming
 * the file (checkpoint.h: "a message naming the file and dataset"); a config read from it is either
 * accepted or rejected with a message naming "PATH:/config". */
#include <hdf5.h>

#define FZ_DEFAULT_INIT
#include "fuzz_common.h"

#include "io/checkpoint.h"
#include "io/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], err[2048] = "";
    fz_write_file("ckpt-0000000001.h5", data, size, path, sizeof path);

    static float params[FZ_CKPT_PARAMS], mom[FZ_CKPT_MOM], queue[FZ_CKPT_QUEUE];
    static int64_t qptr[FZ_CKPT_I64];
    ssl_ckpt ck;
    memset(&ck, 0, sizeof ck);
    ssl_ckpt_add(&ck, "params", params, FZ_CKPT_PARAMS);
    ssl_ckpt_add(&ck, "optim/m", mom, FZ_CKPT_MOM);
    ssl_ckpt_add_sharded(&ck, "queue", queue, FZ_CKPT_QUEUE, 0, FZ_CKPT_QUEUE);
    ssl_ckpt_add_i64(&ck, "method/queue_ptr", qptr, FZ_CKPT_I64);
    int rc = ssl_ckpt_load(&ck, path, err, sizeof err);
    if (rc != 0)
        FZ_CHECK(err[0] != '\0' && strstr(err, path) != NULL,
                 "ssl_ckpt_load error does not name the file: '%s'", err);
#ifdef SSL_CKPT_DAMAGED /* format 2: failures are classified */
    FZ_CHECK(rc == 0 || rc == SSL_CKPT_DAMAGED || rc == SSL_CKPT_INCOMPATIBLE,
             "ssl_ckpt_load returned %d", rc);
#endif

    char *yaml = NULL;
    err[0] = '\0';
    if (ssl_ckpt_read_config(path, &yaml, err, sizeof err) != 0) {
        FZ_CHECK(err[0] != '\0' && strstr(err, path) != NULL,
                 "ssl_ckpt_read_config error does not name the file: '%s'", err);
        FZ_CHECK(yaml == NULL, "ssl_ckpt_read_config failed but returned text");
    } else {
        FZ_CHECK(yaml != NULL, "ssl_ckpt_read_config succeeded without text");
        char name[600];
        snprintf(name, sizeof name, "%s:/config", path);
        ssl_config c;
        ssl_config_defaults(&c);
        err[0] = '\0';
        if (ssl_config_parse(&c, yaml, strlen(yaml), name, err, sizeof err) != 0)
            FZ_CHECK(err[0] != '\0' && strncmp(err, name, strlen(name)) == 0,
                     "config error does not name '%s': '%s'", name, err);
        free(yaml);
    }
    check_no_open_objects();
    return 0;
}
