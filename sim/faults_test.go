package sim_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim"
)

func TestParseCrashVisits(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     sim.CrashVisits
		wantErr  string
	}{
		{name: "none", in: "none"},
		{name: "empty", in: ""},
		{name: "one point", in: "relay-sent=700/800", want: sim.CrashVisits{sim.RelaySent: {700, 800}}},
		{name: "two points", in: "after-commit=3,relay-sent=1", want: sim.CrashVisits{sim.AfterCommit: {3}, sim.RelaySent: {1}}},
		{name: "visit 0", in: "relay-sent=0", wantErr: "counted from 1"},
		{name: "not a number", in: "relay-sent=x", wantErr: "counted from 1"},
		{name: "twice the same visit", in: "relay-sent=5/5", wantErr: "visit 5 listed twice"},
		{name: "twice the same point", in: "relay-sent=5,relay-sent=6", wantErr: "given twice"},
		{name: "unknown point", in: "nowhere=5", wantErr: "unknown crash point"},
		{name: "no visits", in: "relay-sent", wantErr: "want point=n/n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sim.ParseCrashVisits(tc.in)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			if tc.want != nil {
				assert.Equal(t, tc.in, got.String(), "String reads back")
			}
		})
	}
}

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
