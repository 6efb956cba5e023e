package simreal_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stockbus/stockbus/internal/simcli"
	"github.com/stockbus/stockbus/internal/simreal"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/sim/output"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The variables the Postgres tests read, as in package postgres's tests.
const (
	urlVariable     = "STOCKBUS_POSTGRES_URL"
	requireVariable = "STOCKBUS_REQUIRE_POSTGRES"
)

func postgresURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv(urlVariable)
	if u == "" {
		if os.Getenv(requireVariable) == "1" {
			t.Fatalf("%s is not set and %s=1: start a server with scripts/postgres", urlVariable, requireVariable)
		}
		t.Skipf("no Postgres server: set %s (scripts/postgres starts one and prints it)", urlVariable)
	}
	return u
}

// stores are the real stores under test, by name; Postgres only when a server is given.
func stores(t *testing.T) map[string]func(*testing.T) simcli.Store {
	return map[string]func(*testing.T) simcli.Store{
		"sqlite": func(t *testing.T) simcli.Store {
			open, err := simreal.SQLite("")
			require.NoError(t, err)
			return simcli.Store{Open: open}
		},
		"postgres": func(t *testing.T) simcli.Store {
			open, err := simreal.Postgres(postgresURL(t))
			require.NoError(t, err)
			return simcli.Store{Open: open}
		},
	}
}

// small is a sync run short enough for -race on SQLite.
func small(name string, st simcli.Store) sim.Config {
	c := sim.Default()
	c.Orders, c.WarmupOrders, c.Workers, c.SKUs = 200, 10, 2, 3
	c.Mailer = sim.FixedLatency(0)
	c.Strategy = sim.Sync
	c.Store, c.OpenStore = name, st.Open
	return c
}

func requireInvariants(t *testing.T, rep sim.Report) {
	t.Helper()
	for _, inv := range rep.Invariants {
		assert.True(t, inv.OK, "%s: %v", inv.Name, inv.Examples)
	}
	assert.True(t, rep.OK)
}

func TestSyncRunOnEachStore(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			rep, err := sim.Run(context.Background(), small(name, st(t)))
			require.NoError(t, err)
			requireInvariants(t, rep)
			assert.Equal(t, int64(200), rep.Counts.Sent)
			assert.Positive(t, rep.Commit.Count, "commits of measured requests are timed")
			assert.Positive(t, rep.Commit.P99)
			var out bytes.Buffer
			require.NoError(t, output.WriteText(&out, rep))
			assert.Contains(t, out.String(), "workers, store "+name)
			assert.Contains(t, out.String(), "inside the "+name+" store's Commit")
		})
	}
}

// The hot-sku figure on every store: 500 units, 1000 orders of 1, 8 workers, unlimited retries.
func TestHotSKUOnEachStore(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := sim.HotSKU()
			c.Workers, c.Retries, c.Strategy, c.Mailer = 8, service.Unlimited, sim.Sync, sim.FixedLatency(0)
			s := st(t)
			c.Store, c.OpenStore = name, s.Open
			rep, err := sim.Run(context.Background(), c)
			require.NoError(t, err)
			requireInvariants(t, rep)
			assert.Equal(t, int64(500), rep.Counts.Allocated)
			assert.Equal(t, int64(500), rep.Counts.OutOfStock)
			assert.Equal(t, int64(500), rep.Counts.Mails)
			assert.Positive(t, rep.Counts.Conflicts, "8 writers on one product conflict on a real store too")
		})
	}
}

// Faults on every store: a crash by count before and after a commit (the crashed unit of work
// rolls its real transaction back), forced conflicts through the store's hook, mail errors
// and client resends; the run's invariants hold and each fault fired.
func TestFaultsOnEachStore(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := small(name, st(t))
			c.Strategy = sim.SyncRetry
			crashes, err := sim.ParseCrashVisits("before-commit=20/60,after-commit=40")
			require.NoError(t, err)
			c.CrashAt, c.ConflictRate, c.MailErrors, c.ClientRetry = crashes, 0.2, 0.2, 1
			rep, err := sim.Run(context.Background(), c)
			require.NoError(t, err)
			requireInvariants(t, rep)
			assert.Equal(t, 3, rep.Faults.Crashes.Total)
			assert.Positive(t, rep.Faults.ForcedConflicts)
			assert.Positive(t, rep.Faults.SendErrors)
			assert.Positive(t, rep.Faults.ClientResends)
		})
	}
}

// The outbox on every store, Postgres included: the hot-sku figure with three library relays
// sharing the outbox table, crashes in the relays (between a send and its mark) and in the
// workers. Once drained nothing is lost, every OutOfStock is mailed once (the mailer
// de-duplicates), and every repeat the mailer dropped, and every publication made again, is a
// row the history shows sent and not marked done when the relays died.
func TestOutboxWithThreeRelaysOnEachStore(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := sim.HotSKU()
			s := st(t)
			c.Store, c.OpenStore = name, s.Open
			c.Strategy, c.Relays, c.Workers, c.Retries, c.Mailer = sim.Outbox, 3, 4, service.Unlimited, sim.FixedLatency(0)
			crashes, err := sim.ParseCrashVisits("relay-sent=100/300/500/700,after-commit=50/400")
			require.NoError(t, err)
			c.CrashAt = crashes
			rep, err := sim.Run(context.Background(), c)
			require.NoError(t, err)
			requireInvariants(t, rep)
			a, h := rep.Accounting, rep.History
			assert.Equal(t, 4, rep.Faults.Crashes.RelaySent)
			assert.Equal(t, 2, rep.Faults.Crashes.AfterCommit)
			assert.Zero(t, a.Lost)
			assert.Zero(t, a.Duplicated, "the mailer de-duplicates")
			assert.Equal(t, int64(a.Kind(sim.KindOutOfStock).Committed), rep.Counts.Mails, "one mail per committed OutOfStock")
			kinds := map[string]sim.EventKind{}
			for _, e := range h.Events {
				kinds[e.ID] = e.Kind
			}
			mails, publications := 0, 0
			for _, c := range h.Crashes {
				for _, id := range c.Unmarked {
					if kinds[id] == sim.KindOutOfStock {
						mails++
					} else {
						publications++
					}
				}
			}
			t.Logf("rows sent and not marked at the crashes: %d mails, %d publications; dedup hits %d, re-published %d",
				mails, publications, rep.Counts.DedupHits, a.DuplicatedPublished)
			assert.Positive(t, mails+publications, "the relay crashes caught rows between send and mark")
			assert.Equal(t, int64(mails), rep.Counts.DedupHits, "repeats dropped == mail rows sent and not marked")
			assert.Equal(t, publications, a.DuplicatedPublished, "publications again == publication rows sent and not marked")
		})
	}
}

// cmd/simulate-real runs -strategy outbox on Postgres, which it once refused, with the store
// named by its URL or as postgres:URL.
func TestOutboxCommandLineOnPostgres(t *testing.T) {
	url := postgresURL(t)
	var out, errOut bytes.Buffer
	for _, store := range []string{url, "postgres:" + url} {
		out.Reset()
		args := []string{"-store", store, "-strategy", "outbox", "-relays", "3", "-orders", "200", "-warmup", "10", "-workers", "2", "-mailer-latency", "0"}
		code := simcli.Run(context.Background(), simreal.Adapters(), args, &out, &errOut, false)
		require.Equal(t, 0, code, "-store %s: stderr: %s", store, errOut.String())
		assert.Contains(t, out.String(), "3 relays sharing the table", "-store %s", store)
	}
}

func TestSQLitePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sim.db")
	open, err := simreal.SQLite(path)
	require.NoError(t, err)
	c := small("sqlite:"+path, simcli.Store{Open: open})
	c.Strategy = sim.Sync // with its calibration run: two runs on the same path
	_, err = sim.Run(context.Background(), c)
	require.NoError(t, err)
	assert.FileExists(t, path, "the last run's database is left for inspection")

	other := filepath.Join(t.TempDir(), "mine.db")
	require.NoError(t, os.WriteFile(other, []byte("not the simulator's"), 0o600))
	open, err = simreal.SQLite(other)
	require.NoError(t, err)
	_, err = sim.Run(context.Background(), small("sqlite:"+other, simcli.Store{Open: open}))
	require.ErrorIs(t, err, simreal.ErrExists)
	got, err := os.ReadFile(other)
	require.NoError(t, err)
	assert.Equal(t, "not the simulator's", string(got), "a file the simulator did not make is never replaced")
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"sync on sqlite", []string{"-store", "sqlite", "-strategy", "sync"}, 0, "workers, store sqlite"},
		{"bad sqlite path", []string{"-store", "sqlite:"}, 2, "wants a file path"},
		{"unknown store", []string{"-store", "mysql://x"}, 2, "unknown store"},
		{"postgres: without a URL", []string{"-store", "postgres:localhost"}, 2, "postgres: wants a postgres:// URL after the colon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"-orders", "100", "-warmup", "10", "-workers", "2", "-mailer-latency", "0"}, tt.args...)
			code := simcli.Run(context.Background(), simreal.Adapters(), args, &out, &errOut, false)
			assert.Equal(t, tt.code, code, "stderr: %s", errOut.String())
			assert.Contains(t, out.String()+errOut.String(), tt.out)
		})
	}
}
