/* Rank and device binding from the launcher's environment (see binding.h). */
#define _GNU_SOURCE /* sched_getaffinity and the CPU_*_S macros are GNU extensions */
#include "framework/comm/binding.h"

#include "framework/comm/comm.h"
#include "framework/core/check.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char SRC_COMM[] = "MPI_Comm_split_type", SRC_SINGLE[] = "single process",
                  SRC_GUESS[] = "local rank + 1";

typedef struct {
    ssl_env_fn env;
    void *user;
    char *err;
    size_t errlen;
} lookup;

/* An empty variable counts as unset (`export VAR=` is how users clear one). */
static const char *get(const lookup *L, const char *name)
{
    const char *v = L->env ? L->env(name, L->user) : getenv(name);
    return v && *v ? v : NULL;
}

/* Decimal digits at p into *v; the end, or NULL when there are none or they overflow an int. */
static const char *digits(const char *p, int *v)
{
    long x = 0;
    const char *s = p;
    for (; *s >= '0' && *s <= '9'; s++) {
        x = x * 10 + (*s - '0');
        if (x > INT_MAX) return NULL;
    }
    if (s == p) return NULL;
    *v = (int)x;
    return s;
}

/* *out from the whole of variable `name` (value v); -1 with a message when it is not a count. */
static int count_var(const lookup *L, const char *name, const char *v, int *out)
{
    const char *end = digits(v, out);
    if (end && !*end) return 0;
    snprintf(L->err, L->errlen, "binding: %s='%s' is not a non-negative integer (the launcher's environment)", name, v);
    return -1;
}

/* Walk a Slurm task list ("2(x3),1": 2 tasks on each of 3 nodes, then 1 on the next). *at: the count
 * of node `node` (-1 when node < 0 or beyond the list); *nodes: the expanded length; *uniform: the
 * count when every node has the same, else -1. Returns 0, or -1 when s is not such a list. */
static int slurm_list(const char *s, int node, int *at, int *nodes, int *uniform)
{
    *at = *uniform = -1;
    *nodes = 0;
    for (;;) {
        int n, rep = 1;
        if (!(s = digits(s, &n))) return -1;
        if (*s == '(') {
            if (s[1] != 'x' || !(s = digits(s + 2, &rep)) || *s++ != ')' || rep < 1) return -1;
        }
        if (node >= *nodes && node - *nodes < rep) *at = n;
        *uniform = *nodes == 0 || *uniform == n ? n : -2;
        if (rep > INT_MAX - *nodes) return -1;
        *nodes += rep;
        if (!*s) break;
        if (*s++ != ',') return -1;
    }
    if (*uniform == -2) *uniform = -1;
    return 0;
}

/* Slurm's node-local size: this node's entry of SLURM_TASKS_PER_NODE, else SLURM_NTASKS_PER_NODE.
 * Returns 0 (*size -1 when neither says), or -1 with a message; desc describes where it came from. */
static int slurm_size(const lookup *L, int *size, const char **src, char *desc, size_t desclen)
{
    const char *list = get(L, "SLURM_TASKS_PER_NODE"), *nid = get(L, "SLURM_NODEID");
    *size = -1;
    if (list) {
        int node = -1, at, nodes, uniform;
        if (nid && count_var(L, "SLURM_NODEID", nid, &node)) return -1;
        if (slurm_list(list, node, &at, &nodes, &uniform)) {
            snprintf(L->err, L->errlen, "binding: SLURM_TASKS_PER_NODE='%s' is not a Slurm task list like '2(x3),1'",
                     list);
            return -1;
        }
        if (node >= 0 && at < 0) {
            snprintf(L->err, L->errlen, "binding: SLURM_NODEID=%d is beyond SLURM_TASKS_PER_NODE='%s' (%d node(s))",
                     node, list, nodes);
            return -1;
        }
        /* without a node id only a list that is the same everywhere says this node's count */
        *size = node >= 0 ? at : uniform;
        if (*size >= 0) {
            *src = "SLURM_TASKS_PER_NODE";
            if (node >= 0) snprintf(desc, desclen, "SLURM_TASKS_PER_NODE='%s' at SLURM_NODEID=%d", list, node);
            else snprintf(desc, desclen, "SLURM_TASKS_PER_NODE='%s'", list);
            return 0;
        }
    }
    const char *v = get(L, "SLURM_NTASKS_PER_NODE");
    if (v) {
        if (count_var(L, "SLURM_NTASKS_PER_NODE", v, size)) return -1;
        *src = "SLURM_NTASKS_PER_NODE";
        snprintf(desc, desclen, "SLURM_NTASKS_PER_NODE=%s", v);
    }
    return 0;
}

/* The local rank and size from the first source that names a rank (the order of binding.h).
 * Returns 1 found (*size -1 when no size came with it), 0 none, -1 error. */
static int from_env(const lookup *L, ssl_binding *b, int *size, char *desc, size_t desclen)
{
    static const char *const pairs[][2] = {
        {"OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"},
        {"SLURM_LOCALID", NULL}, /* its size: slurm_size */
        {"PMI_LOCAL_RANK", "PMI_LOCAL_SIZE"},
        {"MPI_LOCALRANKID", "MPI_LOCALNRANKS"},
        {"PALS_LOCAL_RANKID", "PALS_LOCAL_SIZE"},
    };
    *size = -1;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const char *r = get(L, pairs[i][0]);
        if (!r) continue;
        if (count_var(L, pairs[i][0], r, &b->local_rank)) return -1;
        b->source = pairs[i][0];
        if (!pairs[i][1]) return slurm_size(L, size, &b->size_source, desc, desclen) ? -1 : 1;
        const char *s = get(L, pairs[i][1]);
        if (s) {
            if (count_var(L, pairs[i][1], s, size)) return -1;
            b->size_source = pairs[i][1];
            snprintf(desc, desclen, "%s=%s", pairs[i][1], s);
        }
        return 1;
    }
    return 0;
}

void ssl_binding_cpu_list(const unsigned char *on, int n, char *out, size_t size)
{
    if (!size) return;
    out[0] = '\0';
    int total = 0, last = -1;
    for (int i = 0; i < n; i++)
        if (on[i]) total++, last = i;
    char tail[40];
    snprintf(tail, sizeof tail, "... (%d cpus)", total);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        if (!on[i]) continue;
        int j = i;
        while (j + 1 < n && on[j + 1]) j++;
        char piece[32];
        if (j > i) snprintf(piece, sizeof piece, "%s%d-%d", len ? "," : "", i, j);
        else snprintf(piece, sizeof piece, "%s%d", len ? "," : "", i);
        /* room for the tail stays free until the last range is in */
        size_t need = strlen(piece) + (j == last ? 0 : 1 + strlen(tail));
        if (len + need >= size) {
            snprintf(out + len, size - len, "%s%s", len ? "," : "", tail);
            return;
        }
        memcpy(out + len, piece, strlen(piece) + 1);
        len += strlen(piece);
        i = j;
    }
}

/* This process's CPU affinity; the set grows for machines beyond CPU_SETSIZE (EINVAL). */
static void affinity(char *out, size_t size)
{
    for (int n = CPU_SETSIZE; n <= 1 << 16; n *= 4) {
        cpu_set_t *set = CPU_ALLOC(n);
        if (!set) break;
        size_t bytes = CPU_ALLOC_SIZE(n);
        CPU_ZERO_S(bytes, set);
        if (sched_getaffinity(0, bytes, set) == 0) {
            unsigned char *on = ssl_calloc((size_t)n, 1);
            for (int i = 0; i < n; i++) on[i] = CPU_ISSET_S(i, bytes, set) != 0;
            ssl_binding_cpu_list(on, n, out, size);
            ssl_free(on);
            CPU_FREE(set);
            return;
        }
        int e = errno;
        CPU_FREE(set);
        if (e != EINVAL) break;
    }
    snprintf(out, size, "?");
}

static void copy(char *dst, size_t size, const char *src) { snprintf(dst, size, "%s", src ? src : ""); }

int ssl_binding_detect(ssl_binding *b, const struct ssl_comm *comm, int ngpus, ssl_env_fn env, void *user,
                       char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    lookup L = {env, user, err, errlen};
    const char *job;
    if ((job = get(&L, "SLURM_JOB_ID"))) copy(b->launcher, sizeof b->launcher, "slurm");
    else if ((job = get(&L, "PBS_JOBID"))) copy(b->launcher, sizeof b->launcher, "pbs");
    else if (get(&L, "OMPI_COMM_WORLD_SIZE") || get(&L, "PMI_SIZE")) copy(b->launcher, sizeof b->launcher, "mpirun");
    else copy(b->launcher, sizeof b->launcher, "none");
    copy(b->job_id, sizeof b->job_id, job);
    if (gethostname(b->host, sizeof b->host - 1) != 0 || !b->host[0]) copy(b->host, sizeof b->host, "?");
    copy(b->cuda_visible, sizeof b->cuda_visible, get(&L, "CUDA_VISIBLE_DEVICES"));
    affinity(b->cpus, sizeof b->cpus);

    int size;
    char desc[200] = "";
    int found = from_env(&L, b, &size, desc, sizeof desc);
    if (found < 0) return -1;
    const int multi = comm && comm->world > 1;
    if (!found) {
        b->local_rank = multi ? comm->local_rank : 0;
        b->local_size = multi ? comm->local_world : 1;
        b->source = b->size_source = multi ? SRC_COMM : SRC_SINGLE;
    } else {
        if (size < 0) { /* a rank without a size: MPI's count of this node, else the least it can be */
            size = multi ? comm->local_world : b->local_rank + 1;
            b->size_source = multi ? SRC_COMM : SRC_GUESS;
            snprintf(desc, sizeof desc, "%s", b->size_source);
        }
        b->local_size = size;
        if (b->local_rank >= size) {
            snprintf(err, errlen, "binding: %s=%d is not below the %d rank(s) on this node that %s gives: the "
                     "launcher's environment contradicts itself", b->source, b->local_rank, size, desc);
            return -1;
        }
    }
    b->ngpus = ngpus > 0 ? ngpus : 0;
    b->gpu = b->ngpus ? b->local_rank % b->ngpus : -1;
    return 0;
}

void ssl_binding_describe(const ssl_binding *b, int rank, char *out, size_t size)
{
    char sz[64] = "", job[96] = "", dev[320];
    /* a size the environment did not give is worth a look: say where it came from */
    if (strcmp(b->size_source, b->source) != 0 && (b->size_source == SRC_COMM || b->size_source == SRC_GUESS))
        snprintf(sz, sizeof sz, "; size from %s", b->size_source);
    if (strcmp(b->launcher, "none") != 0)
        snprintf(job, sizeof job, " %s%s%s", b->launcher, b->job_id[0] ? " job " : "", b->job_id);
    if (b->gpu < 0) snprintf(dev, sizeof dev, "device cpu");
    else if (b->cuda_visible[0])
        snprintf(dev, sizeof dev, "gpu %d of CUDA_VISIBLE_DEVICES=%s", b->gpu, b->cuda_visible);
    else snprintf(dev, sizeof dev, "gpu %d of %d visible", b->gpu, b->ngpus);
    snprintf(out, size, "binding: rank %d host %s local %d/%d (%s%s)%s; cpus %s; %s", rank, b->host, b->local_rank,
             b->local_size, b->source, sz, job, b->cpus[0] ? b->cpus : "?", dev);
}

void ssl_binding_report(const ssl_binding *b, int rank)
{
    const char *e = getenv("SSLRUN_REPORT_BINDING");
    if (!e || strcmp(e, "1") != 0) return;
    char line[768];
    ssl_binding_describe(b, rank, line, sizeof line);
    printf("%s\n", line);
    fflush(stdout);
}
