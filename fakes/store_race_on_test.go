//go:build race

package fakes_test

// raceEnabled says that the race detector is on: it allocates for its own bookkeeping, so
// allocation counts mean nothing then.
const raceEnabled = true
