package embedded_test

import (
	"os"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stockbus/stockbus/nats/embedded"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// connect checks that a client can reach the server and talk to JetStream.
func connect(t *testing.T, url string) error {
	t.Helper()
	nc, err := natsgo.Connect(url, natsgo.NoReconnect(), natsgo.Timeout(10*time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	_, err = nc.Request("$JS.API.INFO", nil, 10*time.Second)
	return err
}

func TestATemporaryStoreIsRemovedByClose(t *testing.T) {
	srv, err := embedded.Start("")
	require.NoError(t, err)
	dir := srv.StoreDir()
	require.DirExists(t, dir)
	require.NoError(t, connect(t, srv.URL()), "JetStream answers")
	require.NoError(t, srv.Close())
	assert.NoDirExists(t, dir, "temporary store removed")
	assert.NoError(t, srv.Close(), "Close twice")
	assert.ErrorIs(t, srv.Restart(), embedded.ErrClosed)
}

func TestAGivenStoreIsKept(t *testing.T) {
	dir := t.TempDir()
	srv, err := embedded.Start(dir)
	require.NoError(t, err)
	require.NoError(t, srv.Close())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.NotEmpty(t, entries, "the server's JetStream files stay in the caller's directory")
}

func TestStopAndRestartKeepTheURL(t *testing.T) {
	srv, err := embedded.Start(t.TempDir())
	require.NoError(t, err)
	defer func() { assert.NoError(t, srv.Close()) }()
	url := srv.URL()
	srv.Stop()
	srv.Stop() // idempotent
	assert.Error(t, connect(t, url), "a stopped server refuses connections")
	require.NoError(t, srv.Restart())
	assert.Equal(t, url, srv.URL())
	assert.NoError(t, connect(t, url), "the restarted server answers on the same URL")
	require.NoError(t, srv.Restart(), "restart of a running server")
	assert.NoError(t, connect(t, url))
}
