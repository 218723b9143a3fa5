/* The sslrun version (CMake's project VERSION) and the git commit it was built from ("unknown"
 * outside a git checkout; "-dirty" when the tree had uncommitted changes). Written into every
 * checkpoint and metrics.jsonl, printed by `sslrun --version`. Generated at build time. */
#ifndef SSL_CORE_VERSION_H
#define SSL_CORE_VERSION_H

extern const char ssl_version[];
extern const char ssl_git_commit[];

#endif
