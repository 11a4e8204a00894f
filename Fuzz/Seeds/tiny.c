/* A tiny static ELF with .eh_frame and .eh_frame_hdr: the seed of the ELF and CFI fuzz targets. */
static int __attribute__((noinline)) leaf(int x) { return x * 3 + 1; }
static int __attribute__((noinline)) middle(int x) { int a[4] = {x, x + 1, x + 2, x + 3}; return leaf(a[x & 3]) + a[0]; }
void _start(void) {
  volatile int r = middle(7);
  (void)r;
  for (;;) __asm__ volatile("mov $60, %eax; xor %edi, %edi; syscall");
}
