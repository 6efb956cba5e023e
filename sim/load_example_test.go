package sim_test

import (
	"context"
	"fmt"

	"github.com/stockbus/stockbus/sim"
)

// Every load model sends the same plan: it decides only when each order goes and which worker
// serves it. On the figures' workload (one batch of 500, 1000 orders of 1) each model must send
// every order, allocate exactly the first 500 units and keep every invariant; a new model is one
// more row here.
func ExampleRun_loadModels() {
	for _, model := range []func(*sim.Config){
		func(c *sim.Config) { c.Model = sim.Closed },
		func(c *sim.Config) { c.Model, c.Rate, c.Backlog = sim.Open, 20_000, 1000 },
		func(c *sim.Config) { c.Model, c.Rate, c.Backlog, c.Arrivals = sim.Open, 20_000, 1000, sim.Poisson },
	} {
		cfg := sim.HotSKU()
		cfg.Mailer = sim.FixedLatency(0)
		model(&cfg)
		r, err := sim.Run(context.Background(), cfg)
		if err != nil {
			fmt.Println(err)
			continue
		}
		name := cfg.Model
		if cfg.Model == sim.Open {
			name += " " + cfg.Arrivals
		}
		fmt.Printf("%s: sent %d, dropped %d, allocated %d, out of stock %d, ok %t\n",
			name, r.Counts.Sent, r.Counts.Dropped, r.Counts.Allocated, r.Counts.OutOfStock, r.OK)
	}
	// Output:
	// closed: sent 1000, dropped 0, allocated 500, out of stock 500, ok true
	// open steady: sent 1000, dropped 0, allocated 500, out of stock 500, ok true
	// open poisson: sent 1000, dropped 0, allocated 500, out of stock 500, ok true
}
