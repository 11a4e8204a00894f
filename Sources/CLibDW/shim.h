#include <elfutils/libdwfl.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <libelf.h>
#include <gelf.h>
#include <dwarf.h>
#include <stddef.h>

/* The Itanium C++ ABI demangler from libstdc++ (which the Swift runtime already links on Linux). Returns a
   malloc'ed string, or NULL with *status set: -1 out of memory, -2 not a valid mangled name, -3 bad argument. */
char *__cxa_demangle(const char *mangled_name, char *output_buffer, size_t *length, int *status);
