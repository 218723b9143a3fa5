/* Where this rank runs: its node-local rank and size, the launcher and job, the host, the CPUs it
 * may use and the GPU it should take, read from the launcher's environment. The plan prints it
 * (rank 0; every rank with SSLRUN_REPORT_BINDING=1), so a user can see that ranks did not pile
 * onto one core or one GPU before an allocation is spent.
 *
 * Sources of the local rank, first found wins:
 *  1. OMPI_COMM_WORLD_LOCAL_RANK / _LOCAL_SIZE: Open MPI's mpirun (also PBS's mpiexec of Open MPI).
 *     Under srun the Slurm variables are set as well; Open MPI's are what the MPI library itself
 *     uses, so they win, also when the two disagree (an srun step wrapping an mpirun).
 *  2. SLURM_LOCALID, size from SLURM_TASKS_PER_NODE ("2(x3),1", entry SLURM_NODEID of the expanded
 *     list) or else SLURM_NTASKS_PER_NODE: srun without Open MPI's variables (MPICH, PMIx direct).
 *  3. PMI_LOCAL_RANK / PMI_LOCAL_SIZE, then MPI_LOCALRANKID / MPI_LOCALNRANKS: MPICH's Hydra.
 *  4. PALS_LOCAL_RANKID / PALS_LOCAL_SIZE: PBS with Cray PALS (mpiexec on HPE/Cray systems).
 * With none of them, the communicator's MPI_Comm_split_type layout (what any MPI agrees on), and
 * without a communicator of more than one rank, a single process (0 of 1).
 * An empty variable counts as unset. */
#ifndef SSL_COMM_BINDING_H
#define SSL_COMM_BINDING_H

#include <stddef.h>

struct ssl_comm;

typedef struct {
    int local_rank, local_size; /* this rank on its node */
    const char *source;         /* the variable that gave local_rank ("SLURM_LOCALID", ...), or
                                   "MPI_Comm_split_type", or "single process" */
    const char *size_source;    /* what gave local_size: the variable paired with source, or
                                   "MPI_Comm_split_type" / "local rank + 1" when the environment
                                   named a rank without a size */
    char launcher[16];          /* "slurm", "pbs", "mpirun" or "none" */
    char job_id[64];            /* SLURM_JOB_ID or PBS_JOBID, "" if none */
    char host[64];              /* gethostname */
    char cuda_visible[256];     /* CUDA_VISIBLE_DEVICES as set, "" unset */
    int ngpus;                  /* devices this process sees (as passed to ssl_binding_detect) */
    int gpu;                    /* index within the visible devices: local_rank % ngpus; -1 with none */
    char cpus[128];             /* this process's CPU affinity, compact: "0-3,8" ("?" if unknown) */
} ssl_binding;

/* getenv-like lookup, so tests can fake any launcher's environment. */
typedef const char *(*ssl_env_fn)(const char *name, void *user);

/* Fill b from the environment (env NULL: getenv) and, when the environment names no local rank,
 * from comm (local_rank/local_world when comm->world > 1). ngpus: devices this process can see
 * (what CUDA reports, already filtered by CUDA_VISIBLE_DEVICES; 0 for CPU runs). With one device
 * per rank (Slurm --gpus-per-task) ngpus is 1 and every rank takes its device 0.
 * Returns 0, or -1 with a message in err naming the variable and its value when the environment
 * contradicts itself (a local rank >= local size, a value that is not a count, a Slurm node id
 * beyond SLURM_TASKS_PER_NODE). */
int ssl_binding_detect(ssl_binding *b, const struct ssl_comm *comm, int ngpus, ssl_env_fn env, void *user,
                       char *err, size_t errlen);

/* One line, no newline: "binding: rank 3 host node07 local 1/4 (SLURM_LOCALID) slurm job 1234;
 * cpus 8-15; gpu 1 of CUDA_VISIBLE_DEVICES=0,1,2,3"; CPU runs end in "device cpu". */
void ssl_binding_describe(const ssl_binding *b, int rank, char *out, size_t size);

/* With SSLRUN_REPORT_BINDING=1, print b's line to stdout: every rank reports, as with mpirun
 * --report-bindings (the trainers' rank 0 skips it: its line is in the plan already). */
void ssl_binding_report(const ssl_binding *b, int rank);

/* on[0 .. n) (nonzero: in the set) as a compact list "0-3,8"; a list too long for out ends in
 * "... (K cpus)". Exposed for tests. */
void ssl_binding_cpu_list(const unsigned char *on, int n, char *out, size_t size);

#endif
