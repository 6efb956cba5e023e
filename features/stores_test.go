package features_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cucumber/godog"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stockbus/stockbus/features/steps"
	"github.com/stockbus/stockbus/postgres"
	"github.com/stockbus/stockbus/sqlite"
)

// The environment variables of the spec's store. STOCKBUS_STORE chooses the store every scenario
// runs on; the Postgres ones are those of package postgres's tests.
const (
	StoreVariable   = "STOCKBUS_STORE"
	URLVariable     = "STOCKBUS_POSTGRES_URL"
	RequireVariable = "STOCKBUS_REQUIRE_POSTGRES"
)

// stores are the stores the spec runs on, by the value of STOCKBUS_STORE ("" is fakes).
var stores = map[string]func() *store{
	"fakes":    func() *store { return &store{name: "fakes"} },
	"sqlite":   func() *store { return &store{name: "sqlite"} },
	"postgres": func() *store { return &store{name: "postgres"} },
}

// store opens a new, empty store of one kind for each scenario: a fakes.Store; an SQLite file in a
// folder of its own; or a Postgres database cloned from a template database that this run
// migrated once. Scenarios run concurrently, so each needs a store of its own: a database per
// scenario isolates them completely (no TRUNCATE racing another scenario's reads), and
// CREATE DATABASE ... TEMPLATE copies the migrated schema in about as long as an empty
// CREATE DATABASE takes, without running the migrations again.
type store struct {
	name string

	once     sync.Once
	err      error  // why the store cannot be opened: no server, a failed template
	skip     string // why the scenarios are skipped: STOCKBUS_POSTGRES_URL is unset
	dir      string // sqlite: the folder that holds each scenario's file
	admin    *pgxpool.Pool
	server   *url.URL // postgres: the server, without a database
	template string   // postgres: the migrated database each scenario's database is cloned from
}

// theStore is the store of this run, chosen by STOCKBUS_STORE in TestMain.
var theStore *store

// chooseStore returns the store STOCKBUS_STORE names, or an error listing the choices.
func chooseStore() (*store, error) {
	name := os.Getenv(StoreVariable)
	if name == "" {
		name = "fakes"
	}
	newStore, ok := stores[name]
	if !ok {
		return nil, fmt.Errorf("%s=%q: want fakes, sqlite or postgres", StoreVariable, name)
	}
	return newStore(), nil
}

// ready prepares the store once, for every test that runs scenarios: it skips t when Postgres is
// chosen and STOCKBUS_POSTGRES_URL is unset (it fails under STOCKBUS_REQUIRE_POSTGRES=1), and fails
// t when the store cannot be prepared.
func (s *store) ready(t *testing.T) {
	t.Helper()
	s.once.Do(s.prepare)
	if s.skip != "" {
		if os.Getenv(RequireVariable) == "1" {
			t.Fatalf("%s and %s=1: start a server with scripts/postgres", s.skip, RequireVariable)
		}
		t.Skip(s.skip + ": start a server with scripts/postgres and export the variable it prints")
	}
	if s.err != nil {
		t.Fatalf("the %s store: %v", s.name, s.err)
	}
}

func (s *store) prepare() {
	switch s.name {
	case "sqlite":
		s.dir, s.err = os.MkdirTemp("", "stockbus-features-")
	case "postgres":
		raw := os.Getenv(URLVariable)
		if raw == "" {
			s.skip = fmt.Sprintf("%s=postgres but %s is not set", StoreVariable, URLVariable)
			return
		}
		s.err = s.prepareTemplate(raw)
	}
}

// prepareTemplate creates and migrates the database that every scenario's database is cloned from.
func (s *store) prepareTemplate(raw string) error {
	ctx := context.Background()
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s must be a postgres:// URL: %w", URLVariable, err)
	}
	s.server = u
	if s.admin, err = pgxpool.New(ctx, raw); err != nil {
		return fmt.Errorf("connect to %s: %w", URLVariable, err)
	}
	s.template = newName("stockbus_features_template_")
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+s.template); err != nil {
		return fmt.Errorf("create the template database: %w", err)
	}
	migrated, err := postgres.Open(ctx, s.database(s.template))
	if err != nil {
		return fmt.Errorf("migrate the template database: %w", err)
	}
	migrated.Close() // CREATE DATABASE ... TEMPLATE refuses a template with open connections
	return nil
}

// database returns the URL of the named database on the server.
func (s *store) database(name string) string {
	u := *s.server
	u.Path = "/" + name
	return u.String()
}

// newName returns prefix followed by random hex digits: a database name no other run uses.
func newName(prefix string) string {
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	return prefix + hex.EncodeToString(raw[:])
}

// open is the steps.Opener of this store.
func (s *store) open(ctx context.Context) (steps.Store, func() error, error) {
	s.once.Do(s.prepare)
	if s.skip != "" {
		return nil, nil, fmt.Errorf("%s", s.skip)
	}
	if s.err != nil {
		return nil, nil, s.err
	}
	switch s.name {
	case "sqlite":
		dir, err := os.MkdirTemp(s.dir, "scenario-")
		if err != nil {
			return nil, nil, err
		}
		st, err := sqlite.Open(ctx, filepath.Join(dir, "stockbus.db"))
		if err != nil {
			return nil, nil, err
		}
		return st, func() error {
			closeErr := st.Close()
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			return closeErr
		}, nil
	case "postgres":
		name := newName("stockbus_features_")
		if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+s.template); err != nil {
			return nil, nil, fmt.Errorf("create database %s from the template: %w", name, err)
		}
		drop := func() error {
			_, err := s.admin.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)")
			return err
		}
		st, err := postgres.Open(ctx, s.database(name))
		if err != nil {
			return nil, nil, fmt.Errorf("open database %s: %w (and dropping it: %v)", name, err, drop())
		}
		return st, func() error { st.Close(); return drop() }, nil
	}
	return nil, nil, fmt.Errorf("no store %q", s.name) // fakes go through steps.Register
}

// register installs the step library on sc, on a new store of this kind for the scenario.
func (s *store) register(sc *godog.ScenarioContext) {
	if s.name == "fakes" {
		steps.Register(sc)
		return
	}
	steps.RegisterOpening(s.name, s.open)(sc)
}

// close removes what prepare made: the folder of SQLite files, the Postgres template database.
func (s *store) close() error {
	if s.dir != "" {
		if err := os.RemoveAll(s.dir); err != nil {
			return err
		}
	}
	if s.admin != nil {
		defer s.admin.Close()
		if s.template != "" {
			if _, err := s.admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+s.template+" WITH (FORCE)"); err != nil {
				return fmt.Errorf("drop the template database %s: %w", s.template, err)
			}
		}
	}
	return nil
}
