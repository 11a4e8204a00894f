// A Go (net/http) server on 127.0.0.1 whose requests burn CPU at the bottom of a deep chain of Go calls, for
// checking that stacks through Go code are complete and named (also in the stripped build, which has only
// .gopclntab: `-ldflags='-s -w'` drops the symbol table and DWARF).
//
//   go_http PORT     (PORT 0 picks a free port; prints "listening PORT" once it accepts connections)
//
//   GET /burn?n=N    hashes a 4 KiB block N times (default 200) with crypto/sha256, answers 200
//
// Stack of the hot code (leaf last), on the goroutine that serves the connection:
//   runtime.goexit → net/http.(*conn).serve → net/http.serverHandler.ServeHTTP → … → main.handle →
//   main.level1 → main.level2 → main.level3 → main.level4 → main.level5 → main.burn →
//   crypto/sha256.(*digest).Write / Sum → crypto/sha256.block (assembly)
package main

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
)

var block = func() []byte {
	data := make([]byte, 4096)
	for i := range data {
		data[i] = byte(i * 31)
	}
	return data
}()

//go:noinline
func burn(n int) [32]byte {
	var sum [32]byte
	for i := 0; i < n; i++ {
		h := sha256.New()
		h.Write(sum[:])
		h.Write(block)
		copy(sum[:], h.Sum(nil))
	}
	return sum
}

//go:noinline
func level5(n int) [32]byte { return burn(n) }

//go:noinline
func level4(n int) [32]byte { return level5(n) }

//go:noinline
func level3(n int) [32]byte { return level4(n) }

//go:noinline
func level2(n int) [32]byte { return level3(n) }

//go:noinline
func level1(n int) [32]byte { return level2(n) }

//go:noinline
func handle(w http.ResponseWriter, r *http.Request) {
	n := 200
	if value, err := strconv.Atoi(r.URL.Query().Get("n")); err == nil && value > 0 {
		n = value
	}
	sum := level1(n)
	fmt.Fprintf(w, "%x\n", sum[:8])
}

func main() {
	port := "0"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	listener, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_http:", err)
		os.Exit(1)
	}
	http.HandleFunc("/", handle)
	fmt.Printf("listening %d\n", listener.Addr().(*net.TCPAddr).Port)
	if err := http.Serve(listener, nil); err != nil {
		fmt.Fprintln(os.Stderr, "go_http:", err)
		os.Exit(1)
	}
}
