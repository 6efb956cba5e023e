package sqlite_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine (a pool's, a commit's) outlives the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
