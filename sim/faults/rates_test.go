package faults_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim/faults"
)

func TestParseRates(t *testing.T) {
	c, err := faults.ParseRates("after-commit=0.05, relay-sent=1")
	require.NoError(t, err)
	assert.Equal(t, faults.Rates{AfterCommit: 0.05, RelaySent: 1}, c)
	assert.Equal(t, "after-commit=0.05,relay-sent=1", c.String())
	assert.True(t, c.Any())
	assert.Equal(t, 0.05, c.At(faults.AfterCommit))
	for _, none := range []string{"", "none"} {
		c, err = faults.ParseRates(none)
		require.NoError(t, err)
		assert.False(t, c.Any())
		assert.Equal(t, "none", c.String())
	}
	for _, bad := range []string{"after-commit", "after-lunch=0.1", "after-commit=2", "after-commit=x", "relay-sent=-0.1"} {
		_, err := faults.ParseRates(bad)
		assert.Error(t, err, bad)
	}
}

func TestPointNames(t *testing.T) {
	for _, p := range faults.Points() {
		got, err := faults.ParsePoint(p.String())
		require.NoError(t, err)
		assert.Equal(t, p, got)
		text, err := p.MarshalText()
		require.NoError(t, err)
		assert.Equal(t, p.String(), string(text))
	}
	assert.Equal(t, "point(9)", faults.Point(9).String())
	_, err := faults.ParsePoint("after-lunch")
	assert.ErrorContains(t, err, `unknown crash point "after-lunch"`)
}

// crashes lists, for each of n visits of actor to p, whether plan crashed there.
func crashes(plan faults.Plan, p faults.Point, actor string, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = plan.Crash(p, actor)
	}
	return out
}

// The seeded plan replays: the same seed gives the same decisions for each actor's sequence of
// visits, whatever the other actors do in between; a rate of 0 never crashes, 1 always does, and
// a rate in between crashes about as often as it says.
func TestSeededPlanReplaysPerActor(t *testing.T) {
	rates := faults.Rates{AfterCommit: 0.3, RelaySent: 1}
	alone := crashes(faults.NewSeeded(7, rates), faults.AfterCommit, "w0", 1000)

	mixed := faults.NewSeeded(7, rates)
	var w0 []bool
	for range 1000 {
		mixed.Crash(faults.AfterCommit, "w1") // another worker's visits in between
		w0 = append(w0, mixed.Crash(faults.AfterCommit, "w0"))
	}
	assert.Equal(t, alone, w0, "w0's decisions depend on its own visits only")
	assert.NotEqual(t, alone, crashes(faults.NewSeeded(8, rates), faults.AfterCommit, "w0", 1000), "another seed, other decisions")

	n := 0
	for _, c := range alone {
		if c {
			n++
		}
	}
	assert.InDelta(t, 300, n, 60, "a rate of 0.3 over 1000 visits")
	assert.NotContains(t, crashes(faults.NewSeeded(7, rates), faults.BeforeCommit, "w0", 100), true, "rate 0 never crashes")
	assert.NotContains(t, crashes(faults.NewSeeded(7, rates), faults.RelaySent, "r0", 100), false, "rate 1 always crashes")
}

func TestPlanFuncIsAPlan(t *testing.T) {
	var asked []string
	var plan faults.Plan = faults.PlanFunc(func(p faults.Point, actor string) bool {
		asked = append(asked, fmt.Sprint(p, " ", actor))
		return p == faults.RelaySent
	})
	assert.False(t, plan.Crash(faults.AfterCommit, "w0"))
	assert.True(t, plan.Crash(faults.RelaySent, "r1@2"))
	assert.Equal(t, []string{"after-commit w0", "relay-sent r1@2"}, asked)
}
