// Loads a BPF object, attaches every program, and holds them for the given seconds.
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: attach OBJECT SECONDS\n");
    return 2;
  }
  struct bpf_object *object = bpf_object__open_file(argv[1], NULL);
  if (!object || bpf_object__load(object)) {
    fprintf(stderr, "cannot load %s\n", argv[1]);
    return 1;
  }
  struct bpf_program *program;
  bpf_object__for_each_program(program, object) {
    if (!bpf_program__attach(program)) {
      fprintf(stderr, "cannot attach %s\n", bpf_program__name(program));
      return 1;
    }
  }
  sleep(atoi(argv[2]));
  return 0;
}
