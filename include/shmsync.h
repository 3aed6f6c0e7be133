/* shmsync's C API (the shmsync-capi crate: libshmsync_capi.a or libshmsync_capi.so).
 *
 * A board is what the Rust `writer` and `reader` examples share: a POSIX named shmsync
 * segment holding one shmsync mutex around a `struct shmsync_message` and one shmsync
 * condition variable. C and Rust processes lock, wait and notify it with the same semantics:
 *
 * - A holder that dies (SIGKILL, abort, segfault) poisons the lock. The next locker gets the
 *   lock with SHMSYNC_OWNER_DEAD; later ones get SHMSYNC_POISONED until someone repairs the
 *   message and calls shmsync_board_clear_poison. No one is left blocked for ever.
 * - Timeouts are relative, in nanoseconds, measured on CLOCK_MONOTONIC (a wall-clock jump
 *   changes nothing); a negative timeout waits for ever.
 * - The segment's layout is checked on every open against the fingerprint the Rust side
 *   computes from its type (SHMSYNC_BOARD_FINGERPRINT): a segment of another layout gives
 *   SHMSYNC_E_LAYOUT, never undefined behaviour.
 *
 * Every function returns SHMSYNC_OK (0), a positive outcome code, or a negative error:
 * -errno, SHMSYNC_E_LAYOUT or SHMSYNC_E_STATE.
 *
 * A handle is used by one thread at a time, and the thread that locks is the one that
 * unlocks (or waits). Link a static build with: -lpthread -ldl -lm -lrt -lutil -lgcc_s.
 *
 * The numbers below are checked against the Rust side (SHMSYNC_ABI) by tests/c_api.rs.
 */
#ifndef SHMSYNC_H
#define SHMSYNC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Outcomes. */
#define SHMSYNC_OK 0          /* done; for a lock: held, not poisoned */
#define SHMSYNC_OWNER_DEAD 1  /* held; this call found its previous holder dead */
#define SHMSYNC_POISONED 2    /* held; poisoned earlier and not cleared yet */
#define SHMSYNC_TIMED_OUT 3   /* lock: not held; wait: held again */
/* Errors besides -errno. */
#define SHMSYNC_E_LAYOUT (-1000) /* the segment holds something else */
#define SHMSYNC_E_STATE (-1001)  /* not held / held already / null argument */

/* Bytes of text a message holds. */
#define SHMSYNC_TEXT 120

/* The latest message: text[0..len), written in the same critical section as seq. */
struct shmsync_message {
    uint64_t seq;        /* each writer posts seq + 1 */
    uint32_t writer_pid; /* the process that wrote it */
    uint32_t len;        /* bytes of text that are the message */
    uint8_t text[SHMSYNC_TEXT]; /* not NUL-terminated */
};

/* A process's handle on a board (opaque). */
typedef struct shmsync_board shmsync_board;

/* The Rust side's numbers, for a C program to check this header against. */
struct shmsync_abi {
    size_t message_size;
    size_t message_align;
    size_t seq_offset;
    size_t writer_pid_offset;
    size_t len_offset;
    size_t text_offset;
    size_t text_len;
    int codes[6]; /* OK, OWNER_DEAD, POISONED, TIMED_OUT, E_LAYOUT, E_STATE */
};
extern const struct shmsync_abi SHMSYNC_ABI;

/* The layout fingerprint every board segment's header carries, from the Rust type. */
extern const uint64_t SHMSYNC_BOARD_FINGERPRINT;

/* Opens the board in the POSIX named segment `name` ("/name"), creating an empty one if
 * there is none. On success *out is a handle for shmsync_board_close. */
int shmsync_board_open(const char *name, shmsync_board **out);

/* Closes a handle (unlocking first if it holds the lock); the segment stays. NULL is
 * ignored. */
void shmsync_board_close(shmsync_board *board);

/* Removes the segment `name`; open handles keep working. */
int shmsync_unlink(const char *name);

/* Locks, waiting at most timeout_ns (negative: for ever; 0: only tries). OK, OWNER_DEAD and
 * POISONED hold the lock; TIMED_OUT does not. */
int shmsync_board_lock(shmsync_board *board, int64_t timeout_ns);

/* Unlocks. E_STATE if this handle does not hold the lock. */
int shmsync_board_unlock(shmsync_board *board);

/* The message while this handle holds the lock (valid until unlock or close), else NULL. */
struct shmsync_message *shmsync_board_message(shmsync_board *board);

/* Clears the poison once the message is repaired; needs the lock. */
int shmsync_board_clear_poison(shmsync_board *board);

/* Releases the lock, waits for a notification (or timeout_ns, or a spurious wake-up), and
 * locks again: OK, TIMED_OUT, OWNER_DEAD or POISONED, always holding the lock. */
int shmsync_board_wait(shmsync_board *board, int64_t timeout_ns);

/* Wake one waiter (returns 1 if one was woken, else 0) or all (returns how many). */
int shmsync_board_notify_one(shmsync_board *board);
int shmsync_board_notify_all(shmsync_board *board);

#ifdef __cplusplus
}
#endif

#endif
