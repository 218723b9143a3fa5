/* sslrun: the command line. `sslrun CONFIG.yaml [key=value ...]` pretrains; other work is a named
 * subcommand from the table below (one line per subcommand). */
#include "launch/cli.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    {"pretrain", ssl_cmd_pretrain, "CONFIG.yaml [k=v ...]   pretrain (same as `sslrun CONFIG.yaml`)"},
    {"eval", ssl_cmd_eval, "CONFIG.yaml [k=v ...] [--ckpt P] [--random-init|--raw-pixels]   kNN + linear probe"},
    {"export", ssl_cmd_export, "CHECKPOINT.h5 --out encoder.safetensors   encoder with torchvision names"},
    {"plot", ssl_cmd_plot, "RUN_DIR [--out plot.png]   loss, lr and kNN accuracy over steps"},
    {"prep", ssl_cmd_prep, "fashion-mnist|cifar10|cifar100|images [SRC_DIR] --out DIR   write HDF5 shards"},
    {"augment-preview", ssl_cmd_augment_preview, "CONFIG.yaml [k=v ...] --out grid.png   look at the views"},
    {"config", ssl_cmd_config, "[CONFIG.yaml [k=v ...]]   print the resolved config, or every key"},
};

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

static void usage(void)
{
    fprintf(stderr, "usage: sslrun CONFIG.yaml [section.key=value ...]\n       sslrun COMMAND ...\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(stderr, "  %-16s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 2, argv + 2);
    const char *dot = strrchr(argv[1], '.');
    if (dot && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml"))) return ssl_cmd_pretrain(argc - 1, argv + 1);
    fprintf(stderr, "sslrun: unknown command '%s'\n", argv[1]);
    usage();
    return 2;
}
