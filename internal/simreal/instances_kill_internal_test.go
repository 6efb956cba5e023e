package simreal

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestFallbackVictim: when every other worker is held on other instances, the kill takes an
// instance with requests in flight, so that it catches some; the planned victim stays when it
// has as many as any.
func TestFallbackVictim(t *testing.T) {
	for _, tc := range []struct {
		name    string
		planned int
		busyTo  []int
		want    int
	}{
		{"the planned victim has requests in flight", 1, []int{3, 3}, 1},
		{"only the other instance has", 1, []int{7, 0}, 0},
		{"the busiest of three", 0, []int{0, 2, 5}, 2},
		{"the first of equals", 2, []int{4, 4, 0}, 0},
		{"none has any", 1, []int{0, 0}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, fallbackVictim(tc.planned, tc.busyTo))
		})
	}
}
