package sim_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim"
)

func TestSweepParsesAndPlans(t *testing.T) {
	sw, err := sim.ParseSweep("mailer-latency=0, 1ms,5ms")
	require.NoError(t, err)
	assert.Equal(t, sim.Sweep{Param: "mailer-latency", Values: []string{"0", "1ms", "5ms"}}, sw)
	cfgs, err := sw.Plan(tiny(), []string{sim.Sync, sim.Outbox})
	require.NoError(t, err)
	require.Len(t, cfgs, 6)
	assert.Equal(t, sim.Outbox, cfgs[3].Strategy)
	v, ok := sw.Value(cfgs[3])
	assert.True(t, ok)
	assert.Equal(t, "1ms", v)

	for _, bad := range []string{"speed=1,2", "workers", "workers=", "=1"} {
		_, err := sim.ParseSweep(bad)
		require.ErrorIs(t, err, sim.ErrConfig, bad)
		assert.True(t, strings.HasPrefix(err.Error(), "-sweep: "), "%q: %v", bad, err)
	}
	sw, err = sim.ParseSweep("workers=2,0")
	require.NoError(t, err)
	_, err = sw.Plan(tiny(), nil)
	require.ErrorIs(t, err, sim.ErrConfig)
	assert.Contains(t, err.Error(), "-sweep: workers=0: -workers: must be at least 1")
}
