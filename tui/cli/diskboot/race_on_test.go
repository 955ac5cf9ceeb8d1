//go:build race

package diskboot

// raceDetector: this test binary runs under -race.
const raceDetector = true
