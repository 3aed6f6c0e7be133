/* The classic C reader: attaches the writer's System V segment and prints the counter and
 * the text, read under the lock (repairing the mutex if a holder died).
 *
 *   cc -pthread -o reader examples/c/reader.c
 *   ./reader -p /tmp/shmsync-c-demo
 */
#include "shared.h"

int main(int argc, char **argv)
{
    const char *path = "/tmp/shmsync-c-demo";
    int opt;
    while ((opt = getopt(argc, argv, "p:h")) != -1) {
        switch (opt) {
        case 'p': path = optarg; break;
        case 'h': puts("Usage: reader [-p PATH]"); return 0;
        default: fputs("Usage: reader [-p PATH]\n", stderr); return 2;
        }
    }
    int id = shmget(shared_key(path), sizeof(struct shared), 0);
    if (id == -1)
        die("shmget", errno);
    struct shared *s = shmat(id, NULL, 0);
    if (s == (void *)-1)
        die("shmat", errno);
    shared_lock(s);
    printf("counter=%d text=%.*s\n", s->counter, (int)sizeof s->text, s->text);
    shared_unlock(s);
    shmdt(s);
    return 0;
}
