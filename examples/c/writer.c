/* The classic C writer: creates (or attaches) a System V segment from ftok holding
 * struct shared, initialises its mutex PTHREAD_PROCESS_SHARED and PTHREAD_MUTEX_ROBUST when it
 * creates the segment, then increments the counter and rewrites the text under the lock.
 *
 *   cc -pthread -o writer examples/c/writer.c
 *   ./writer -p /tmp/shmsync-c-demo -n 1000
 */
#include "shared.h"

static void usage(FILE *to)
{
    fputs("Usage: writer [-p PATH] [-n COUNT] [-s] [-H] [-x] [-L]\n"
          "  -p PATH   ftok path (default /tmp/shmsync-c-demo; created if missing)\n"
          "  -n COUNT  increments to make (default 10; 0 only creates the segment)\n"
          "  -s        when creating: a mutex that is not robust (PTHREAD_MUTEX_STALLED)\n"
          "  -H        at the end: lock, print \"holding\" and wait to be killed\n"
          "  -x        remove the segment at the end (IPC_RMID)\n"
          "  -L        print the struct's layout and exit\n",
          to);
}

/* Attaches the segment for `key`, creating it and initialising the mutex if it is new. */
static struct shared *attach_or_create(key_t key, int robust, int *shmid)
{
    int created = 1;
    int id = shmget(key, sizeof(struct shared), IPC_CREAT | IPC_EXCL | 0600);
    if (id == -1 && errno == EEXIST) {
        created = 0;
        id = shmget(key, sizeof(struct shared), 0);
    }
    if (id == -1)
        die("shmget", errno);
    struct shared *s = shmat(id, NULL, 0);
    if (s == (void *)-1)
        die("shmat", errno);
    if (created) {
        pthread_mutexattr_t attr;
        pthread_mutexattr_init(&attr);
        pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
        if (robust)
            pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
        int rc = pthread_mutex_init(&s->lock, &attr);
        if (rc != 0)
            die("pthread_mutex_init", rc);
        pthread_mutexattr_destroy(&attr);
        s->counter = 0;
        snprintf(s->text, sizeof s->text, "created by C pid %d", (int)getpid());
    }
    *shmid = id;
    return s;
}

int main(int argc, char **argv)
{
    const char *path = "/tmp/shmsync-c-demo";
    long count = 10;
    int robust = 1, hold = 0, remove = 0, opt;
    while ((opt = getopt(argc, argv, "p:n:sHxLh")) != -1) {
        switch (opt) {
        case 'p': path = optarg; break;
        case 'n': count = atol(optarg); break;
        case 's': robust = 0; break;
        case 'H': hold = 1; break;
        case 'x': remove = 1; break;
        case 'L':
            printf("size=%zu lock=%zu counter=%zu text=%zu mutex=%zu\n", sizeof(struct shared),
                   offsetof(struct shared, lock), offsetof(struct shared, counter),
                   offsetof(struct shared, text), sizeof(pthread_mutex_t));
            return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    int shmid;
    struct shared *s = attach_or_create(shared_key(path), robust, &shmid);
    for (long i = 0; i < count; i++) {
        shared_lock(s);
        s->counter++;
        snprintf(s->text, sizeof s->text, "C pid %d wrote %d", (int)getpid(), s->counter);
        shared_unlock(s);
    }
    if (hold) {
        shared_lock(s);
        printf("holding\n");
        fflush(stdout);
        for (;;)
            pause();
    }
    printf("counter=%d\n", s->counter);
    shmdt(s);
    if (remove && shmctl(shmid, IPC_RMID, NULL) == -1)
        die("IPC_RMID", errno);
    return 0;
}
