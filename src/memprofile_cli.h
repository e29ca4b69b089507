/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* valkey-cli --memprofile and valkey-cli --cluster memprofile: the client
 * side of the fork-based memory profile (memprofile_cli.c, the outputs in
 * memprofile_cli_output.c, the cluster in memprofile_cli_cluster.c).
 * valkey-cli.c reaches it through thin hooks: option parsing, the
 * single-node run and the cluster manager command, which hands over the
 * nodes it discovered. */

#ifndef __MEMPROFILE_CLI_H
#define __MEMPROFILE_CLI_H

#include <stdint.h>
#define MEMPROF_CLIENT
#include "memprofile_compat.h"

/* The options, set by memprofCliParseOption(). */
typedef struct memprofCliConfig {
    int enabled;       /* --memprofile */
    long count;        /* --memprofile-count: length of each list (10). */
    int save;          /* --memprofile-save: BGSAVE STAT_MEMORY, not START. */
    long long max_age; /* --memprofile-max-age: reuse a younger profile; -1 off. */
    int from_replicas; /* --cluster-from-replicas */
} memprofCliConfig;

extern memprofCliConfig memprofCli;

/* JSON output modes, as valkey-cli's --json and --quoted-json. */
#define MEMPROF_CLI_TEXT 0
#define MEMPROF_CLI_JSON 1
#define MEMPROF_CLI_QUOTED_JSON 2

/* If argv[*i] is one of our options, consume it (and its value), advance *i
 * and return 1; a bad value prints an error and exits. Returns 0 otherwise. */
int memprofCliParseOption(int argc, char **argv, int *i);

/* Help text lines for valkey-cli's usage. */
const char *memprofCliUsage(void);

/* valkey-cli --memprofile on a connected context; returns the exit code. */
int memprofCliRun(valkeyContext *c, const char *addr, int output);

/* One node of the cluster, as the cluster manager discovered it. */
typedef struct memprofCliNode {
    valkeyContext *context; /* Connected (authenticated) or NULL. */
    const char *ip;
    int port;
    const char *name;     /* Node id. */
    const char *primary;  /* The primary's id for a replica, NULL for a primary. */
    int failed;           /* Flagged fail or without address by the cluster. */
    const uint8_t *slots; /* 16384 flags: slots the node owns. */
} memprofCliNode;

/* valkey-cli --cluster memprofile; returns 1 on success (every shard
 * covered), 0 otherwise. */
int memprofCliCluster(memprofCliNode *nodes, int count, int output);

#endif
