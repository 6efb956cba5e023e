package httpload

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/stockbus/stockbus/sim/hist"
	"github.com/stockbus/stockbus/sim/load"
)

// Counts are answers by outcome. Their sum is every order sent.
type Counts struct {
	Allocated  int64 `json:"allocated"`    // 201 with a batch reference
	OutOfStock int64 `json:"out_of_stock"` // 400 "Out of stock for sku ..."
	Invalid    int64 `json:"invalid"`      // any other 400: an invalid sku, quantity or id
	Failed     int64 `json:"failed"`       // any other status (409, 5xx)
	Unknown    int64 `json:"unknown"`      // no answer: a transport error or a timeout
}

func countsOf(o load.Outcomes) Counts {
	return Counts{Allocated: o.Get(load.Allocated), OutOfStock: o.Get(load.OutOfStock), Invalid: o.Get(load.Invalid),
		Failed: o.Get(load.Failed), Unknown: o.Get(load.Unknown)}
}

// Total is the number of orders counted.
func (c Counts) Total() int64 { return c.Allocated + c.OutOfStock + c.Invalid + c.Failed + c.Unknown }

// TargetCounts are one target's answers.
type TargetCounts struct {
	Target string `json:"target"`
	Counts
}

// Report is what a run against HTTP targets measured. Durations are integer nanoseconds in JSON.
type Report struct {
	Targets  []string `json:"targets"`
	Spread   string   `json:"spread"` // how orders were spread over the targets
	Model    string   `json:"model"`  // "closed" or "open"
	Workers  int      `json:"workers"`
	Rate     float64  `json:"rate,omitempty"` // open model: orders a second offered
	Batches  int      `json:"batches"`        // batches seeded through the first target
	Sent     int64    `json:"sent"`           // orders sent: every one is in Orders
	Dropped  int64    `json:"dropped"`        // open model: arrivals the full backlog turned away, never sent
	Warnings int64    `json:"warnings"`       // answers with a warning: committed, but handling its events failed
	Orders   Counts   `json:"orders"`
	// Measured are the orders in the measured window (after the warm-up): the latency sample.
	Measured   Counts         `json:"measured"`
	PerTarget  []TargetCounts `json:"per_target"`
	Window     time.Duration  `json:"window_ns"`  // the measured window
	Throughput float64        `json:"throughput"` // measured orders answered a second in the window
	// Latency counts from each order's intended start (load.Arrival.Due): a slow server's
	// queueing shows (no coordinated omission).
	Latency hist.Dist `json:"latency"`
	// Service counts from when a worker picked the order up to its answer.
	Service    hist.Dist     `json:"service"`
	Elapsed    time.Duration `json:"elapsed_ns"` // from the first order to the last answer
	Server     *Server       `json:"server,omitempty"`
	StatsError string        `json:"stats_error,omitempty"`
}

func newReport(cfg Config, run *load.Run, t load.Tally, dropped int64, d *driver) *Report {
	r := &Report{Targets: cfg.Targets, Workers: cfg.workers(), Batches: len(cfg.Plan.Batches), Dropped: dropped,
		Orders: countsOf(t.Outcomes), Measured: countsOf(t.Measured), Sent: t.Outcomes.Total(),
		Latency: t.Latency.Dist(), Service: t.Service.Dist(), Elapsed: t.LastEnd, Warnings: d.warnings.Load(),
		Spread: fmt.Sprintf("order k of the stream to target (k-1) mod %d", len(cfg.Targets))}
	if len(cfg.Targets) == 1 {
		r.Spread = "one target"
	}
	ws, we := run.Window.Start.Load(), run.Window.End.Load()
	r.Model = "closed"
	if cfg.Open != nil {
		r.Model, r.Rate, we = "open", cfg.Open.Rate, -1
	}
	if we < 0 {
		we = int64(t.LastEnd)
	}
	if ws >= 0 && we > ws {
		r.Window = time.Duration(we - ws)
	}
	r.Throughput = hist.Rate(t.Measured.Total(), r.Window)
	for i, target := range cfg.Targets {
		var o load.Outcomes
		for k := range o {
			o[k] = d.perTarget[i][k].Load()
		}
		r.PerTarget = append(r.PerTarget, TargetCounts{Target: target, Counts: countsOf(o)})
	}
	return r
}

// WriteText writes the report as text, one line a figure.
func WriteText(w io.Writer, r *Report, header string) error {
	var b strings.Builder
	if header != "" {
		fmt.Fprintln(&b, header)
	}
	model := fmt.Sprintf("%s, %d workers", r.Model, r.Workers)
	if r.Model == "open" {
		model += fmt.Sprintf(", %.0f orders/s offered", r.Rate)
	}
	fmt.Fprintf(&b, "  targets     %s (%s)\n", strings.Join(r.Targets, ", "), r.Spread)
	fmt.Fprintf(&b, "  load        %s; %d batches seeded through %s\n\n", model, r.Batches, r.Targets[0])
	fmt.Fprintf(&b, "  orders      sent %d  %s  dropped %d  warnings %d\n", r.Sent, countsText(r.Orders), r.Dropped, r.Warnings)
	if len(r.PerTarget) > 1 {
		for _, t := range r.PerTarget {
			fmt.Fprintf(&b, "  target      %s: sent %d  %s\n", t.Target, t.Total(), countsText(t.Counts))
		}
	}
	fmt.Fprintf(&b, "  measured    %d orders (%s)\n\n", r.Measured.Total(), countsText(r.Measured))
	fmt.Fprintf(&b, "  throughput  %.0f orders/s in a %v window\n", r.Throughput, r.Window.Round(time.Millisecond))
	fmt.Fprintf(&b, "  latency     %s  (from each order's intended start)\n", distText(r.Latency))
	fmt.Fprintf(&b, "  service     %s  (from when a worker took it)\n", distText(r.Service))
	switch {
	case r.Server != nil:
		s := r.Server
		fmt.Fprintf(&b, "\n  server      %d instance(s) merged: %s\n", len(s.Instances), strings.Join(s.Instances, ", "))
		fmt.Fprintf(&b, "  requests    %s\n", distText(s.Requests))
		fmt.Fprintf(&b, "  dispatch    %s  (%.1f%% of request time)\n", distText(s.Dispatch), 100*s.DispatchShare)
		fmt.Fprintf(&b, "  relayed     %s  (handler calls outside requests)\n", distText(s.Relayed))
		if len(s.Restarted) > 0 {
			fmt.Fprintf(&b, "  restarted   %s (their figures are since the restart)\n", strings.Join(s.Restarted, ", "))
		}
	case r.StatsError != "":
		fmt.Fprintf(&b, "\n  server      %s\n", r.StatsError)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func countsText(c Counts) string {
	return fmt.Sprintf("allocated %d  out of stock %d  invalid %d  failed %d  unknown %d", c.Allocated, c.OutOfStock, c.Invalid, c.Failed, c.Unknown)
}

func distText(d hist.Dist) string {
	if d.Count == 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %v  p99 %v  p99.9 %v  max %v  (mean %v, n=%d)", short(d.P50), short(d.P99), short(d.P999), short(d.Max), short(d.Mean), d.Count)
}

// short rounds d to 3 significant digits, as HdrHistogram tells values apart.
func short(d time.Duration) time.Duration {
	unit := time.Duration(1)
	for v := d; v >= 1000; v /= 10 {
		unit *= 10
	}
	return d.Round(unit)
}
