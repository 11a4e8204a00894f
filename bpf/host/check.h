// The host tests' one assertion: counts every check, prints each failure with its place, and lets the
// test go on so that one run shows every failing case. main prints "N checks, M failed" and exits 1 on any.
#ifndef FLAMESPAN_HOST_CHECK_H
#define FLAMESPAN_HOST_CHECK_H

#include <stdio.h>

static int failures = 0, checks = 0;
#define CHECK(condition, ...)                                                                              \
  do {                                                                                                     \
    checks++;                                                                                              \
    if (!(condition)) {                                                                                    \
      failures++;                                                                                          \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                          \
      printf(__VA_ARGS__);                                                                                 \
      printf("\n");                                                                                        \
    }                                                                                                      \
  } while (0)

#endif
