package fleet_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/internal/fleet"
)

// The done-when test: 2 API processes on one Postgres database, one NATS server and one
// SMTP sink; 1,000 orders of one unit of one sku for a batch of 500, spread over both over HTTP;
// one instance killed with SIGKILL at a seeded request count and restarted. The kill is planned
// (see fleet.Run) to land while mails are held at the sink: under sync with requests of the
// victim committed and waiting on their mails, under the outbox with every relay between the
// sink's taking a row's mail and its reply.
//
// Requests in flight at the kill (and any sent to the victim while it restarts) get a transport
// error: the client cannot know whether they committed. The test does not send them again; the
// event log, written in each commit's transaction, decides what committed, and the accounting
// compares it with the sink and the stream:
//
//   - under the outbox, after the drain (no pending row, relays in both instances), nothing is lost;
//   - under sync, the lost are exactly the committed events that have no mail (OutOfStock) or no
//     message in the stream (Allocated), and every one of them is an event of a request of unknown
//     outcome sent to the killed life: an answered request was delivered before its answer.
//
// Under both, every delivery is of a committed event, every answer agrees with the log, and the
// 500 units are allocated exactly once each.
func TestTwoInstancesOneKilled(t *testing.T) {
	bin, err := fleet.Build(t.Context(), t.TempDir())
	require.NoError(t, err)
	for _, strategy := range []string{"sync", "outbox"} {
		t.Run(strategy, func(t *testing.T) {
			cfg := fleet.Config{
				Binary: bin, Database: fleet.Database(t), Strategy: strategy,
				Instances: 2, Orders: 1000, Stock: 500, Workers: 8, Seed: 16,
				Relays: 2, Lease: 3 * time.Second, MailTimeout: time.Second, DrainBound: 2 * time.Minute,
			}
			rep, err := fleet.Run(t.Context(), cfg)
			require.NoError(t, err)
			t.Log("\n" + rep.String())

			assert.Empty(t, rep.Phantoms, "delivered events that never committed")
			assert.Empty(t, rep.Mismatches, "answers the event log contradicts")
			assert.Zero(t, rep.LogRepeats, "event IDs logged twice")
			assert.Equal(t, cfg.Stock, rep.Committed["Allocated"], "Allocated events in the log")
			assert.Equal(t, cfg.Stock, rep.Allocations, "allocation rows")
			o := rep.Outcomes()
			assert.Equal(t, cfg.Orders, o[fleet.Allocated]+o[fleet.OutOfStock]+o[fleet.Warned]+o[fleet.Failed]+o[fleet.Unknown], "requests")
			assert.Equal(t, rep.Committed["Allocated"]+rep.Committed["OutOfStock"],
				o[fleet.Allocated]+o[fleet.OutOfStock]+o[fleet.Warned]+rep.UnknownCommitted, "committed events against answered and unknown requests")
			for typ, n := range rep.Committed {
				lost := 0
				for _, e := range rep.Lost {
					if e.Type == typ {
						lost++
					}
				}
				assert.Equal(t, n, rep.Delivered[typ]+lost, "%s: committed = delivered + lost", typ)
			}

			// The servers' side: every life's histograms merged (the killed one's taken just
			// before the kill). Each answered request was counted by the life that answered
			// it, and so was the batch; a request cut short by the kill was not.
			require.NotNil(t, rep.Server, rep.StatsError)
			assert.Len(t, rep.Server.Instances, cfg.Instances+1, "every instance's life and the killed one")
			answered := o[fleet.Allocated] + o[fleet.OutOfStock] + o[fleet.Warned] + o[fleet.Failed]
			assert.EqualValues(t, answered+1, rep.Server.Requests.Count, "requests the servers answered: the answered orders and the batch")
			assert.EqualValues(t, rep.Server.Requests.Count, rep.Server.Dispatch.Count)

			switch strategy {
			case "outbox":
				assert.Zero(t, rep.Server.Dispatch.Max, "no request ran a handler: the relays did")
				assert.Positive(t, rep.Server.Relayed.Count)
				// The kill caught every relay of both instances after the sink took its row's
				// mail: the victim's died before the mark, the survivors' timed out waiting
				// for the reply. Each row was sent again, and the sink dropped the repeat.
				assert.Equal(t, cfg.Instances*cfg.Relays, rep.HeldAtKill, "mails held at the kill")
				assert.GreaterOrEqual(t, rep.Repeats["OutOfStock"], rep.HeldAtKill, "mails sent again after the kill, dropped by the sink")
				assert.Empty(t, rep.Lost, "events lost under the outbox after the drain")
				assert.Zero(t, rep.Pending, "outbox rows pending")
			case "sync":
				assert.Zero(t, rep.Server.Relayed.Count, "every handler ran in its request")
				assert.Positive(t, rep.Server.DispatchShare)
				// The kill caught every request in flight held in its mail, after its commit.
				require.Positive(t, rep.VictimInFlight, "requests in flight to the killed instance")
				assert.Equal(t, rep.VictimInFlight, len(rep.Lost), "lost events against the requests in flight at the kill")
				assert.Equal(t, rep.VictimInFlight, rep.UnknownCommitted, "committed requests of unknown outcome")
				for _, e := range rep.Lost {
					assert.Equal(t, fleet.Unknown, e.Request.Outcome, "lost event %s of order %s: its request was answered %v", e.ID, e.Request.Order, e.Request.Outcome)
					assert.Equal(t, rep.Killed, e.Request.Instance, "lost event %s: sent to %s, not to the killed instance", e.ID, e.Request.Instance)
					assert.Equal(t, 1, e.Request.Life, "lost event %s: sent to life %d, not the killed one", e.ID, e.Request.Life)
					assert.True(t, strings.HasPrefix(e.ID, "ev-"+rep.Killed+"-"), "lost event %s: not an ID of the killed instance", e.ID)
				}
			}
		})
	}
}
