package fleet_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/internal/fleet"
)

// An instance that exits before it listens is an error that carries its log; one that listens
// serves on the same URL across a kill and a restart, and a stop drains it cleanly.
func TestInstanceLives(t *testing.T) {
	bin, err := fleet.Build(t.Context(), t.TempDir())
	require.NoError(t, err)

	_, err = fleet.Start(t.Context(), bin, "bad", "-strategy", "saga")
	require.ErrorIs(t, err, fleet.ErrNotListening)
	assert.ErrorContains(t, err, `-strategy "saga"`, "the instance's own message")

	in, err := fleet.Start(t.Context(), bin, "a")
	require.NoError(t, err)
	defer in.Close()
	c, err := httpapi.NewClient(in.URL())
	require.NoError(t, err)
	defer c.CloseIdleConnections()
	require.NoError(t, c.AddBatch(t.Context(), "b1", "LAMP", 1, noETA))
	url := in.URL()

	require.NoError(t, in.Kill())
	require.Error(t, in.Stop(), "a stop of a killed life reports its exit")
	require.NoError(t, in.Restart(t.Context()))
	assert.Equal(t, url, in.URL(), "the URL of the second life")
	assert.Equal(t, 2, in.Lives())
	// The memory store died with the first life: the batch is gone.
	_, err = c.Allocate(t.Context(), "o1", "LAMP", 1)
	require.Error(t, err)
	assert.NotErrorIs(t, err, fleet.ErrNotListening)
	assert.ErrorContains(t, err, "Invalid sku LAMP")
	require.NoError(t, in.Stop(), "a drained stop")
	assert.Contains(t, in.Logs(), "--- life 2")
	assert.Contains(t, in.Logs(), "msg=drained")
}

// noETA is a batch in the warehouse.
var noETA time.Time
