package sim_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim"
)

// A plan by count crashes exactly at the listed commits that carried an event: with one sync
// worker each such crash loses exactly the event its commit carried.
func TestCrashAtCountsCommitsThatCarriedAnEvent(t *testing.T) {
	cfg := hot(sim.Sync, 1)
	cfg.CrashAt = sim.CrashVisits{sim.AfterCommit: {3, 10, 600}}
	r := run(t, cfg)
	requireOK(t, r)
	h := r.History
	require.Len(t, h.Crashes, 3, "every listed commit crashed")
	var carried []string
	for _, c := range h.Crashes {
		assert.Equal(t, sim.AfterCommit, c.Point)
		require.Len(t, c.Carried, 1, "crash %d on a commit that carried an event", c.Seq)
		carried = append(carried, c.Carried...)
	}
	assert.Equal(t, 3, r.Accounting.Lost)
	assert.Equal(t, set(carried), set(h.Undelivered()), "the lost events are the ones the crashes carried")
}

func TestCrashAtRefusesToMixWithRates(t *testing.T) {
	cfg := hot(sim.Sync, 1)
	cfg.CrashAt = sim.CrashVisits{sim.AfterCommit: {3}}
	cfg.Crash.AfterCommit = 0.1
	_, err := sim.Run(t.Context(), cfg)
	require.ErrorIs(t, err, sim.ErrConfig)
	assert.ErrorContains(t, err, "-crash-at")
}
