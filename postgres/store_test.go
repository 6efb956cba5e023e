package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/postgres"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/service/servicetest"
)

// URLVariable names the server the tests use; RequireVariable=1 makes its absence a failure.
const (
	URLVariable     = "STOCKBUS_POSTGRES_URL"
	RequireVariable = "STOCKBUS_REQUIRE_POSTGRES"
)

// server returns the server's URL. Without the variable the test is skipped, or fails under
// STOCKBUS_REQUIRE_POSTGRES=1.
func server(t testing.TB) string {
	t.Helper()
	u := os.Getenv(URLVariable)
	if u == "" {
		if os.Getenv(RequireVariable) == "1" {
			t.Fatalf("%s is not set and %s=1: start a server with scripts/postgres", URLVariable, RequireVariable)
		}
		t.Skipf("no Postgres server: set %s (scripts/postgres starts one and prints it)", URLVariable)
	}
	return u
}

// open returns a store on a new database of the server, dropped when the test ends.
func open(t testing.TB) *postgres.Store {
	t.Helper()
	s, err := newDatabase(t, server(t))
	require.NoError(t, err)
	return s
}

// newDatabase creates a database on the server and opens a store on it; t's cleanup closes the
// store and drops the database. It touches t only through Cleanup, so it may run on another
// goroutine than t's.
func newDatabase(t testing.TB, server string) (*postgres.Store, error) {
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", URLVariable, err)
	}
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	name := "stockbus_test_" + hex.EncodeToString(raw[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		_ = admin.Close(ctx)
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	t.Cleanup(func() {
		_, err := admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)")
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		_ = admin.Close(ctx)
	})
	u, err := url.Parse(server)
	if err != nil {
		return nil, fmt.Errorf("%s must be a postgres:// URL: %w", URLVariable, err)
	}
	u.Path = "/" + name
	s, err := postgres.Open(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("postgres.Open: %w", err)
	}
	t.Cleanup(s.Close) // runs before the drop: cleanups are last in, first out
	return s, nil
}

func TestStoreContract(t *testing.T) {
	url := server(t)
	servicetest.TestStore(t, func() service.Store {
		s, err := newDatabase(t, url)
		if err != nil {
			// The contract's newStore cannot fail and runs on a subtest's goroutine, where
			// t.FailNow is not allowed: stop the test binary with the reason.
			panic(err)
		}
		return s
	})
}

// TestStoreContractWithoutCache runs the contract on loads that read every row.
func TestStoreContractWithoutCache(t *testing.T) {
	url := server(t)
	servicetest.TestStore(t, func() service.Store {
		s, err := newDatabase(t, url)
		if err != nil {
			panic(err) // see TestStoreContract
		}
		postgres.DisableCache(s)
		return s
	})
}

func TestUnitOfWork(t *testing.T) {
	url := server(t)
	servicetest.TestUnitOfWork(t, func() servicetest.HookedStore {
		s, err := newDatabase(t, url)
		if err != nil {
			panic(err) // see TestStoreContract
		}
		return s
	})
}
