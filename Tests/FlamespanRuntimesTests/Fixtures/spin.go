// A small Go program for the Go runtime plug-in's tests: named functions with frames of known size,
// inlined helpers (one level in middleFrame, two in nestedInline), assembly that uses BP as scratch
// (crypto/sha256), and a loop that keeps running so a test can attach to it.
package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"time"
)

//go:noinline
func leafAdd(a, b int) int {
	return a*31 + b
}

// inlinedStep is small enough that the compiler inlines it into middleFrame.
func inlinedStep(x int) int {
	return x ^ (x >> 3)
}

//go:noinline
func middleFrame(n int) int {
	var buffer [16]int
	for i := range buffer {
		buffer[i] = leafAdd(i, n)
	}
	total := 0
	for _, value := range buffer {
		total += inlinedStep(value)
	}
	return total
}

//go:noinline
func hashLoop(rounds int) [32]byte {
	sum := sha256.Sum256([]byte("flamespan"))
	for i := 0; i < rounds; i++ {
		sum = sha256.Sum256(sum[:])
	}
	return sum
}

func main() {
	deadline := time.Now().Add(2 * time.Second)
	if len(os.Args) > 1 && os.Args[1] == "forever" {
		deadline = time.Now().Add(time.Hour)
	}
	total := 0
	for time.Now().Before(deadline) {
		total += middleFrame(total)
		sum := hashLoop(1000)
		total += int(sum[0]) + nestedInline(8)
	}
	fmt.Println(total)
}

// innerInline and outerInline are inlined into nestedInline, one into the other: a two-level chain.
func innerInline(x int) int {
	return x*x + 7
}

func outerInline(x int) int {
	return innerInline(x+1) ^ x
}

//go:noinline
func nestedInline(n int) int {
	total := 0
	for i := 0; i < n; i++ {
		total += outerInline(i)
	}
	return total
}
