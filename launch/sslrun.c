/* sslrun: the command line. `sslrun CONFIG.yaml [key=value ...]` pretrains; other work is a named
 * subcommand from the table below (one line per subcommand). */
#include "launch/cli.h"

#include "framework/core/version.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *args;    /* the usage line after "sslrun NAME" */
    const char *summary; /* one line for `sslrun --help` */
    const char *help; /* what it does, its options, what it writes */
} command;

static const command commands[] = {
    {"pretrain", ssl_cmd_pretrain, "CONFIG.yaml [section.key=value ...]",
     "pretrain a model (same as `sslrun CONFIG.yaml`)",
     "Pretrain (same as `sslrun CONFIG.yaml`). Resumes from the newest usable checkpoint of the run\n"
     "directory (run.out_dir/run.name); SIGTERM or SIGUSR1 checkpoints at the next step and exits 3.\n"
     "Under mpirun every rank takes 1/P of the global batch (data.batch_size).\n"
     "Writes config.yaml, metrics.jsonl, checkpoints/ckpt-<step>.h5 in the run directory."},
    {"eval", ssl_cmd_eval, "CONFIG.yaml [k=v ...] [--ckpt PATH | --random-init | --raw-pixels]",
     "kNN + linear probe of a checkpoint",
     "kNN (every eval.knn_k) and linear probe on frozen features of the run's newest checkpoint\n"
     "(--ckpt: another one); --random-init and --raw-pixels give the baselines. Writes eval.json\n"
     "(with the checkpoint's path), eval_random_init.json or eval_raw_pixels.json."},
    {"finetune", ssl_cmd_finetune, "CONFIG.yaml [k=v ...] [--from CKPT.h5 | --weights FILE.safetensors | --scratch]",
     "fine-tune the pretrained encoder with a linear head on the labels",
     "The encoder of the run's newest pretraining checkpoint (--from: another checkpoint; --weights: an\n"
     "exported, torchvision or timm-ViT safetensors file; --scratch: random init, the supervised baseline)\n"
     "plus a linear head, trained end to end on data.train's labels (the finetune section: label_fraction,\n"
     "layer_decay, label_smoothing, ...), then top-1 on data.test. Resumes, stops on SIGTERM / SIGUSR1 /\n"
     "run.max_steps and runs under mpirun as pretraining does. Writes RUN_DIR/finetune/: config.yaml,\n"
     "metrics.jsonl, checkpoints/, source.txt and finetune.json (top-1, label fraction, epochs, images/s, source)."},
    {"export", ssl_cmd_export, "CHECKPOINT.h5 --out encoder.safetensors [--teacher] [--names torchvision|timm]",
     "encoder as safetensors with torchvision names",
     "The encoder of a checkpoint (no projector) as safetensors with torchvision's names: a torchvision\n"
     "model of the same shape (resnet18() for a width-64, 3-channel ResNet-18 with the 7x7 stem) loads it\n"
     "with load_state_dict(sd, strict=False), missing only fc.*. --names timm: a ViT with timm's names.\n"
     "--teacher: the EMA teacher's encoder (MoCo's key encoder, BYOL's target) instead."},
    {"job", ssl_cmd_job,
     "--scheduler slurm|pbs --nodes N [--gpus-per-node G | --tasks-per-node T] [--cpus-per-task C]\n"
     "       [--time [D-]H:MM:SS] [--partition P] [--account A] [--warn-seconds S] [--max-requeues R]\n"
     "       [--launcher srun|mpirun] [--command pretrain|finetune] [--sslrun PATH] [--out job.sh] CONFIG.yaml [k=v ...]",
     "a Slurm or PBS batch script for the run, with the requeue contract",
     "A batch script for CONFIG.yaml with overrides, resolved and checked now and frozen into the script\n"
     "(each start writes it to RUN_DIR/job.yaml and runs it), to stdout or --out. Slurm: #SBATCH nodes,\n"
     "tasks, --gpus-per-task=1 (one rank per GPU), --signal=B:USR1@S (default 120), --requeue, ranks by\n"
     "`srun --mpi=pmix --cpu-bind=cores` (--launcher mpirun: mpirun in the allocation). PBS Pro: select with\n"
     "mpiprocs/ncpus/ngpus, walltime, -r y, Open MPI's mpiexec on $PBS_NODEFILE, and a timer that sends the\n"
     "warning S seconds before the walltime. The warning (or SIGTERM) is passed to sslrun, which checkpoints\n"
     "and exits 3; the script then requeues the job (scontrol requeue; PBS: qrerun, else qsub of itself\n"
     "after this job), which resumes from the checkpoint. At most R requeues per run (default 20, counted\n"
     "in RUN_DIR/job.requeues, reset when the run finishes); exit 0, 1 or 2 ends the job."},
    {"plot", ssl_cmd_plot, "RUN_DIR [--out FILE.png]",
     "loss, lr and kNN accuracy over steps", "Loss, learning rate and kNN top-1 of a run over steps (default RUN_DIR/plot.png)."},
    {"prep", ssl_cmd_prep, "fashion-mnist|cifar10|cifar100 [--src DIR] --out DIR [--shard-size N]\n"
     "       [mpirun -np P] sslrun prep images SRC_DIR --out DIR [--size S] [--prefix NAME] [--shard-size N] [--format raw|jpeg] [--quality Q] [--force]\n"
     "       [mpirun -np P] sslrun prep images VAL_DIR --out DIR --prefix val --labels FILE [--classes CLASSES.txt] [options as above]\n"
     "       sslrun prep --verify DIR|GLOB|SHARD",
     "write a dataset as HDF5 shards",
     "Write a dataset as HDF5 shards (DIR/train-*.h5, DIR/test-*.h5). images: SRC_DIR/<class>/<image>\n"
     "(PNG, JPEG) -> DIR/NAME-*.h5 and DIR/classes.txt; --size S resizes the shorter side to S and\n"
     "centre-crops S x S. Under mpirun every rank writes every P-th shard (the same shards at any P);\n"
     "a rerun keeps complete shards (DIR/NAME.manifest) and refuses other options unless --force.\n"
     "--labels FILE: VAL_DIR is a flat folder labelled by FILE (LOC_val_solution.csv or 'name class'\n"
     "lines), classes from --classes (default DIR/classes.txt). cifar10/cifar100 read the binary or\n"
     "the Python (pickle) release."},
    {"augment-preview", ssl_cmd_augment_preview, "CONFIG.yaml [k=v ...] --out grid.png",
     "look at the training views",
     "A grid of training views as the config's augmentation makes them."},
    {"mae-preview", ssl_cmd_mae_preview, "CONFIG.yaml [k=v ...] [--ckpt PATH] --out recon.png",
     "what an MAE run reconstructs",
     "Eight test images (data.test) through an MAE checkpoint (the run's newest, or --ckpt), in three\n"
     "rows: original, masked input (removed patches grey), reconstruction (predicted patches, with\n"
     "norm_pix de-normalised by each patch's own mean and variance, visible patches pasted back)."},
    {"config", ssl_cmd_config, "[CONFIG.yaml [k=v ...]]",
     "the resolved config, or every key",
     "Print the resolved config of CONFIG.yaml with overrides, or, without one, every key with its\n"
     "type, default, bounds and meaning."},
};

static const char exit_codes[] = "exit codes: 0 done (or stopped at run.max_steps with a checkpoint written), 1 failure\n"
                                 "            (message on stderr), 2 usage or config error, 3 preempted: stopped by SIGTERM /\n"
                                 "            SIGUSR1 with a checkpoint written, rerun to resume (a job script requeues)\n";

static void print_version(void)
{
    printf("sslrun %s (git %s)\n", ssl_version, ssl_git_commit);
}

const char *ssl_cli_take_value(int *argc, char **argv, const char *name)
{
    for (int i = 0; i + 1 < *argc; i++)
        if (!strcmp(argv[i], name)) {
            const char *v = argv[i + 1];
            memmove(argv + i, argv + i + 2, (size_t)(*argc - i - 2) * sizeof *argv);
            *argc -= 2;
            return v;
        }
    return NULL;
}

int ssl_cli_take_flag(int *argc, char **argv, const char *name)
{
    for (int i = 0; i < *argc; i++)
        if (!strcmp(argv[i], name)) {
            memmove(argv + i, argv + i + 1, (size_t)(*argc - i - 1) * sizeof *argv);
            (*argc)--;
            return 1;
        }
    return 0;
}

int ssl_cli_parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || errno || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static void usage(FILE *fp)
{
    fprintf(fp, "usage: sslrun CONFIG.yaml [section.key=value ...]\n       sslrun COMMAND ... (COMMAND --help for "
                "its options)\n       sslrun --version\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(fp, "  %-16s %s\n", commands[i].name, commands[i].summary);
    fprintf(fp, "\n%s", exit_codes);
}

/* `sslrun COMMAND --help` (anywhere among its arguments): the command's usage, exit 0. */
static int wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

static void command_help(const command *c)
{
    printf("usage: sslrun %s %s\n\n%s\n\n%s", c->name, c->args, c->help, exit_codes);
}

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i].name)) return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || (!strcmp(argv[1], "help") && argc == 2)) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "help")) { /* sslrun help COMMAND = sslrun COMMAND --help */
        const command *c = find_command(argv[2]);
        if (c) {
            command_help(c);
            return 0;
        }
        fprintf(stderr, "sslrun: unknown command '%s'\n", argv[2]);
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        print_version();
        return 0;
    }
    const command *c = find_command(argv[1]);
    if (c) {
        if (wants_help(argc - 2, argv + 2)) {
            command_help(c);
            return 0;
        }
        return c->fn(argc - 2, argv + 2);
    }
    const char *dot = strrchr(argv[1], '.');
    if (dot && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml"))) {
        if (wants_help(argc - 2, argv + 2)) {
            command_help(&commands[0]);
            return 0;
        }
        return ssl_cmd_pretrain(argc - 1, argv + 1);
    }
    struct stat st;
    if (!stat(argv[1], &st)) /* a config file by another name, or a directory */
        fprintf(stderr, "sslrun: '%s' is %s: a config file's name ends in .yaml or .yml\n", argv[1],
                S_ISDIR(st.st_mode) ? "a directory, not a command" : "no command");
    else fprintf(stderr, "sslrun: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
