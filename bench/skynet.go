// bench/skynet.go: the Go peer of the skynet benchmark (goroutines + WaitGroup), speaking the
// same line protocol as the C++ binaries (harness.hpp): {"ms":...} per run, then peak RSS.
package main

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

func skynet(num, size uint64) uint64 {
	if size == 1 {
		return num
	}
	child := size / 10
	var results [10]uint64
	var wg sync.WaitGroup
	wg.Add(10)
	for i := 0; i < 10; i++ {
		go func(i int) {
			results[i] = skynet(num+uint64(i)*child, child)
			wg.Done()
		}(i)
	}
	wg.Wait()
	var sum uint64
	for _, r := range results {
		sum += r
	}
	return sum
}

func main() {
	depth := flag.Int("depth", 6, "levels of 10 children")
	runs := flag.Int("runs", 5, "timed runs")
	warmup := flag.Int("warmup", 1, "untimed runs")
	flag.String("system", "go", "ignored: always go")
	flag.Parse()
	size := uint64(1)
	for i := 0; i < *depth; i++ {
		size *= 10
	}
	expected := size * (size - 1) / 2
	for i := 0; i < *warmup+*runs; i++ {
		start := time.Now()
		sum := skynet(0, size)
		elapsed := time.Since(start)
		if sum != expected {
			fmt.Fprintln(os.Stderr, "bench: check failed: go skynet sum")
			os.Exit(2)
		}
		if i >= *warmup {
			fmt.Printf("{\"ms\":%.4f}\n", float64(elapsed.Nanoseconds())/1e6)
		}
	}
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	fmt.Printf("{\"peak_rss_kb\":%d,\"extra\":{}}\n", usage.Maxrss)
}
