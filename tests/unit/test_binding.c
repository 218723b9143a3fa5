/* Rank and device binding from launcher environments (framework/comm/binding.h), each faked as a
 * table so the test's own environment (a CI job under Slurm) cannot leak in: Open MPI, Slurm's task
 * lists, Hydra, PBS with PALS, Open MPI over Slurm, none (the communicator, a single process),
 * contradictions and garbage rejected naming the variable, the GPU each rank takes, the line. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/comm/binding.h"
#include "framework/comm/comm.h"

#include <string.h>
#include <unistd.h>

typedef struct {
    const char *name, *value;
} var;

/* vars: a table ending in {NULL, NULL}; anything else is unset */
static const char *fake_env(const char *name, void *user)
{
    for (const var *v = user; v->name; v++)
        if (!strcmp(v->name, name)) return v->value;
    return NULL;
}

static char err[512];

static int detect(ssl_binding *b, const var *vars, const ssl_comm *comm, int ngpus)
{
    err[0] = '\0';
    return ssl_binding_detect(b, comm, ngpus, fake_env, (void *)vars, err, sizeof err);
}

/* The environment gives local/size from source, with launcher and job. */
static void expect(const char *what, const var *vars, int local, int size, const char *source, const char *launcher,
                   const char *job)
{
    ssl_binding b;
    int rc = detect(&b, vars, NULL, 0);
    SSL_EXPECT(rc == 0, "%s: detect failed: %s", what, err);
    if (rc) return;
    SSL_EXPECT(b.local_rank == local && b.local_size == size, "%s: local %d/%d, expected %d/%d", what, b.local_rank,
               b.local_size, local, size);
    SSL_EXPECT(!strcmp(b.source, source), "%s: source %s, expected %s", what, b.source, source);
    SSL_EXPECT(!strcmp(b.launcher, launcher), "%s: launcher %s, expected %s", what, b.launcher, launcher);
    SSL_EXPECT(!strcmp(b.job_id, job), "%s: job '%s', expected '%s'", what, b.job_id, job);
}

/* The environment is refused with a message containing each of want[] (NULL-terminated). */
static void refused(const char *what, const var *vars, const ssl_comm *comm, const char *const *want)
{
    ssl_binding b;
    SSL_EXPECT(detect(&b, vars, comm, 0) == -1, "%s: accepted (local %d/%d)", what, b.local_rank, b.local_size);
    for (; *want; want++) SSL_EXPECT(strstr(err, *want), "%s: message '%s' does not name '%s'", what, err, *want);
}

static void test_launchers(void)
{
    expect("open mpi", (var[]){{"OMPI_COMM_WORLD_LOCAL_RANK", "2"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"},
                               {"OMPI_COMM_WORLD_SIZE", "8"}, {NULL, NULL}},
           2, 4, "OMPI_COMM_WORLD_LOCAL_RANK", "mpirun", "");
    /* 4(x1),2(x2) expands to 4,2,2: node 1 runs 2 */
    expect("slurm", (var[]){{"SLURM_JOB_ID", "1234"}, {"SLURM_LOCALID", "1"}, {"SLURM_NODEID", "1"},
                            {"SLURM_TASKS_PER_NODE", "4(x1),2(x2)"}, {NULL, NULL}},
           1, 2, "SLURM_LOCALID", "slurm", "1234");
    expect("slurm node 0", (var[]){{"SLURM_LOCALID", "3"}, {"SLURM_NODEID", "0"},
                                   {"SLURM_TASKS_PER_NODE", "4(x1),2(x2)"}, {NULL, NULL}},
           3, 4, "SLURM_LOCALID", "none", "");
    expect("slurm last node", (var[]){{"SLURM_LOCALID", "0"}, {"SLURM_NODEID", "3"},
                                      {"SLURM_TASKS_PER_NODE", "2(x3),1"}, {NULL, NULL}},
           0, 1, "SLURM_LOCALID", "none", "");
    expect("slurm inside a repeat", (var[]){{"SLURM_LOCALID", "1"}, {"SLURM_NODEID", "2"},
                                            {"SLURM_TASKS_PER_NODE", "2(x3),1"}, {NULL, NULL}},
           1, 2, "SLURM_LOCALID", "none", "");
    expect("slurm multi-digit", (var[]){{"SLURM_LOCALID", "11"}, {"SLURM_NODEID", "12"},
                                        {"SLURM_TASKS_PER_NODE", "1(x10),12(x10),3"}, {NULL, NULL}},
           11, 12, "SLURM_LOCALID", "none", "");
    expect("slurm ntasks-per-node", (var[]){{"SLURM_JOB_ID", "77"}, {"SLURM_LOCALID", "3"},
                                            {"SLURM_NTASKS_PER_NODE", "8"}, {NULL, NULL}},
           3, 8, "SLURM_LOCALID", "slurm", "77");
    /* without SLURM_NODEID a list that is the same everywhere still says this node's count */
    expect("slurm uniform list", (var[]){{"SLURM_LOCALID", "1"}, {"SLURM_TASKS_PER_NODE", "4(x2)"}, {NULL, NULL}}, 1,
           4, "SLURM_LOCALID", "none", "");
    expect("slurm uneven list, no node id", (var[]){{"SLURM_LOCALID", "1"}, {"SLURM_TASKS_PER_NODE", "4,2"},
                                                    {"SLURM_NTASKS_PER_NODE", "3"}, {NULL, NULL}},
           1, 3, "SLURM_LOCALID", "none", "");
    expect("hydra", (var[]){{"PMI_LOCAL_RANK", "1"}, {"PMI_LOCAL_SIZE", "2"}, {"PMI_SIZE", "4"}, {NULL, NULL}}, 1, 2,
           "PMI_LOCAL_RANK", "mpirun", "");
    expect("hydra MPI_LOCALRANKID", (var[]){{"MPI_LOCALRANKID", "2"}, {"MPI_LOCALNRANKS", "3"}, {NULL, NULL}}, 2, 3,
           "MPI_LOCALRANKID", "none", "");
    expect("pbs pals", (var[]){{"PBS_JOBID", "777.pbs01"}, {"PALS_LOCAL_RANKID", "3"}, {"PALS_LOCAL_SIZE", "4"},
                               {NULL, NULL}},
           3, 4, "PALS_LOCAL_RANKID", "pbs", "777.pbs01");
    /* srun + Open MPI: both set and disagreeing; Open MPI's are what the library uses */
    expect("open mpi under slurm", (var[]){{"SLURM_JOB_ID", "9"}, {"SLURM_LOCALID", "1"}, {"SLURM_NODEID", "0"},
                                           {"SLURM_TASKS_PER_NODE", "2"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "0"},
                                           {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}, {NULL, NULL}},
           0, 4, "OMPI_COMM_WORLD_LOCAL_RANK", "slurm", "9");
    /* Slurm before Hydra and PALS when all are set */
    expect("slurm before pmi", (var[]){{"PMI_LOCAL_RANK", "0"}, {"PMI_LOCAL_SIZE", "1"}, {"PALS_LOCAL_RANKID", "0"},
                                       {"PALS_LOCAL_SIZE", "1"}, {"SLURM_LOCALID", "2"}, {"SLURM_NTASKS_PER_NODE", "3"},
                                       {NULL, NULL}},
           2, 3, "SLURM_LOCALID", "none", "");
    expect("pmi before pals", (var[]){{"PALS_LOCAL_RANKID", "0"}, {"PALS_LOCAL_SIZE", "1"}, {"PMI_LOCAL_RANK", "1"},
                                      {"PMI_LOCAL_SIZE", "2"}, {NULL, NULL}},
           1, 2, "PMI_LOCAL_RANK", "none", "");
    expect("slurm job beats pbs", (var[]){{"SLURM_JOB_ID", "5"}, {"PBS_JOBID", "6"}, {NULL, NULL}}, 0, 1,
           "single process", "slurm", "5");
    /* an empty variable is unset */
    expect("empty ompi", (var[]){{"OMPI_COMM_WORLD_LOCAL_RANK", ""}, {"SLURM_LOCALID", "1"},
                                 {"SLURM_NTASKS_PER_NODE", "2"}, {NULL, NULL}},
           1, 2, "SLURM_LOCALID", "none", "");
}

static void test_fallbacks(void)
{
    const var none[] = {{NULL, NULL}};
    expect("nothing", none, 0, 1, "single process", "none", "");
    ssl_binding b;
    ssl_comm *one = ssl_comm_local();
    SSL_EXPECT(detect(&b, none, one, 0) == 0 && b.local_rank == 0 && b.local_size == 1 &&
                   !strcmp(b.source, "single process"),
               "world 1: %d/%d %s", b.local_rank, b.local_size, b.source);
    ssl_comm_free(one);
    struct ssl_comm four = {0};
    four.world = 8, four.rank = 7, four.local_rank = 3, four.local_world = 4, four.nodes = 2;
    SSL_EXPECT(detect(&b, none, &four, 0) == 0 && b.local_rank == 3 && b.local_size == 4 &&
                   !strcmp(b.source, "MPI_Comm_split_type"),
               "comm layout: %d/%d %s", b.local_rank, b.local_size, b.source);
    /* a rank without a size: MPI's count, else the least it can be, and the line says so */
    const var rank_only[] = {{"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {NULL, NULL}};
    SSL_EXPECT(detect(&b, rank_only, &four, 0) == 0 && b.local_rank == 1 && b.local_size == 4 &&
                   !strcmp(b.source, "OMPI_COMM_WORLD_LOCAL_RANK") && !strcmp(b.size_source, "MPI_Comm_split_type"),
               "rank only, comm: %d/%d %s", b.local_rank, b.local_size, b.size_source);
    char line[768];
    ssl_binding_describe(&b, 7, line, sizeof line);
    SSL_EXPECT(strstr(line, "local 1/4 (OMPI_COMM_WORLD_LOCAL_RANK; size from MPI_Comm_split_type)"), "%s", line);
    SSL_EXPECT(detect(&b, rank_only, NULL, 0) == 0 && b.local_rank == 1 && b.local_size == 2 &&
                   !strcmp(b.size_source, "local rank + 1"),
               "rank only: %d/%d %s", b.local_rank, b.local_size, b.size_source);
    ssl_binding_describe(&b, 0, line, sizeof line);
    SSL_EXPECT(strstr(line, "size from local rank + 1"), "%s", line);
    refused("rank beyond MPI's node", (var[]){{"OMPI_COMM_WORLD_LOCAL_RANK", "5"}, {NULL, NULL}}, &four,
            (const char *[]){"OMPI_COMM_WORLD_LOCAL_RANK=5", "MPI_Comm_split_type", NULL});
    /* a size the environment gave is not marked */
    SSL_EXPECT(detect(&b, (var[]){{"SLURM_LOCALID", "0"}, {"SLURM_NTASKS_PER_NODE", "2"}, {NULL, NULL}}, NULL, 0) == 0,
               "%s", err);
    ssl_binding_describe(&b, 0, line, sizeof line);
    SSL_EXPECT(!strstr(line, "size from") && !strcmp(b.size_source, "SLURM_NTASKS_PER_NODE"), "%s", line);
}

static void test_refused(void)
{
    refused("slurm rank beyond size", (var[]){{"SLURM_LOCALID", "5"}, {"SLURM_NTASKS_PER_NODE", "4"}, {NULL, NULL}},
            NULL, (const char *[]){"SLURM_LOCALID=5", "SLURM_NTASKS_PER_NODE=4", NULL});
    refused("slurm rank beyond its node", (var[]){{"SLURM_LOCALID", "2"}, {"SLURM_NODEID", "1"},
                                                  {"SLURM_TASKS_PER_NODE", "4(x1),2(x2)"}, {NULL, NULL}},
            NULL, (const char *[]){"SLURM_LOCALID=2", "SLURM_TASKS_PER_NODE", NULL});
    refused("ompi rank beyond size", (var[]){{"OMPI_COMM_WORLD_LOCAL_RANK", "2"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                                             {NULL, NULL}},
            NULL, (const char *[]){"OMPI_COMM_WORLD_LOCAL_RANK=2", NULL});
    refused("size 0", (var[]){{"PALS_LOCAL_RANKID", "0"}, {"PALS_LOCAL_SIZE", "0"}, {NULL, NULL}}, NULL,
            (const char *[]){"PALS_LOCAL_RANKID=0", "PALS_LOCAL_SIZE=0", NULL});
    refused("garbage rank", (var[]){{"SLURM_LOCALID", "abc"}, {NULL, NULL}}, NULL,
            (const char *[]){"SLURM_LOCALID", "abc", NULL});
    refused("garbage size", (var[]){{"OMPI_COMM_WORLD_LOCAL_RANK", "0"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "4x"},
                                    {NULL, NULL}},
            NULL, (const char *[]){"OMPI_COMM_WORLD_LOCAL_SIZE", "4x", NULL});
    refused("negative", (var[]){{"PMI_LOCAL_RANK", "-1"}, {NULL, NULL}}, NULL,
            (const char *[]){"PMI_LOCAL_RANK", "-1", NULL});
    refused("overflow", (var[]){{"PMI_LOCAL_RANK", "99999999999"}, {NULL, NULL}}, NULL,
            (const char *[]){"PMI_LOCAL_RANK", NULL});
    refused("garbage node id", (var[]){{"SLURM_LOCALID", "0"}, {"SLURM_NODEID", "n1"}, {"SLURM_TASKS_PER_NODE", "2"},
                                       {NULL, NULL}},
            NULL, (const char *[]){"SLURM_NODEID", "n1", NULL});
    refused("node beyond the list", (var[]){{"SLURM_LOCALID", "0"}, {"SLURM_NODEID", "4"},
                                            {"SLURM_TASKS_PER_NODE", "2(x3),1"}, {NULL, NULL}},
            NULL, (const char *[]){"SLURM_NODEID=4", "2(x3),1", NULL});
    const char *const bad[] = {"2(3)", "2(x0)", "2,", ",2", "2(x3", "2(x3)1", "x", "2(y3)", "2 ", "2(x)", NULL};
    for (const char *const *s = bad; *s; s++) {
        char what[64];
        snprintf(what, sizeof what, "task list '%s'", *s);
        const var vars[] = {{"SLURM_LOCALID", "0"}, {"SLURM_NODEID", "0"}, {"SLURM_TASKS_PER_NODE", *s}, {NULL, NULL}};
        refused(what, vars, NULL, (const char *[]){"SLURM_TASKS_PER_NODE", *s, NULL});
    }
}

static void test_gpus(void)
{
    const var cvd[] = {{"OMPI_COMM_WORLD_LOCAL_RANK", "2"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"},
                       {"CUDA_VISIBLE_DEVICES", "0,1,2,3"}, {NULL, NULL}};
    ssl_binding b;
    char line[768];
    SSL_EXPECT(detect(&b, cvd, NULL, 4) == 0 && b.gpu == 2 && !strcmp(b.cuda_visible, "0,1,2,3"), "4 gpus: gpu %d",
               b.gpu);
    ssl_binding_describe(&b, 2, line, sizeof line);
    SSL_EXPECT(strstr(line, "; gpu 2 of CUDA_VISIBLE_DEVICES=0,1,2,3") && !strstr(line, "device cpu"), "%s", line);
    /* one device per rank (--gpus-per-task): CUDA shows each rank its own as device 0 */
    SSL_EXPECT(detect(&b, cvd, NULL, 1) == 0 && b.gpu == 0, "1 gpu: gpu %d", b.gpu);
    SSL_EXPECT(detect(&b, cvd, NULL, 0) == 0 && b.gpu == -1, "0 gpus: gpu %d", b.gpu);
    ssl_binding_describe(&b, 2, line, sizeof line);
    SSL_EXPECT(strstr(line, "; device cpu") && !strstr(line, "gpu "), "%s", line);
    const var eight[] = {{"PMI_LOCAL_RANK", "5"}, {"PMI_LOCAL_SIZE", "8"}, {NULL, NULL}};
    SSL_EXPECT(detect(&b, eight, NULL, 3) == 0 && b.gpu == 2 && !b.cuda_visible[0], "5 of 8 on 3 gpus: gpu %d", b.gpu);
    ssl_binding_describe(&b, 5, line, sizeof line);
    SSL_EXPECT(strstr(line, "; gpu 2 of 3 visible"), "%s", line);
}

static void test_describe(void)
{
    ssl_binding b;
    SSL_EXPECT(detect(&b, (var[]){{"SLURM_JOB_ID", "1234"}, {"SLURM_LOCALID", "1"}, {"SLURM_NODEID", "1"},
                                  {"SLURM_TASKS_PER_NODE", "4(x1),2(x2)"}, {"CUDA_VISIBLE_DEVICES", "0,1"},
                                  {NULL, NULL}},
                      NULL, 2) == 0,
               "%s", err);
    char host[64] = "", line[768], want[192];
    gethostname(host, sizeof host - 1);
    SSL_EXPECT(!strcmp(b.host, host), "host '%s', expected '%s'", b.host, host);
    ssl_binding_describe(&b, 3, line, sizeof line);
    printf("%s\n", line);
    snprintf(want, sizeof want, "binding: rank 3 host %s local 1/2 (SLURM_LOCALID) slurm job 1234; cpus ", host);
    SSL_EXPECT(!strncmp(line, want, strlen(want)), "'%s' does not start '%s'", line, want);
    SSL_EXPECT(strstr(line, "; gpu 1 of CUDA_VISIBLE_DEVICES=0,1") && !strchr(line, '\n'), "%s", line);
    /* the real affinity: a list of CPUs */
    SSL_EXPECT(b.cpus[0] >= '0' && b.cpus[0] <= '9', "cpus '%s'", b.cpus);
    /* a short buffer is cut, never overrun */
    char small[16];
    memset(small, 'z', sizeof small);
    ssl_binding_describe(&b, 3, small, 12);
    SSL_EXPECT(strlen(small) == 11 && small[12] == 'z', "cut line '%.16s'", small);
}

static void test_cpu_list(void)
{
    char out[128];
    ssl_binding_cpu_list((const unsigned char[]){1, 1, 1, 1, 0, 0, 0, 0, 1}, 9, out, sizeof out);
    SSL_EXPECT(!strcmp(out, "0-3,8"), "'%s'", out);
    ssl_binding_cpu_list((const unsigned char[]){0, 1, 0, 1, 1, 0}, 6, out, sizeof out);
    SSL_EXPECT(!strcmp(out, "1,3-4"), "'%s'", out);
    ssl_binding_cpu_list((const unsigned char[]){0, 0, 0}, 3, out, sizeof out);
    SSL_EXPECT(!strcmp(out, ""), "'%s'", out);
    /* every other CPU of 1024 (hyperthread siblings excluded) does not fit: cut with the count */
    static unsigned char alt[1024];
    for (int i = 0; i < 1024; i++) alt[i] = i % 2 == 0;
    ssl_binding_cpu_list(alt, 1024, out, sizeof out);
    const char *tail = ",... (512 cpus)";
    SSL_EXPECT(strlen(out) < sizeof out && strlen(out) > strlen(tail) &&
                   !strcmp(out + strlen(out) - strlen(tail), tail) && !strncmp(out, "0,2,4,", 6),
               "'%s'", out);
    ssl_binding_cpu_list(alt, 12, out, 12); /* "0,2,4,6,8,10" needs 13 */
    SSL_EXPECT(strlen(out) < 12, "'%s'", out);
}

int main(void)
{
    test_launchers();
    test_fallbacks();
    test_refused();
    test_gpus();
    test_describe();
    test_cpu_list();
    return ssl_test_exit();
}
