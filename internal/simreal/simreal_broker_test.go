package simreal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/internal/simcli"
	"github.com/stockbus/stockbus/internal/simreal"
	"github.com/stockbus/stockbus/nats/embedded"
	"github.com/stockbus/stockbus/sim"
)

// jsonRun is the part of a run's JSON report these tests read.
type jsonRun struct {
	Config struct {
		Strategy string `json:"strategy"`
		Broker   string `json:"broker"`
	} `json:"config"`
	Faults struct {
		Crashes struct {
			RelaySent int `json:"relay_sent"`
		} `json:"crashes"`
	} `json:"faults"`
	Accounting struct {
		Committed           int `json:"committed"`
		Lost                int `json:"lost"`
		DuplicatedPublished int `json:"duplicated_published"`
	} `json:"accounting"`
	Broker *sim.BrokerReport `json:"broker"`
	OK     bool              `json:"ok"`
}

// The done-when: `-broker nats -compare sync,outbox` runs, and after relay crashes the
// broker's de-duplication is at work: every row the restarted relay published again is a dedup
// hit of the broker, and the stream holds each Allocated once, so at-most-once publication holds.
func TestBrokerNATSCompareSyncOutboxDeduplicatesRelayResends(t *testing.T) {
	var out, errOut bytes.Buffer
	args := []string{"-workload", "hot-sku", "-mailer-latency", "0", "-broker", "nats", "-compare", "sync,outbox",
		"-crash-at", "relay-sent=100/200/300", "-require", "no-duplicate-publish", "-format", "json"}
	code := simcli.Run(context.Background(), simreal.Adapters(), args, &out, &errOut, false)
	require.Equal(t, 0, code, "simulate %v: stderr %s", args, errOut.String())
	var got struct{ Runs []jsonRun }
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	require.Len(t, got.Runs, 2)
	for _, r := range got.Runs {
		t.Run(r.Config.Strategy, func(t *testing.T) {
			b := r.Broker
			require.NotNil(t, b, "a run on NATS has a broker report")
			assert.Equal(t, "nats", r.Config.Broker)
			assert.True(t, r.OK, "every invariant held, at-most-once publication among them")
			assert.Equal(t, 500, b.Held, "the stream holds the 500 Allocated")
			assert.Zero(t, b.Duplicated, "0 stored twice")
			assert.Zero(t, b.Lost, "every acknowledged publication is in the stream")
			assert.Zero(t, r.Accounting.DuplicatedPublished)
			assert.Zero(t, r.Accounting.Lost)
			assert.Positive(t, b.Publish.Count)
			assert.Positive(t, b.Publish.P99, "publish latency measured")
			switch r.Config.Strategy {
			case sim.Sync:
				assert.Zero(t, b.Resent, "sync publishes each event once")
				assert.Zero(t, b.DedupHits)
			case sim.Outbox:
				assert.Equal(t, 3, r.Faults.Crashes.RelaySent, "every relay crash of the plan fired")
				require.Positive(t, b.Resent, "the restarted relay published rows again")
				assert.Equal(t, int64(b.Resent), b.DedupHits, "the broker dropped every re-sent row: dedup hits == rows re-sent")
			}
		})
	}
}

// The same run on the fakes, whose broker keeps whatever it is given: the re-sent rows are stored
// twice and the outbox breaks at-most-once publication. This is what the test above would see
// without the broker's de-duplication.
func TestWithoutTheBrokersDedupTheRelayResendsAreStoredTwice(t *testing.T) {
	var out, errOut bytes.Buffer
	args := []string{"-workload", "hot-sku", "-mailer-latency", "0", "-strategy", "outbox",
		"-crash-at", "relay-sent=100/200/300", "-require", "no-duplicate-publish", "-format", "json"}
	code := simcli.Run(context.Background(), simcli.Adapters{}, args, &out, &errOut, false)
	require.Equal(t, 1, code, "an invariant broke: stderr %s", errOut.String())
	assert.Contains(t, errOut.String(), sim.InvNoDuplicatePublish)
	var got struct{ Runs []jsonRun }
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	require.Len(t, got.Runs, 1)
	assert.Nil(t, got.Runs[0].Broker, "the fake broker without drops: no broker report")
	assert.Positive(t, got.Runs[0].Accounting.DuplicatedPublished, "re-sent rows stored twice")
}

// Connection drops, counted, on the embedded server: the publication each one hits fails; sync
// loses its event, sync-retry and the outbox publish it again once the connection is back, and the
// broker de-duplicates a publication whose acknowledgement the drop lost. One worker, so that no
// other goroutine publishes while a drop's reconnect takes however long it takes on this machine
// (a second worker's retries could run out during it, and the counts would depend on speed).
func TestBrokerNATSDrops(t *testing.T) {
	open, err := simreal.NATS("")
	require.NoError(t, err)
	for _, tc := range []struct {
		strategy string
		lost     bool
	}{
		{sim.Sync, true},
		{sim.SyncRetry, false},
		{sim.Outbox, false},
	} {
		t.Run(tc.strategy, func(t *testing.T) {
			c := sim.Default()
			c.Orders, c.WarmupOrders, c.Workers, c.SKUs = 300, 10, 1, 3
			c.Handlers = 1 // and one outbox send in flight, for the same reason
			c.Mailer, c.Strategy = sim.FixedLatency(0), tc.strategy
			c.Broker, c.OpenBroker, c.BrokerDrops = "nats", open, []int{10, 50, 90}
			rep, err := sim.Run(context.Background(), c)
			require.NoError(t, err)
			requireInvariants(t, rep)
			b := rep.Broker
			require.NotNil(t, b)
			assert.Equal(t, 3, b.Drops, "every drop fired")
			assert.Equal(t, int64(3), b.Errors, "exactly the publications the drops hit failed")
			assert.Zero(t, b.Lost)
			assert.Zero(t, b.Duplicated)
			if tc.lost {
				assert.Equal(t, 3, rep.Accounting.Lost, "sync loses the events of the failed publications")
			} else {
				assert.Zero(t, rep.Accounting.Lost)
				assert.Equal(t, rep.Accounting.Kind(sim.KindAllocated).Committed, b.Held, "each Allocated held once")
			}
		})
	}
}

// On an external server each run makes a stream of its own and deletes it afterwards.
func TestBrokerNATSURL(t *testing.T) {
	srv, err := embedded.Start(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, srv.Close()) })
	open, err := simreal.NATS(srv.URL())
	require.NoError(t, err)
	c := small("fakes", simcli.Store{})
	c.Broker, c.OpenBroker = srv.URL(), open
	rep, err := sim.Run(context.Background(), c)
	require.NoError(t, err)
	requireInvariants(t, rep)
	require.NotNil(t, rep.Broker)
	assert.Equal(t, rep.Accounting.Kind(sim.KindAllocated).Committed, rep.Broker.Held)

	nc, err := natsgo.Connect(srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	names := js.StreamNames(context.Background())
	var left []string
	for n := range names.Name() {
		left = append(left, n)
	}
	require.NoError(t, names.Err())
	assert.Empty(t, left, "the runs' streams are deleted")
}

func TestBrokerFlags(t *testing.T) {
	tests := []struct {
		name string
		ad   simcli.Adapters
		args []string
		code int
		out  string
	}{
		{"embedded nats", simreal.Adapters(), []string{"-broker", "nats", "-strategy", "async"}, 0, "broker nats"},
		{"unknown broker", simreal.Adapters(), []string{"-broker", "kafka://x"}, 2, "unknown broker"},
		{"bad nats URL", simreal.Adapters(), []string{"-broker", "nats://"}, 2, "bad nats URL"},
		{"bad drops", simreal.Adapters(), []string{"-broker-drops", "0"}, 2, "counted from 1"},
		{"nats on the fakes-only command", simcli.Adapters{}, []string{"-broker", "nats"}, 2, "go run ./cmd/simulate-real -broker nats"},
		{"nats beside sqlite", simreal.Adapters(), []string{"-broker", "nats", "-store", "sqlite", "-strategy", "outbox"}, 0, "store sqlite, broker nats"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"-orders", "100", "-warmup", "10", "-workers", "2", "-mailer-latency", "0"}, tt.args...)
			code := simcli.Run(context.Background(), tt.ad, args, &out, &errOut, false)
			assert.Equal(t, tt.code, code, "stderr: %s", errOut.String())
			assert.Contains(t, out.String()+errOut.String(), tt.out)
		})
	}
}
