/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* The fuzz targets of valkey-cli's side see its files whole, statics
 * included (the parser, the merge): each target is one translation unit
 * with the three files of valkey-cli --memprofile in it. */

#ifndef __MEMPROF_FUZZ_CLI_H
#define __MEMPROF_FUZZ_CLI_H

#include "memprofile_cli.c"
#include "memprofile_cli_output.c"
#include "memprofile_cli_cluster.c"

#include "fuzz.h"
#include "fuzz_json.h"

/* The text output goes nowhere. */
static void fuzzQuiet(void) {
    if (!freopen("/dev/null", "w", stdout)) abort();
}

#endif
