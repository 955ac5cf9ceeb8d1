package disktest

import (
	"os"
	"strconv"
	"testing"
)

// SoakCycles is how many cycles a soak test runs: def, 20 under -short
// (the race pass, whose concern is races, not slow leaks), or the number
// in the environment variable env (at least 20) for a bench's long run.
func SoakCycles(t testing.TB, env string, def int) int {
	t.Helper()
	if s := os.Getenv(env); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 20 {
			t.Fatalf("%s=%q: want a number >= 20", env, s)
		}
		return n
	}
	if testing.Short() {
		return 20
	}
	return def
}
