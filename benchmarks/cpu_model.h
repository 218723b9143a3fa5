/* The CPU's model name, printed with every benchmark figure (figures are compared only within one
 * run on one machine, and the machines differ). */
#ifndef SSL_BENCH_CPU_MODEL_H
#define SSL_BENCH_CPU_MODEL_H

#include <stdio.h>
#include <string.h>

static inline void bench_cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) || !colon) continue;
        colon += 1 + (colon[1] == ' ');
        colon[strcspn(colon, "\n")] = 0;
        snprintf(buf, len, "%s", colon);
        break;
    }
    fclose(f);
}

#endif
