// Package fleet runs several cmd/api processes on one Postgres database, one NATS server and
// one SMTP sink, and accounts for every event their requests committed: the test harness of
// "several processes" (issue 16). A Supervisor builds the binary once, starts instances on free
// ports, stops them with SIGTERM or kills them with SIGKILL, and restarts them; Account compares
// the store's event log, the ground truth of what committed, with what the sink and the stream
// hold.
package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// The variables the Postgres tests read (as postgres/store_test.go does).
const (
	// URLVariable names the server: a postgres:// URL.
	URLVariable = "STOCKBUS_POSTGRES_URL"
	// RequireVariable set to 1 makes a missing URLVariable a failure instead of a skip.
	RequireVariable = "STOCKBUS_REQUIRE_POSTGRES"
)

// Database creates a database of its own on the server URLVariable names and returns its URL;
// t's cleanup drops it, with every connection still open to it. Without the variable t is
// skipped, or fails under RequireVariable=1.
func Database(t testing.TB) string {
	t.Helper()
	server := os.Getenv(URLVariable)
	if server == "" {
		if os.Getenv(RequireVariable) == "1" {
			t.Fatalf("%s is not set and %s=1: start a server with scripts/postgres", URLVariable, RequireVariable)
		}
		t.Skipf("no Postgres server: set %s (scripts/postgres starts one and prints it)", URLVariable)
	}
	db, drop, err := CreateDatabase(context.Background(), server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Error(err)
		}
	})
	return db
}

// CreateDatabase creates a database named stockbus_fleet_<random> on the server at serverURL
// and returns its URL and the function that drops it (closing every connection still open to it).
func CreateDatabase(ctx context.Context, serverURL string) (string, func() error, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("%s must be a postgres:// URL: %w", URLVariable, err)
	}
	admin, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect to %s: %w", u.Redacted(), err)
	}
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	name := "stockbus_fleet_" + hex.EncodeToString(raw[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		_ = admin.Close(ctx)
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop := func() error {
		_, err := admin.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)")
		if err != nil {
			err = fmt.Errorf("drop database %s: %w", name, err)
		}
		return errors.Join(err, admin.Close(context.Background()))
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}
