//go:build !race

package output_test

// goRun is how Config.Command starts in this build (see race_test.go).
const goRun = "go run ./cmd/simulate"
