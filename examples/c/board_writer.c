/* The Rust `writer` example on shmsync's C API: posts numbered messages to the board in a
 * POSIX named shmsync segment and wakes every reader, the Rust `reader` example included.
 *
 *   cc -I include -o board_writer examples/c/board_writer.c target/debug/libshmsync_capi.a \
 *      -lpthread -ldl -lm -lrt -lutil -lgcc_s
 *   ./board_writer -n /board -c 10 -l
 */
#include "board.h"

static void usage(FILE *to)
{
    fputs("Usage: board_writer [-n NAME] [-c COUNT] [-i MS] [-l] [-H]\n"
          "  -n NAME   the segment (default " DEFAULT_BOARD ")\n"
          "  -c COUNT  messages to post (default 10)\n"
          "  -i MS     pause between two messages (default 0)\n"
          "  -l        mark the final message \"(last)\"\n"
          "  -H        at the end: lock, print \"holding\" and wait to be killed\n",
          to);
}

/* Locks; after a holder's death the post overwrites the torn message, so clear the poison
 * once it is written. Returns whether to clear it. */
static int lock_board(shmsync_board *board)
{
    int rc = shmsync_board_lock(board, -1);
    check("shmsync_board_lock", rc, SHMSYNC_OK);
    if (rc == SHMSYNC_OWNER_DEAD || rc == SHMSYNC_POISONED) {
        printf("recovered: a holder died (code %d)\n", rc);
        fflush(stdout);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *name = DEFAULT_BOARD;
    long count = 10, interval_ms = 0;
    int last = 0, hold = 0, opt;
    while ((opt = getopt(argc, argv, "n:c:i:lHh")) != -1) {
        switch (opt) {
        case 'n': name = optarg; break;
        case 'c': count = atol(optarg); break;
        case 'i': interval_ms = atol(optarg); break;
        case 'l': last = 1; break;
        case 'H': hold = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    shmsync_board *board;
    check("shmsync_board_open", shmsync_board_open(name, &board), SHMSYNC_OK);
    uint32_t pid = (uint32_t)getpid();
    uint64_t seq = 0;
    for (long i = 0; i < count; i++) {
        int repair = lock_board(board);
        struct shmsync_message *m = shmsync_board_message(board);
        seq = m->seq + 1;
        char text[SHMSYNC_TEXT + 1];
        int len = expected_text(text, sizeof text, seq, pid, last && i + 1 == count);
        m->seq = seq;
        m->writer_pid = pid;
        memcpy(m->text, text, (size_t)len);
        m->len = (uint32_t)len;
        if (repair)
            check("shmsync_board_clear_poison", shmsync_board_clear_poison(board), SHMSYNC_OK);
        check("shmsync_board_unlock", shmsync_board_unlock(board), SHMSYNC_OK);
        shmsync_board_notify_all(board);
        printf("board_writer: posted %s\n", text);
        if (interval_ms > 0 && i + 1 < count) {
            struct timespec pause = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
            nanosleep(&pause, NULL);
        }
    }
    if (hold) {
        lock_board(board);
        printf("holding\n");
        fflush(stdout);
        for (;;)
            pause();
    }
    printf("OK: posted %ld messages (last seq %llu) to %s\n", count, (unsigned long long)seq,
           name);
    shmsync_board_close(board);
    return 0;
}
