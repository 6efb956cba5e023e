//go:build !race

package sim

// raceEnabled reports whether this build has the race detector on (see race.go).
const raceEnabled = false
