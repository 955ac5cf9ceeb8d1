//go:build race

package netbootroom

// raceDetector: this test binary runs under -race.
const raceDetector = true
