/* The benchmark child: its first act appends "<CLOCK_MONOTONIC ns> <pid>" to argv[1], then it sleeps.
   SIGTERM's default action ends it, as a well-behaved program would. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (argc > 1) {
        char line[64];
        int n = snprintf(line, sizeof line, "%lld %d\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, (int)getpid());
        int fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) { write(fd, line, (size_t)n); close(fd); }
    }
    for (;;) pause();
}
