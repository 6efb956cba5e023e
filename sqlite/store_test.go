package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/service/servicetest"
	"github.com/stockbus/stockbus/sqlite"
)

// open returns a store on a new file in t.TempDir(), closed when the test ends. It touches t only
// through TempDir, Cleanup and Errorf, so a contract's newStore may call it on a subtest's
// goroutine; a store that cannot be opened stops the test binary with the reason.
func open(t testing.TB) *sqlite.Store {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "stockbus.db"))
	if err != nil {
		panic(fmt.Sprintf("sqlite.Open: %v", err))
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

func TestStoreContract(t *testing.T) {
	servicetest.TestStore(t, func() service.Store { return open(t) })
}

// TestStoreContractWithoutCache runs the contract on loads that read every row.
func TestStoreContractWithoutCache(t *testing.T) {
	servicetest.TestStore(t, func() service.Store {
		s := open(t)
		sqlite.DisableCache(s)
		return s
	})
}

func TestUnitOfWork(t *testing.T) {
	servicetest.TestUnitOfWork(t, func() servicetest.HookedStore { return open(t) })
}
