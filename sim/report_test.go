package sim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim"
)

func TestModelArithmetic(t *testing.T) {
	// 4 workers, 10µs outside dispatch, a fifth of requests mail, 5ms each: 4 / 1.01ms.
	m := sim.NewModel(4, 10*time.Microsecond, 0.2, 5*time.Millisecond, 3900, 0.99)
	assert.InDelta(t, 3960.396, m.Predicted, 0.001)
	assert.InDelta(t, 3900/3960.396, m.Ratio, 1e-6)
	assert.True(t, m.Within10)
	assert.Equal(t, "within 10%", m.Note)

	slow := sim.NewModel(4, 10*time.Microsecond, 0.2, 5*time.Millisecond, 2000, 0.5)
	assert.False(t, slow.Within10)
	assert.Contains(t, slow.Note, "50%", "a miss explained by idle workers names their busy share")

	over := sim.NewModel(4, 10*time.Microsecond, 0.2, 5*time.Millisecond, 2000, 0.99)
	assert.False(t, over.Within10)
	assert.Contains(t, over.Note, "dispatch cost more")

	noMail := sim.NewModel(2, 4*time.Microsecond, 0, 5*time.Millisecond, 500_000, 1)
	assert.InDelta(t, 500_000, noMail.Predicted, 1e-6, "r = 0: N / t0")
	assert.True(t, noMail.Within10)

	nothing := sim.NewModel(2, 0, 0, 0, 0, 0)
	assert.Zero(t, nothing.Predicted)
	assert.False(t, nothing.Within10)
}

func TestLittleArithmetic(t *testing.T) {
	l := sim.NewLittle(4000, time.Millisecond, 3.9, 4)
	assert.InDelta(t, 4.0, l.Product, 1e-9, "4000/s × 1ms = 4 in the system")
	assert.InDelta(t, 4.0/3.9, l.Ratio, 1e-9)
	assert.Equal(t, 4, l.Workers)
	require.Zero(t, sim.NewLittle(4000, time.Millisecond, 0, 4).Ratio, "no samples, no ratio")
}
