//go:build race

package output_test

// goRun is how Config.Command starts in this build: with the race detector, as the test ran.
const goRun = "go run -race ./cmd/simulate"
