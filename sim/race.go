//go:build race

package sim

// raceEnabled reports whether this build has the race detector on: Command then reruns with
// -race, since some failures show only under it (it slows everything down).
const raceEnabled = true
