/* The classic C pair's shared segment: a System V segment found with ftok, holding one
 * struct whose first member is a process-shared, robust pthread mutex.
 *
 * A Rust process mirrors it with shmsync::interop::CMutex<Shared>, where Shared is
 * #[repr(C)] struct Shared { counter: i32, text: [u8; 64] }.
 */
#ifndef SHMSYNC_EXAMPLE_SHARED_H
#define SHMSYNC_EXAMPLE_SHARED_H

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

struct shared {
    pthread_mutex_t lock;
    int counter;
    char text[64];
};

/* The project id both sides pass to ftok. */
#define SHARED_PROJ_ID 'R'

/* Nanoseconds on CLOCK_MONOTONIC, for the recovery times the tests print. */
static long long monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "%s: %s\n", what, strerror(err));
    exit(1);
}

/* The key of the segment for `path` (created as an empty file if it does not exist). */
static key_t shared_key(const char *path)
{
    FILE *anchor = fopen(path, "a");
    if (anchor == NULL)
        die(path, errno);
    fclose(anchor);
    key_t key = ftok(path, SHARED_PROJ_ID);
    if (key == -1)
        die("ftok", errno);
    return key;
}

/* Locks s->lock. When the previous holder died holding it (EOWNERDEAD), repairs the data,
 * marks the mutex consistent and says so on stdout with the time the lock came back. */
static void shared_lock(struct shared *s)
{
    int rc = pthread_mutex_lock(&s->lock);
    if (rc == EOWNERDEAD) {
        long long at = monotonic_ns();
        snprintf(s->text, sizeof s->text, "repaired by C pid %d", (int)getpid());
        rc = pthread_mutex_consistent(&s->lock);
        if (rc != 0)
            die("pthread_mutex_consistent", rc);
        printf("recovered: owner died; lock returned at %lld ns\n", at);
        fflush(stdout);
        return;
    }
    if (rc != 0)
        die("pthread_mutex_lock", rc);
}

static void shared_unlock(struct shared *s)
{
    int rc = pthread_mutex_unlock(&s->lock);
    if (rc != 0)
        die("pthread_mutex_unlock", rc);
}

#endif
