/* Checks include/shmsync.h against the Rust side: every size, offset and code the header
 * states must equal what the library exports (SHMSYNC_ABI). Exits 0 when all match. */
#include <stdalign.h>
#include <stdio.h>

#include "shmsync.h"

static int failures;

static void same(const char *what, long long header, long long rust)
{
    if (header != rust) {
        printf("MISMATCH %s: header %lld, Rust %lld\n", what, header, rust);
        failures++;
    }
}

int main(void)
{
    const struct shmsync_abi *abi = &SHMSYNC_ABI;
    same("sizeof(struct shmsync_message)", sizeof(struct shmsync_message), abi->message_size);
    same("alignof(struct shmsync_message)", alignof(struct shmsync_message), abi->message_align);
    same("offsetof(seq)", offsetof(struct shmsync_message, seq), abi->seq_offset);
    same("offsetof(writer_pid)", offsetof(struct shmsync_message, writer_pid),
         abi->writer_pid_offset);
    same("offsetof(len)", offsetof(struct shmsync_message, len), abi->len_offset);
    same("offsetof(text)", offsetof(struct shmsync_message, text), abi->text_offset);
    same("SHMSYNC_TEXT", SHMSYNC_TEXT, abi->text_len);
    const int codes[6] = {SHMSYNC_OK,        SHMSYNC_OWNER_DEAD, SHMSYNC_POISONED,
                          SHMSYNC_TIMED_OUT, SHMSYNC_E_LAYOUT,   SHMSYNC_E_STATE};
    for (int i = 0; i < 6; i++)
        same("return code", codes[i], abi->codes[i]);
    printf("fingerprint=%016llx failures=%d\n", (unsigned long long)SHMSYNC_BOARD_FINGERPRINT,
           failures);
    return failures == 0 ? 0 : 1;
}
