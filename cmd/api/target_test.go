package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim/httpload"
	"github.com/stockbus/stockbus/sim/load"
	"github.com/stockbus/stockbus/sim/workload"
)

// The simulator's HTTP driver against the command itself, under both models and both strategies:
// every order is answered and counted once, the server counted the same requests, and the fake
// mailer's count at exit is the out-of-stock answers.
func TestRunUnderTheSimulatorsHTTPDriver(t *testing.T) {
	const orders = 200
	for _, tc := range []struct {
		name    string
		args    []string
		model   func(c *httpload.Config)
		relayed bool
	}{
		{"sync, closed", nil, func(c *httpload.Config) { c.Closed = &load.Closed{Workers: 3, Orders: orders, WarmupOrders: 10} }, false},
		{"outbox, open", []string{"-strategy", "outbox"}, func(c *httpload.Config) {
			c.Open = &load.Open{Workers: 3, Backlog: orders, Orders: orders, Rate: 4000, WarmupOrders: 10}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, tc.args...)
			plan, err := workload.NewPlan(workload.Spec{Seed: 5, SKUs: 2, BatchesPerSKU: 2, WarehouseShare: 1,
				BatchQty: workload.Range{Min: 10, Max: 20}, OrderQty: workload.Range{Min: 1, Max: 2}, Demand: 2, DemandBasis: orders})
			require.NoError(t, err)
			cfg := httpload.Config{Targets: []string{s.url}, Plan: plan}
			tc.model(&cfg)
			rep, err := httpload.Run(t.Context(), cfg)
			require.NoError(t, err)
			assert.EqualValues(t, orders, rep.Orders.Total())
			assert.EqualValues(t, orders, rep.Orders.Allocated+rep.Orders.OutOfStock, "%+v", rep.Orders)
			require.NotNil(t, rep.Server, rep.StatsError)
			assert.EqualValues(t, orders, rep.Server.Requests.Count, "the server's requests, the seeding taken off")
			if !tc.relayed {
				assert.Zero(t, rep.Server.Relayed.Count)
			}
			// Let the relays mail the rest before the drain: their rows would wait for the next
			// life otherwise.
			want := fmt.Sprintf("msg=\"fake mailer\" mails=%d", rep.Orders.OutOfStock)
			deadline := time.Now().Add(10 * time.Second)
			for tc.relayed && time.Now().Before(deadline) {
				st, err := s.client.Stats(t.Context())
				require.NoError(t, err)
				if st.Relayed.Count >= rep.Orders.OutOfStock+rep.Orders.Allocated && rep.Orders.OutOfStock > 0 {
					break
				}
				time.Sleep(5 * time.Millisecond) // polling for a state, not timing anything
			}
			require.NoError(t, s.stop())
			assert.Contains(t, s.stderr.String(), want, "one mail per out-of-stock answer")
		})
	}
}
