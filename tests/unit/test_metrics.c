/* metrics.jsonl records: valid JSON per line, escaping, non-finite values as null, append mode, and
 * a resume from step S dropping the records of later steps (each step logged once) but no header. */
#include <stdio.h>

#include "common/testutil.h"
#include "io/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char path[] = "/tmp/ssl_metrics_XXXXXX";
    int fd = mkstemp(path);
    SSL_EXPECT(fd >= 0, "mkstemp");
    close(fd);
    ssl_metrics m;
    for (int rep = 0; rep < 2; rep++) {
        SSL_EXPECT(ssl_metrics_open(&m, path, 10 + rep) == 0, "open %s", path);
        ssl_metrics_begin(&m);
        ssl_metrics_int(&m, "step", 10 + rep);
        ssl_metrics_num(&m, "loss", rep ? NAN : 1.5);
        ssl_metrics_str(&m, "note", "a \"q\"\\");
        ssl_metrics_end(&m);
        ssl_metrics_close(&m);
    }
    FILE *fp = fopen(path, "r");
    char l1[256] = "", l2[256] = "";
    SSL_EXPECT(fp && fgets(l1, sizeof l1, fp) && fgets(l2, sizeof l2, fp), "two lines appended");
    if (fp) fclose(fp);
    SSL_EXPECT(strcmp(l1, "{\"step\":10,\"loss\":1.5,\"note\":\"a \\\"q\\\"\\\\\"}\n") == 0, "line 1: %s", l1);
    SSL_EXPECT(strcmp(l2, "{\"step\":11,\"loss\":null,\"note\":\"a \\\"q\\\"\\\\\"}\n") == 0, "line 2: %s", l2);
    /* a header and steps 12..14; resuming from 12 keeps the header, steps 10-12, drops 13 and 14 */
    SSL_EXPECT(ssl_metrics_open(&m, path, 11) == 0, "reopen");
    ssl_metrics_begin(&m);
    ssl_metrics_str(&m, "event", "start");
    ssl_metrics_end(&m);
    for (int s = 12; s <= 14; s++) {
        ssl_metrics_begin(&m);
        ssl_metrics_int(&m, "step", s);
        ssl_metrics_end(&m);
    }
    ssl_metrics_close(&m);
    SSL_EXPECT(ssl_metrics_open(&m, path, 12) == 0, "resume open");
    ssl_metrics_close(&m);
    fp = fopen(path, "r");
    char all[1024] = "";
    size_t got = fp ? fread(all, 1, sizeof all - 1, fp) : 0;
    all[got] = 0;
    if (fp) fclose(fp);
    SSL_EXPECT(strstr(all, "\"step\":10,") && strstr(all, "\"step\":11,") && strstr(all, "{\"step\":12}") &&
                   strstr(all, "\"event\":\"start\"") && !strstr(all, "\"step\":13") && !strstr(all, "\"step\":14"),
               "after resume from 12:\n%s", all);
    unlink(path);
    return ssl_test_exit();
}
