//go:build !race

package fakes_test

// raceEnabled says that the race detector is on; see store_race_on_test.go.
const raceEnabled = false
