/* What the C API's board writer and reader share: the expected text of a message and error
 * reporting. The board itself is shmsync's (include/shmsync.h). */
#ifndef SHMSYNC_EXAMPLE_BOARD_H
#define SHMSYNC_EXAMPLE_BOARD_H

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shmsync.h"

#define DEFAULT_BOARD "/shmsync-board"

/* The text a message with this seq and writer carries, as the Rust examples write it. */
static int expected_text(char *out, size_t size, uint64_t seq, uint32_t pid, int last)
{
    return snprintf(out, size, "message %llu from pid %u%s", (unsigned long long)seq, pid,
                    last ? " (last)" : "");
}

/* Exits with a message unless rc is one of the outcomes that hold the lock or `also`. */
static void check(const char *what, int rc, int also)
{
    if (rc == SHMSYNC_OK || rc == SHMSYNC_OWNER_DEAD || rc == SHMSYNC_POISONED || rc == also)
        return;
    if (rc < 0 && rc > -4096)
        fprintf(stderr, "FAILED: %s: %s\n", what, strerror(-rc));
    else
        fprintf(stderr, "FAILED: %s: shmsync code %d\n", what, rc);
    exit(1);
}

#endif
