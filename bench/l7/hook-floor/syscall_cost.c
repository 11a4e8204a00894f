// Nanoseconds per getppid() (a syscall no hook looks at) and per write+read of 64 bytes on a socketpair;
// the best of five rounds.
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}
int main(void) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0)
    return 1;
  char buffer[64] = {0};
  double best_io = 1e12, best_plain = 1e12;
  for (int round = 0; round < 5; round++) {
    double start = now();
    for (int i = 0; i < 200000; i++) {
      if (write(pair[0], buffer, sizeof buffer) < 0 || read(pair[1], buffer, sizeof buffer) < 0)
        return 1;
    }
    double io = (now() - start) / 200000;
    start = now();
    for (int i = 0; i < 200000; i++)
      getppid();
    double plain = (now() - start) / 200000;
    if (io < best_io) best_io = io;
    if (plain < best_plain) best_plain = plain;
  }
  printf("%.0f %.0f\n", best_plain, best_io);
  return 0;
}
