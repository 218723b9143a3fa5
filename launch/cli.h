/* sslrun subcommands: each is `int cmd(int argc, char **argv)` with argv after the subcommand name,
 * returning the process exit code (0 ok, 1 failure, 2 usage or config error). */
#ifndef SSL_LAUNCH_CLI_H
#define SSL_LAUNCH_CLI_H

int ssl_cmd_pretrain(int argc, char **argv);
int ssl_cmd_prep(int argc, char **argv);
int ssl_cmd_augment_preview(int argc, char **argv);
int ssl_cmd_config(int argc, char **argv);
int ssl_cmd_eval(int argc, char **argv);
int ssl_cmd_export(int argc, char **argv);
int ssl_cmd_plot(int argc, char **argv);

/* Remove "--name VALUE" from argv (compacting it) and return VALUE, or NULL when absent. */
const char *ssl_cli_take_value(int *argc, char **argv, const char *name);
/* Remove the flag "--name" from argv; returns 1 when it was there. */
int ssl_cli_take_flag(int *argc, char **argv, const char *name);

#endif
