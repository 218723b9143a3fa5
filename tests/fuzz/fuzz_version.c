/* The build-generated version strings (framework/core/version.h) for the fuzz build, which compiles
 * io/checkpoint.c without ssl_framework and its generated version.c. */
#include "framework/core/version.h"

const char ssl_version[] = "fuzz";
const char ssl_git_commit[] = "fuzz";
