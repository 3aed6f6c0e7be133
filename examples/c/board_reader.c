/* The Rust `reader` example on shmsync's C API: waits on the board's condition variable for
 * the messages that writers (the Rust `writer` example, or board_writer) post, and checks
 * each one, until the message marked "(last)".
 *
 *   cc -I include -o board_reader examples/c/board_reader.c target/debug/libshmsync_capi.a \
 *      -lpthread -ldl -lm -lrt -lutil -lgcc_s
 *   ./board_reader -n /board -t 60
 */
#include "board.h"

/* Whether the message's text matches its header (false for a torn update). */
static int is_whole(const struct shmsync_message *m)
{
    char text[SHMSYNC_TEXT + 1];
    for (int last = 0; last < 2; last++) {
        int len = expected_text(text, sizeof text, m->seq, m->writer_pid, last);
        if ((uint32_t)len == m->len && memcmp(text, m->text, (size_t)len) == 0)
            return 1;
    }
    return 0;
}

static int is_last(const struct shmsync_message *m)
{
    return m->len >= 6 && memcmp(m->text + m->len - 6, "(last)", 6) == 0;
}

static long long monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    const char *name = DEFAULT_BOARD;
    long timeout_s = 60;
    int opt;
    while ((opt = getopt(argc, argv, "n:t:h")) != -1) {
        switch (opt) {
        case 'n': name = optarg; break;
        case 't': timeout_s = atol(optarg); break;
        case 'h': puts("Usage: board_reader [-n NAME] [-t SECONDS]"); return 0;
        default: fputs("Usage: board_reader [-n NAME] [-t SECONDS]\n", stderr); return 2;
        }
    }
    shmsync_board *board;
    check("shmsync_board_open", shmsync_board_open(name, &board), SHMSYNC_OK);
    long long deadline = monotonic_ns() + timeout_s * 1000000000LL;
    check("shmsync_board_lock", shmsync_board_lock(board, -1), SHMSYNC_OK);
    uint64_t seen = shmsync_board_message(board)->seq;
    long received = 0, recovered = 0;
    printf("listening from seq %llu\n", (unsigned long long)seen);
    fflush(stdout);
    for (;;) {
        long long left = deadline - monotonic_ns();
        if (left <= 0) {
            printf("FAILED: no message marked \"(last)\" within %ld s (%ld others)\n",
                   timeout_s, received);
            return 1;
        }
        int rc = shmsync_board_wait(board, left);
        check("shmsync_board_wait", rc, SHMSYNC_TIMED_OUT);
        struct shmsync_message *m = shmsync_board_message(board);
        if (rc == SHMSYNC_OWNER_DEAD || rc == SHMSYNC_POISONED) {
            /* A writer died mid-update: the next post overwrites it; go on. */
            recovered++;
            shmsync_board_clear_poison(board);
            seen = m->seq;
            continue;
        }
        if (m->seq == seen)
            continue;
        if (!is_whole(m)) {
            printf("FAILED: a torn message without poisoning (after %ld whole)\n", received);
            return 1;
        }
        seen = m->seq;
        received++;
        printf("board_reader: %.*s\n", (int)m->len, (const char *)m->text);
        if (is_last(m))
            break;
    }
    shmsync_board_unlock(board);
    shmsync_board_close(board);
    printf("OK: received %ld messages up to the last one, recovered from %ld deaths\n", received,
           recovered);
    return 0;
}
