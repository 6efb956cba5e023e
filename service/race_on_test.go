//go:build race

package service_test

// raceEnabled says that the race detector is on: it makes sync.Pool drop items on purpose and
// allocates for its own bookkeeping, so allocation counts mean nothing then.
const raceEnabled = true
