package sim_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim"
)

func TestRelaysOutOfRangeOrWithoutTheOutboxAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name     string
		relays   int
		strategy string
		want     string
	}{
		{"none", 0, sim.Outbox, "want 1 to 64 outbox relays, got 0"},
		{"negative", -1, sim.Outbox, "got -1"},
		{"too many", sim.MaxRelays + 1, sim.Outbox, "got 65"},
		{"with sync", 3, sim.Sync, "only with -strategy outbox, got sync"},
		{"with async", 2, sim.Async, "only with -strategy outbox, got async"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sim.Default()
			cfg.Relays, cfg.Strategy = tc.relays, tc.strategy
			err := cfg.Validate()
			require.ErrorIs(t, err, sim.ErrConfig)
			var ce *sim.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "relays", ce.Field, "error %q", err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	for _, n := range []int{1, 3, sim.MaxRelays} {
		cfg := sim.Default()
		cfg.Relays, cfg.Strategy = n, sim.Outbox
		assert.NoError(t, cfg.Validate(), "%d relays", n)
	}
}

// unmarked splits the rows that the crashes caught sent and not marked done into mails
// (OutOfStock rows) and publications (the others), summed over the crashes.
func unmarked(h *sim.History) (mails, publications int) {
	kinds := map[string]sim.EventKind{}
	for _, e := range h.Events {
		kinds[e.ID] = e.Kind
	}
	for _, c := range h.Crashes {
		for _, id := range c.Unmarked {
			if kinds[id] == sim.KindOutOfStock {
				mails++
			} else {
				publications++
			}
		}
	}
	return mails, publications
}

// Three relays share the outbox and the process crashes in them (between a send and its mark)
// and in the workers: once drained nothing is lost, and every surplus mail and publication is one
// of the rows the history shows sent and not marked when the relays died, exactly, counted once
// per crash that caught it. The rows the crashing relay had just sent are among them.
func TestThreeRelaysWithCrashesLoseNothingAndDuplicateExactlyTheUnmarkedRows(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*sim.Config)
	}{
		{"relay crashes by count", func(c *sim.Config) {
			c.CrashAt = sim.CrashVisits{sim.RelaySent: {100, 250, 400, 550, 700, 850}}
		}},
		{"relay and worker crashes by chance", func(c *sim.Config) {
			c.Crash = sim.CrashRates{RelaySent: 0.03, AfterCommit: 0.02, BeforeCommit: 0.01}
			// The faults stay on until the outbox drained, so that every row's send is a visit of
			// RelaySent, however far the workers ran ahead of relays the scheduler starved.
			c.HoldFaults = 1 << 30
		}},
	} {
		for _, dedup := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/dedup %v", tc.name, dedup), func(t *testing.T) {
				cfg := hot(sim.Outbox, 4)
				cfg.Relays, cfg.Dedup = 3, dedup
				tc.edit(&cfg)
				r := figure(t, cfg)
				requireOK(t, r)
				h, a := r.History, r.Accounting
				require.Positive(t, r.Faults.Crashes.RelaySent, "crashes in the relays")
				mails, publications := unmarked(h)
				relays := map[string]bool{}
				for _, s := range h.Sends {
					relays[s.Actor] = true
				}
				measured(t, "crashes %d (in relays %d), rows sent and not marked at them: %d mails, %d publications; "+
					"re-sends %d, duplicated %d, re-published %d, lost %d; %d relay lives sent",
					len(h.Crashes), r.Faults.Crashes.RelaySent, mails, publications, a.Resends, a.Duplicated, a.DuplicatedPublished, a.Lost, len(relays))
				assert.Zero(t, a.Lost, "lost")
				assert.Equal(t, len(outOfStockEvents(h)), a.Kind(sim.KindOutOfStock).Delivered, "every OutOfStock mailed")
				assert.Equal(t, mails, a.Resends, "mails sent again == mail rows sent and not marked at the crashes")
				assert.Equal(t, publications, a.DuplicatedPublished, "publications again == publication rows sent and not marked at the crashes")
				if dedup {
					assert.Zero(t, a.Duplicated, "the mailer drops every repeat")
					assert.Equal(t, int64(mails), r.Counts.DedupHits)
				} else {
					assert.Equal(t, mails, a.Duplicated, "surplus mails == mail rows sent and not marked at the crashes")
					assert.Equal(t, len(outOfStockEvents(h))+mails, len(h.Mails), "mails")
				}
				for _, c := range h.Crashes {
					if c.Point != sim.RelaySent {
						continue
					}
					last := lastSendBefore(h, c.Actor, c.At)
					require.NotNil(t, last, "crash %d: %s sent nothing before it", c.Seq, c.Actor)
					assert.Contains(t, c.Unmarked, last.Event, "crash %d: the row %s had just sent is unmarked", c.Seq, c.Actor)
				}
			})
		}
	}
}

func TestRelaysAreOnTheRerunCommand(t *testing.T) {
	cfg := sim.HotSKU()
	cfg.Strategy, cfg.Relays = sim.Outbox, 3
	assert.Equal(t, goRun+" -workload hot-sku -strategy outbox -relays 3", cfg.Command())
	cfg.Relays = 1
	assert.Equal(t, goRun+" -workload hot-sku -strategy outbox", cfg.Command(), "one relay is the default")
}

func TestRelaysCanBeSwept(t *testing.T) {
	sw, err := sim.ParseSweep("relays=1,3")
	require.NoError(t, err)
	base := sim.HotSKU()
	base.Strategy = sim.Outbox
	cfgs, err := sw.Plan(base, []string{sim.Outbox})
	require.NoError(t, err)
	require.Len(t, cfgs, 2)
	assert.Equal(t, []int{1, 3}, []int{cfgs[0].Relays, cfgs[1].Relays})
	_, err = sw.Plan(base, []string{sim.Sync})
	assert.ErrorIs(t, err, sim.ErrConfig, "3 relays under sync")
}
