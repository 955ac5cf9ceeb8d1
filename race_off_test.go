//go:build !race

package main

// raceDetector: this test binary (and so the ezio it re-executes as) runs
// under -race, several times slower; timing bounds do not hold there.
const raceDetector = false
