package engine

import "testing"

// --cache-size bounds a client as a whole: half for pieces in flight, the
// runtime's soft limit a little under it, and never below the held part.
func TestMemoryLimits(t *testing.T) {
	if got := heldLimit(Tuning{}); got != 128<<20 {
		t.Errorf("default held limit %d MiB, want 128", got>>20)
	}
	if got := memoryLimit(Tuning{}); got != 224<<20 {
		t.Errorf("default memory limit %d MiB, want 224", got>>20)
	}
	if got := memoryLimit(Tuning{CacheSizeMiB: 32}); got < heldLimit(Tuning{CacheSizeMiB: 32})+32<<20 {
		t.Errorf("memory limit %d MiB leaves no room beside 16 MiB of pieces", got>>20)
	}
}
