package fleet_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine (a process's waiter, a pool's) outlives the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
