//go:build !race

package service_test

// raceEnabled says that the race detector is on (see race_on_test.go).
const raceEnabled = false
