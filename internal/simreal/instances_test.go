package simreal_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/internal/simcli"
	"github.com/stockbus/stockbus/internal/simreal"
)

// smallHotSKU is a small workload on one hot sku: 300 orders of 1 for a batch of 100, so that
// the stock is gone long before the kill after 200 orders and every request in flight then has
// an out-of-stock mail to send.
var smallHotSKU = []string{"-workload", "hot-sku", "-batch-qty", "100..100", "-orders", "300", "-warmup", "20", "-workers", "8", "-relays", "2", "-format", "json"}

// -instances 2 under sync and under the outbox, each on a new database with two cmd/api
// processes, one NATS server and one SMTP sink: the accounting across both instances is exact.
// For every event type with a receiver, committed = delivered + lost; nothing delivered was not
// committed; no lost event is of an answered order. Without a kill nothing is lost. With
// -kill-after, one instance is killed with SIGKILL while the sink holds the mails (under sync:
// after the commits of the requests in flight, before their mails); under sync the lost are
// exactly the committed events of the requests of unknown outcome to the killed life, and there
// is one at least; under the outbox nothing is lost after the drain and no row is pending. At the
// end no cmd/api process is left (nor a goroutine: TestMain).
func TestInstancesAccountAcrossProcesses(t *testing.T) {
	server := postgresURL(t)
	for _, tc := range []struct {
		name string
		args []string
		kill bool
	}{
		{"no kill", nil, false},
		{"a kill", []string{"-kill-after", "200", "-seed", "7"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-instances", "2", "-store", server, "-compare", "sync,outbox"}, smallHotSKU...)
			var out, errOut bytes.Buffer
			code := simcli.Run(t.Context(), simreal.Adapters(), append(args, tc.args...), &out, &errOut, false)
			require.Equal(t, 0, code, "stderr: %s", errOut.String())
			var rep struct {
				Runs []simcli.InstancesReport `json:"runs"`
			}
			require.NoError(t, json.Unmarshal(out.Bytes(), &rep), "%s", out.String())
			require.Len(t, rep.Runs, 2)
			for _, r := range rep.Runs {
				t.Logf("%s: %+v; killed %q after %d with %d in flight, %d held; unknown %d (%d committed, %d of the killed life)",
					r.Strategy, r.Events, r.Killed, r.KilledAfter, r.InFlightAtKill, r.HeldAtKill, r.Unknown, r.UnknownCommitted, r.KilledLifeCommitted)
				assert.Len(t, r.Instances, 2)
				assert.Empty(t, r.Phantoms, "%s: delivered events never committed", r.Strategy)
				assert.Zero(t, r.LogRepeats)
				assert.Zero(t, r.LostAnswered, "%s: lost events of answered orders", r.Strategy)
				require.Len(t, r.Load.PerTarget, 2)
				assert.EqualValues(t, 150, r.Load.PerTarget[0].Total(), "orders to the first instance")
				assert.EqualValues(t, 300, r.Load.Sent)

				byType := map[string]simcli.EventTally{}
				lost := 0
				for _, e := range r.Events {
					byType[e.Type] = e
					assert.Equal(t, e.Committed, e.Delivered+e.Lost, "%s %s: committed = delivered + lost", r.Strategy, e.Type)
					lost += e.Lost
				}
				assert.Equal(t, 100, byType["Allocated"].Committed, "%s: the batch of 100 allocated once", r.Strategy)
				answered := r.Load.Orders.Allocated + r.Load.Orders.OutOfStock
				assert.EqualValues(t, byType["Allocated"].Committed+byType["OutOfStock"].Committed, int(answered)+r.UnknownCommitted,
					"%s: committed events against answered orders and unknown ones the log holds", r.Strategy)

				// The servers' side, merged across processes: every answered order was counted
				// by the life that answered it; the seeding is left out of Load.Server (its
				// baseline) but not of the killed life's stats when that was the first target.
				require.NotNil(t, r.Load.Server, r.Load.StatsError)
				served := r.Load.Server.Requests.Count
				want := answered
				if tc.kill {
					require.NotNil(t, r.KilledLife, "the killed life's stats")
					served += r.KilledLife.Requests.Count
					if r.Killed == r.Instances[0] {
						want += int64(r.Load.Batches)
					}
					require.Len(t, r.Load.Server.Restarted, 1, "the restarted instance")
					assert.True(t, strings.HasPrefix(r.Load.Server.Restarted[0], r.Killed+"-"), "restarted %v, killed %s", r.Load.Server.Restarted, r.Killed)
				}
				assert.Equal(t, want, served, "%s: requests the servers' histograms hold", r.Strategy)

				switch {
				case !tc.kill:
					assert.Empty(t, r.Killed)
					assert.Zero(t, r.Unknown)
					assert.Zero(t, lost, "%s: lost without a kill", r.Strategy)
				case r.Strategy == "sync":
					assert.NotEmpty(t, r.Killed)
					assert.GreaterOrEqual(t, r.KilledAfter, 200, "orders sent before the kill")
					require.Positive(t, r.InFlightAtKill, "requests in flight to the killed instance")
					assert.Equal(t, r.KilledLifeCommitted, lost, "lost = committed events of unknown outcome to the killed life")
					assert.Equal(t, r.InFlightAtKill, lost, "lost = requests in flight to the killed life, each held in its mail")
					assert.Equal(t, r.InFlightAtKill, r.Unknown)
				case r.Strategy == "outbox":
					assert.NotEmpty(t, r.Killed)
					assert.Zero(t, lost, "lost under the outbox after the drain")
					assert.Zero(t, r.Pending)
					assert.Equal(t, "drained: no pending row", r.Drain)
				}
			}
			assert.Empty(t, children(t), "processes left behind")
		})
	}
}

// children lists this process's child processes (any state, zombies too).
func children(t *testing.T) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	require.NoError(t, err)
	me := strconv.Itoa(os.Getpid())
	var kids []string
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after its closing paren.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		if fields := strings.Fields(s[i+1:]); len(fields) > 1 && fields[1] == me {
			kids = append(kids, s[:i+1])
		}
	}
	return kids
}
