package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/service/servicetest"
	"github.com/stockbus/stockbus/sqlite"
)

// open returns a store on a new file in t.TempDir(), closed when the test ends.
func open(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "stockbus.db"))
	require.NoError(t, err, "sqlite.Open")
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestStoreContract(t *testing.T) {
	servicetest.TestStore(t, func() service.Store { return open(t) })
}
