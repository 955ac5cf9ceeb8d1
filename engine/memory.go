package engine

import (
	"math"
	"runtime/debug"
	"sync"
)

// A client's memory (issue 20: peak RSS within 256 MiB at default
// settings, whole disks included). --cache-size is the knob: it bounds
// the whole process, not only the piece buffers.
//
// Half of it holds pieces in flight (extent.Budget: one budget and one set of
// buffers for all of a session's deploys, so a disk of three partitions
// holds no more than one partition would); the rest is for everything
// else: the library's per-connection and per-chunk buffers, the picker,
// the runtime. The held buffers were all of the cache before, and the
// garbage collector lets the heap grow to twice what is live before it
// collects: a 1.1 GiB disk in 16 MiB pieces peaked at 336 MiB on loopback
// (195 MB live after a collection). So `ezio deploy` also sets a soft
// memory limit for the Go runtime (LimitMemory: debug.SetMemoryLimit)
// a little under the cache size: the collector then runs when the heap
// nears it instead of at twice the live heap. Piece buffers hold no
// pointers, so those collections cost little. A GOMEMLIMIT given in the
// environment is left as it is.

// heldLimit is the bytes of piece buffers a session may hold.
func heldLimit(tu Tuning) int64 {
	tu = tu.withDefaults()
	return int64(tu.CacheSizeMiB) << 20 / 2
}

// memoryLimit is the soft limit for the runtime of a deploying process.
func memoryLimit(tu Tuning) int64 {
	tu = tu.withDefaults()
	return max(int64(tu.CacheSizeMiB)<<20-32<<20, heldLimit(tu)+32<<20)
}

var memoryLimitOnce sync.Once

// LimitMemory sets the process's soft memory limit for a deploying client
// from its cache size, once, unless one is set already (GOMEMLIMIT). It
// is for the program, not the engine's jobs: a process running several
// sessions (tests) keeps the runtime's defaults.
func LimitMemory(tu Tuning) {
	memoryLimitOnce.Do(func() {
		if debug.SetMemoryLimit(-1) == math.MaxInt64 {
			debug.SetMemoryLimit(memoryLimit(tu))
		}
	})
}
