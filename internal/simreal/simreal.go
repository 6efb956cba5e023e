// Package simreal opens the real adapters for the simulator: the SQLite and Postgres stores,
// the SMTP mailer and the NATS JetStream broker.
// It is what cmd/simulate-real links and cmd/simulate does not (see internal/simcli).
package simreal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/stockbus/stockbus/internal/simcli"
	"github.com/stockbus/stockbus/postgres"
	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/sqlite"
)

// Adapters are every real adapter, for cmd/simulate-real.
func Adapters() simcli.Adapters {
	return simcli.Adapters{Stores: map[string]simcli.StoreFactory{
		"sqlite": func(arg string) (simcli.Store, error) {
			open, err := SQLite(arg)
			return simcli.Store{Open: open}, err
		},
		"postgres": func(arg string) (simcli.Store, error) {
			open, err := Postgres(arg)
			return simcli.Store{Open: open}, err
		},
	}, Mailers: map[string]simcli.MailerFactory{
		"smtp": func(addr string) (simcli.Mailer, error) {
			open, err := SMTP(addr)
			if addr != "" {
				return simcli.Mailer{Open: open, NoFaults: ExternalNoFaults}, err
			}
			return simcli.Mailer{Open: open}, err
		},
	}, Brokers: map[string]simcli.BrokerFactory{"nats": NATS}, Instances: Instances}
}

// ErrExists is wrapped when sqlite:PATH names a file the simulator did not make: a run seeds a
// new database and never overwrites one.
var ErrExists = errors.New("file exists")

var (
	madeMu sync.Mutex
	made   = map[string]bool{} // sqlite files this process created, which a later run may replace
)

// SQLite returns the opener of a SQLite store. With an empty path each run gets a new file in a
// temporary directory, removed when the run ends. With a path each run creates the file there
// (replacing one that an earlier run of this process made, refusing any other) and leaves it
// behind for inspection.
func SQLite(path string) (sim.StoreOpener, error) {
	if path == "" {
		return func(ctx context.Context) (sim.Store, func() error, error) {
			dir, err := os.MkdirTemp("", "stockbus-sim-")
			if err != nil {
				return nil, nil, err
			}
			s, err := sqlite.Open(ctx, filepath.Join(dir, "sim.db"))
			if err != nil {
				_ = os.RemoveAll(dir)
				return nil, nil, err
			}
			return s, func() error { return errors.Join(s.Close(), os.RemoveAll(dir)) }, nil
		}, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (sim.Store, func() error, error) {
		madeMu.Lock()
		defer madeMu.Unlock()
		if _, err := os.Stat(abs); err == nil {
			if !made[abs] {
				return nil, nil, fmt.Errorf("sqlite:%s: %w (the simulator seeds a new database; remove it or name another)", path, ErrExists)
			}
			for _, f := range []string{abs, abs + "-wal", abs + "-shm"} {
				if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
					return nil, nil, err
				}
			}
		}
		s, err := sqlite.Open(ctx, abs)
		if err != nil {
			return nil, nil, err
		}
		made[abs] = true
		return s, s.Close, nil
	}, nil
}

// Postgres returns the opener of a Postgres store on the server at serverURL: each run creates a
// database of its own there (stockbus_sim_<random>), and drops it when the run ends.
func Postgres(serverURL string) (sim.StoreOpener, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("bad postgres URL: %w", err)
	}
	return func(ctx context.Context) (sim.Store, func() error, error) {
		admin, err := pgx.Connect(ctx, serverURL)
		if err != nil {
			return nil, nil, fmt.Errorf("connect to %s: %w", u.Redacted(), err)
		}
		var raw [6]byte
		_, _ = rand.Read(raw[:])
		name := "stockbus_sim_" + hex.EncodeToString(raw[:])
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			_ = admin.Close(ctx)
			return nil, nil, fmt.Errorf("create database %s: %w", name, err)
		}
		drop := func() error {
			_, err := admin.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)")
			return errors.Join(err, admin.Close(context.Background()))
		}
		du := *u
		du.Path = "/" + name
		s, err := postgres.Open(ctx, du.String())
		if err != nil {
			return nil, nil, errors.Join(err, drop())
		}
		return s, func() error { s.Close(); return drop() }, nil
	}, nil
}
