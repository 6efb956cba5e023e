package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes the reports as one JSON object {"runs": [...]}, with the sweep when there is one.
// Field names are stable; see the README for each.
func WriteJSON(w io.Writer, reports []Report, sweep *Sweep) error {
	out := struct {
		Runs  []Report `json:"runs"`
		Sweep *Sweep   `json:"sweep,omitempty"`
	}{reports, sweep}
	if out.Runs == nil {
		out.Runs = []Report{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// WriteBench writes one line per report in the Go benchmark format, so that benchstat compares
// two runs, or two strategies of one run (benchstat -col /strategy). The iteration count is the
// number of measured orders and ns/op their mean latency.
func WriteBench(w io.Writer, reports []Report, sweep *Sweep) error {
	if len(reports) == 0 {
		return nil
	}
	env := reports[0].Env
	fmt.Fprintf(w, "goos: %s\ngoarch: %s\npkg: github.com/stockbus/stockbus/sim\n", env.GOOS, env.GOARCH)
	if cpu := cpuName(); cpu != "" {
		fmt.Fprintf(w, "cpu: %s\n", cpu)
	}
	if env.Commit != "" {
		fmt.Fprintf(w, "commit: %s\n", env.Commit)
	}
	fmt.Fprintf(w, "seed: %d\n", reports[0].Config.Seed)
	for _, r := range reports {
		name := benchName(r, sweep)
		fmt.Fprintf(w, "%s-%d\t%d\t%.0f ns/op\t%.1f orders/s\t%d p50-ns\t%d p99-ns\t%d p999-ns\t%.0f dispatch-ns/op\t%.4f dispatch-share\t%d lag-p99-ns\t%.0f B/order\n",
			name, r.Env.GOMAXPROCS, max(r.Counts.Measured, 1), float64(r.Latency.Mean), r.Throughput.Achieved,
			r.Latency.P50, r.Latency.P99, r.Latency.P999, float64(r.Dispatch.Mean), r.Dispatch.Share,
			r.DeliveryLag.P99, r.Memory.PerOrder)
	}
	return nil
}

func benchName(r Report, sweep *Sweep) string {
	c := r.Config
	parts := []string{"BenchmarkSimulate", "strategy=" + c.Strategy, "model=" + c.Model,
		"workers=" + strconv.Itoa(c.Workers), "mailer=" + benchValue(c.Mailer.Mean.String())}
	if sweep != nil && sweep.Param != "workers" && sweep.Param != "mailer-latency" {
		v, _ := sweep.Value(c)
		parts = append(parts, sweep.Param+"="+benchValue(v))
	}
	return strings.Join(parts, "/")
}

// benchValue keeps a benchmark name free of spaces and of the "-N" suffix benchstat reads as GOMAXPROCS.
func benchValue(s string) string {
	return strings.NewReplacer(" ", "", "-", "_").Replace(s)
}

func cpuName() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// WriteText writes one report for people: a header with every parameter, then aligned figures
// with units.
func WriteText(w io.Writer, r Report) error {
	c := r.Config
	p := &printer{w: w}
	title := fmt.Sprintf("stockbus simulate: %s dispatch, %s model, %d workers", c.Strategy, c.Model, c.Workers)
	title += ", store " + c.StoreName()
	if c.OpenBroker != nil {
		title += ", broker " + c.BrokerName()
	}
	if r.Interrupted {
		title += " (INTERRUPTED: the report covers what ran)"
	}
	p.line(title)
	if r.Failed > 0 {
		p.line("  FAILED: %d orders came back failed (retries exhausted); -require no-failures makes that exit 1", r.Failed)
	}
	p.line("  %s", envLine(r.Env, c.Seed))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{k}, args...)...)
	}
	row("workload", "%s", workloadLine(c))
	row("load", "%s", loadLine(c))
	row("mailer", "%s", c.mailerLine())
	row("dispatch", "%s", strategyLine(c))
	row("faults", "%s", faultsLine(c))
	row("promise", "%s", promiseLine(r))
	row("plan", "%s", r.PlanDigest)
	if r.HistoryDigest != "" {
		row("history", "%s", r.HistoryDigest)
	}
	tw.Flush()

	n := r.Counts
	p.line("")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row("orders", "sent %d\tmeasured %d\tallocated %d\tout of stock %d\trejected %d\tfailed %d\tunknown %d\tdropped %d",
		n.Sent, n.Measured, n.Allocated, n.OutOfStock, n.Rejected, n.Failed, n.Unknown, n.Dropped)
	row("events", "raised %d\tcommitted %d\tdelivered %d\tlost %d\tpending %d\tdiscarded %d\trolled back %d\t",
		n.EventsRaised, n.EventsCommitted, n.EventsDelivered, n.EventsLost, n.EventsPending, n.EventsDiscarded, n.EventsRolledBack)
	row("mails", "sends %d\tsend errors %d\taccepted %d\tdedup hits %d\tpublications %d\t", n.Sends, n.SendErrors, n.Mails, n.DedupHits, n.Publications)
	row("conflicts", "version %d\tretries %d\texhausted %d\tpublish errors %d\tcrashes %d\t", n.Conflicts, n.Retries, n.Exhausted, n.PublishErrors, n.Crashes)
	tw.Flush()

	p.line("")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	f := r.Faults
	if faultsLine(c) != "none" {
		row("fired", "crashes %d (%s)\tforced conflicts %d\tsend errors %d\ttimeouts %d (%d delivered)\thandler retries %d\tclient resends %d (%d resolved)\tbad input %d orders, %d batches",
			f.Crashes.Total, crashesByPoint(f.Crashes), f.ForcedConflicts, f.SendErrors, f.Timeouts, f.TimeoutsDelivered, f.HandlerRetries,
			f.ClientResends, n.Resolved, f.BadOrders, f.BadBatches)
	}
	a := r.Accounting
	row("accounting", "committed %d\tdelivered %d\tlost %d (in a crash %d, send failed %d, other %d)\tduplicated %d\tunexpected %d\trecovered %d\tresends %d\tfalse out-of-stock %d",
		a.Committed, a.Delivered, a.Lost, a.LostInCrash, a.LostSendFailed, a.LostOther, a.Duplicated, a.Unexpected, a.Recovered, a.Resends, a.FalseOutOfStock)
	row("liveness", "at %s (orders done, faults off): %d pending, %d delivered by the drain in %s, %d still pending", dur(a.Liveness.FaultsEnd),
		a.Liveness.PendingAtStart, a.Liveness.Delivered, dur(a.Liveness.Took), a.Liveness.StillPending)
	if ch := r.Chains; ch != nil {
		row("chains", "quantity changes %d (%d refused)	reallocations %d	depth max %d	p99 %d	mean %.2f",
			ch.QuantityChanges, ch.ChangeErrors, ch.Reallocations, ch.DepthMax, ch.DepthP99, ch.DepthMean)
		var msgs []string
		for _, name := range msgNames {
			if n := ch.Messages[name]; n > 0 {
				msgs = append(msgs, fmt.Sprintf("%s %d", name, n))
			}
		}
		row("messages", "%s", strings.Join(msgs, "\t"))
	}
	tw.Flush()

	p.line("")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	tput := fmt.Sprintf("%s orders/s", rate(r.Throughput.Achieved))
	if c.Model == Open {
		tput = fmt.Sprintf("%s orders/s achieved, %s offered (late %d, dropped %d)", rate(r.Throughput.Achieved), rate(r.Throughput.Offered), n.Late, n.Dropped)
	}
	row("throughput", "%s in a %s window (warm-up of %s excluded; drain after the last order %s)", tput, dur(r.Window), c.warmupText(), dur(r.Drain))
	row("latency", "%s", distLine(r.Latency))
	row("dispatch", "%s per request, p99 %s: %.1f%% of request time", dur(r.Dispatch.Mean), dur(r.Dispatch.P99), 100*r.Dispatch.Share)
	if c.RealMailer() {
		row("mailer send", "%s (every send, as the sender timed it)", distLine(r.Mailer.Send))
	}
	row("commit", "%s", commitLine(r))
	if r.Broker != nil {
		row("broker", "%s", brokerLine(r.Broker))
	}
	row("delivery lag", "%s", distLine(r.DeliveryLag))
	if c.Model == Open {
		row("generator lag", "%s", distLine(r.GeneratorLag))
		row("start delay", "%s", distLine(r.StartDelay))
	}
	switch c.Strategy {
	case Async:
		s := r.Strategy
		row("queue", "max depth %d of %d, mean %.1f; full %d times (%s), blocked %s; left %d", s.MaxDepth, c.Queue, s.MeanDepth, s.Full, c.WhenFull, dur(s.Blocked), s.Pending)
	case Outbox:
		row("outbox", "most rows pending %d; left pending %d; relay errors %d", r.Strategy.MaxDepth, r.Strategy.Pending, r.Strategy.HandlerErrors)
	}
	if c.RealMailer() {
		row("mailer", "%s: achieved mean %s (max %s) over %d sends", c.mailerName(), dur(r.Mailer.Achieved), dur(r.Mailer.MaxSend), r.Mailer.Delayed)
	} else {
		row("mailer", "asked %s, achieved mean %s (max %s) over %d delayed sends", c.Mailer, dur(r.Mailer.Achieved), dur(r.Mailer.MaxSend), r.Mailer.Delayed)
	}
	if m := r.Model; m != nil {
		row("model", "N/(t0 + r·L) = %d/(%s + %.3f × %s) = %s/s predicted, %s/s measured: ratio %.3f (%s); t0 from a calibration run of %d orders (1 worker, no mailer latency)",
			m.Workers, dur(m.T0), m.R, dur(m.L), rate(m.Predicted), rate(m.Measured), m.Ratio, m.Note, m.Calibration.Orders)
	}
	l := r.Little
	little := fmt.Sprintf("X·R = %s/s × %s = %.2f in the system; sampled %.2f: ratio %.3f", rate(l.Throughput), dur(l.MeanLatency), l.Product, l.InFlight, l.Ratio)
	if l.Workers > 0 {
		little += fmt.Sprintf(" (population %d)", l.Workers)
	}
	row("little", "%s", little)
	m := r.Memory
	row("memory", "heap %s → %s (%s/order), peak heap %s, peak RSS %s, allocated %s/order, simulator records %s",
		bytes(float64(m.HeapBefore)), bytes(float64(m.HeapAfter)), bytes(m.PerOrder), bytes(float64(m.PeakHeap)), bytes(float64(m.PeakRSS)), bytes(m.AllocPerOrder), bytes(float64(m.HistoryBytes)))
	tw.Flush()

	p.line("")
	for i, inv := range r.Invariants {
		head := "          "
		if i == 0 {
			head = "invariants"
		}
		status := "ok    "
		if !inv.OK {
			status = fmt.Sprintf("BROKEN (%d)", inv.Violations)
		}
		if inv.Note != "" && inv.OK {
			status = "-     "
		}
		name := inv.Name
		if inv.Note != "" {
			name += " (" + inv.Note + ")"
		}
		p.line("  %s  %s  %s", head, status, name)
		for _, e := range inv.Examples {
			p.line("  %s          - %s", strings.Repeat(" ", len(head)), e)
		}
	}
	if !r.OK {
		p.line("")
		p.line("  rerun: %s", r.Command)
	}
	return p.err
}

func crashesByPoint(c CrashCounts) string {
	var parts []string
	for _, p := range Points() {
		if n := c.At(p); n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", p, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func faultsLine(c Config) string {
	var parts []string
	if c.Crash.Any() {
		parts = append(parts, "crash "+c.Crash.String())
	}
	if c.CrashAt.Any() {
		parts = append(parts, "crash at visits "+c.CrashAt.String())
	}
	if c.Faults != nil {
		parts = append(parts, "crash plan given by the caller")
	}
	if c.ConflictRate > 0 {
		parts = append(parts, fmt.Sprintf("forced conflicts on %g of commits", c.ConflictRate))
	}
	if c.MailErrors > 0 {
		parts = append(parts, fmt.Sprintf("mail errors %g", c.MailErrors))
	}
	if c.MailTimeout > 0 {
		parts = append(parts, fmt.Sprintf("mail timeout %s (delivered anyway %g)", dur(c.MailTimeout), c.TimeoutDelivered))
	}
	if c.ClientRetry > 0 {
		parts = append(parts, fmt.Sprintf("clients resend after an unknown outcome with p=%g", c.ClientRetry))
	}
	if c.BadInput > 0 {
		parts = append(parts, fmt.Sprintf("bad input %g", c.BadInput))
	}
	if c.Rendezvous > 0 {
		parts = append(parts, fmt.Sprintf("the first %d commits meet", c.Rendezvous))
	}
	if len(c.BrokerDrops) > 0 {
		parts = append(parts, "broker connection dropped at publications "+dropsText(c.BrokerDrops))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ") + "; then a liveness phase without faults"
}

func promiseLine(r Report) string {
	s := r.Promise.String()
	if req := r.Config.Require; req != (Promise{}) {
		s += " (required: " + req.String() + ")"
	}
	return s
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) line(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format+"\n", args...)
	}
}

func envLine(e Env, seed int64) string {
	s := fmt.Sprintf("seed %d · %s %s/%s · GOMAXPROCS %d of %d CPUs", seed, e.GoVersion, e.GOOS, e.GOARCH, e.GOMAXPROCS, e.NumCPU)
	if e.Commit != "" {
		s += " · commit " + e.Commit[:min(len(e.Commit), 12)]
		if e.Dirty {
			s += " (dirty)"
		}
	}
	return s
}

func workloadLine(c Config) string {
	pop := c.Popularity
	if pop == Zipf {
		pop = fmt.Sprintf("zipf s=%g", c.ZipfS)
	}
	stock := fmt.Sprintf("scaled to demand/supply %g", c.Demand)
	if c.Demand < 0 {
		stock = "as drawn"
	}
	return fmt.Sprintf("%d skus (%s); %d batches/sku, %.0f%% in the warehouse, shipments within %s; batch qty %v %s; order qty %v",
		c.SKUs, pop, c.BatchesPerSKU, 100*c.WarehouseShare, dur(c.ETASpread), c.BatchQty, stock, c.OrderQty)
}

func loadLine(c Config) string {
	size := fmt.Sprintf("%d orders", c.Orders)
	if c.Duration > 0 {
		size = fmt.Sprintf("for %s (stock sized for %.0f orders)", dur(c.Duration), c.demandBasis())
	}
	retries := strconv.Itoa(c.Retries)
	if c.Retries < 0 {
		retries = "unlimited"
	}
	if c.Model == Open {
		return fmt.Sprintf("open, %s orders/s %s arrivals, %d workers, backlog %d, late after %s, %s, warm-up %s, retries %s",
			rate(c.Rate), c.Arrivals, c.Workers, c.Backlog, dur(c.LateAfter), size, c.warmupText(), retries)
	}
	return fmt.Sprintf("closed, %d workers, %s, warm-up %s, retries %s", c.Workers, size, c.warmupText(), retries)
}

func strategyLine(c Config) string {
	switch c.Strategy {
	case Async:
		return fmt.Sprintf("async: queue of %d, %d handler goroutines, %s when full", c.Queue, c.Handlers, c.WhenFull)
	case Outbox:
		relays := "1 relay"
		if c.Relays > 1 {
			relays = fmt.Sprintf("%d relays sharing the table", c.Relays)
		}
		if !c.Dedup {
			return fmt.Sprintf("outbox: events stored in the commit, %s (outbox.Relay), no de-duplication", relays)
		}
		return fmt.Sprintf("outbox: events stored in the commit, %s (outbox.Relay), mailer de-duplicates by event id", relays)
	case Sync:
		return "sync: handlers run inside the request, after commit (the book)"
	case SyncRetry:
		return fmt.Sprintf("sync-retry: sync, and a failing handler runs again, %d attempts in all, backoff from %s doubling, jittered", c.HandlerAttempts, dur(c.HandlerBackoff))
	}
	return c.Strategy
}

func distLine(d Dist) string {
	if d.Count == 0 {
		return "none"
	}
	return fmt.Sprintf("min %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s, n=%d)",
		dur(d.Min), dur(d.P50), dur(d.P90), dur(d.P99), dur(d.P999), dur(d.Max), dur(d.Mean), d.Count)
}

// dur prints a duration with 3 significant digits: 812ns, 3.41µs, 5.07ms, 1.23s.
func dur(d time.Duration) string {
	abs := d.Abs()
	switch {
	case abs == 0:
		return "0"
	case abs < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case abs < time.Millisecond:
		return sig3(float64(d)/1e3) + "µs"
	case abs < time.Second:
		return sig3(float64(d)/1e6) + "ms"
	case abs < time.Hour:
		return sig3(d.Seconds()) + "s"
	}
	return sig3(d.Hours()) + "h"
}

func sig3(v float64) string {
	switch a := max(v, -v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func rate(v float64) string {
	if v >= 1000 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return sig3(v)
}

func bytes(v float64) string {
	switch a := max(v, -v); {
	case a >= 1<<30:
		return sig3(v/(1<<30)) + " GiB"
	case a >= 1<<20:
		return sig3(v/(1<<20)) + " MiB"
	case a >= 1<<10:
		return sig3(v/(1<<10)) + " KiB"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + " B"
}

// WriteComparison writes reports side by side, one column each, labelled by strategy (and the
// swept value when there is one): the same workload under each strategy.
func WriteComparison(w io.Writer, reports []Report, sweep *Sweep) error {
	if len(reports) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{""}
	for _, r := range reports {
		label := r.Config.Strategy
		if r.Config.Strategy == Async {
			label += "/" + r.Config.WhenFull
		}
		if sweep != nil {
			v, _ := sweep.Value(r.Config)
			label += " " + sweep.Param + "=" + v
		}
		head = append(head, label)
	}
	line := func(name string, f func(Report) string) {
		cells := []string{name}
		for _, r := range reports {
			cells = append(cells, f(r))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	line("throughput (orders/s)", func(r Report) string { return rate(r.Throughput.Achieved) })
	line("latency p50", func(r Report) string { return dur(r.Latency.P50) })
	line("latency p99", func(r Report) string { return dur(r.Latency.P99) })
	line("latency p99.9", func(r Report) string { return dur(r.Latency.P999) })
	line("latency max", func(r Report) string { return dur(r.Latency.Max) })
	line("dispatch per request", func(r Report) string { return dur(r.Dispatch.Mean) })
	line("dispatch share", func(r Report) string { return fmt.Sprintf("%.1f%%", 100*r.Dispatch.Share) })
	if slices.ContainsFunc(reports, func(r Report) bool { return r.Config.RealMailer() }) {
		line("mailer send p50 / p99", func(r Report) string { return dur(r.Mailer.Send.P50) + " / " + dur(r.Mailer.Send.P99) })
	}
	line("commit p50 / p99", func(r Report) string { return dur(r.Commit.P50) + " / " + dur(r.Commit.P99) })
	line("delivery lag p50", func(r Report) string { return dur(r.DeliveryLag.P50) })
	line("delivery lag p99", func(r Report) string { return dur(r.DeliveryLag.P99) })
	line("drain after last order", func(r Report) string { return dur(r.Drain) })
	line("allocated / out of stock", func(r Report) string {
		return fmt.Sprintf("%d / %d", r.Counts.Allocated, r.Counts.OutOfStock)
	})
	line("events committed", func(r Report) string { return strconv.FormatInt(r.Counts.EventsCommitted, 10) })
	line("mails accepted", func(r Report) string { return strconv.FormatInt(r.Counts.Mails, 10) })
	line("events pending / discarded", func(r Report) string {
		return fmt.Sprintf("%d / %d", r.Counts.EventsPending, r.Counts.EventsDiscarded)
	})
	line("queue or outbox backlog, max", func(r Report) string {
		if r.Config.Strategy == Sync {
			return "-"
		}
		return strconv.Itoa(r.Strategy.MaxDepth)
	})
	line("version conflicts", func(r Report) string { return strconv.FormatInt(r.Counts.Conflicts, 10) })
	brokerRows(reports, line)
	chainRows(reports, line)
	if faulty(reports) {
		line("at-most-once / at-least-once", func(r Report) string {
			return yesNo(r.Promise.NoDuplicate) + " / " + yesNo(r.Promise.NoLoss)
		})
		line("crashes", func(r Report) string { return strconv.Itoa(r.Faults.Crashes.Total) })
		line("forced conflicts / exhausted", func(r Report) string {
			return fmt.Sprintf("%d / %d", r.Faults.ForcedConflicts, r.Counts.Exhausted)
		})
		line("send errors / timeouts", func(r Report) string {
			return fmt.Sprintf("%d / %d", r.Faults.SendErrors, r.Faults.Timeouts)
		})
		line("orders unknown / resent", func(r Report) string {
			return fmt.Sprintf("%d / %d", r.Counts.Unknown, r.Counts.Resends)
		})
		line("publish errors seen", func(r Report) string { return strconv.FormatInt(r.Counts.PublishErrors, 10) })
		line("lost", func(r Report) string { return strconv.Itoa(r.Accounting.Lost) })
		line("  OutOfStock / other", func(r Report) string {
			oos := r.Accounting.Kind(KindOutOfStock).Lost
			return fmt.Sprintf("%d / %d", oos, r.Accounting.Lost-oos)
		})
		line("  in a crash / send failed", func(r Report) string {
			return fmt.Sprintf("%d / %d", r.Accounting.LostInCrash, r.Accounting.LostSendFailed)
		})
		line("duplicated", func(r Report) string { return strconv.Itoa(r.Accounting.Duplicated) })
		line("resends / dedup hits", func(r Report) string {
			return fmt.Sprintf("%d / %d", r.Accounting.Resends, r.Counts.DedupHits)
		})
		line("unexpected", func(r Report) string { return strconv.Itoa(r.Accounting.Unexpected) })
		line("recovered", func(r Report) string { return strconv.Itoa(r.Accounting.Recovered) })
		line("pending when faults stopped", func(r Report) string { return strconv.Itoa(r.Accounting.Liveness.PendingAtStart) })
		line("  still pending after drain", func(r Report) string { return strconv.Itoa(r.Accounting.Liveness.StillPending) })
	}
	line("mailer achieved mean", func(r Report) string { return dur(r.Mailer.Achieved) })
	line("model measured/predicted", func(r Report) string {
		if r.Model == nil {
			return "-"
		}
		return fmt.Sprintf("%.3f", r.Model.Ratio)
	})
	line("invariants", func(r Report) string { return okText(r) })
	if err := tw.Flush(); err != nil {
		return err
	}
	p := &printer{w: w}
	if sweep == nil {
		headline(p, reports)
	}
	p.line("")
	p.line("%s", envLine(reports[0].Env, reports[0].Config.Seed))
	p.line("workload: %s", workloadLine(reports[0].Config))
	p.line("load: %s; mailer %s", loadLine(reports[0].Config), reports[0].Config.mailerLine())
	if c := reports[0].Config; c.OpenBroker != nil {
		p.line("store %s, broker %s", c.StoreName(), c.BrokerName())
	}
	if faulty(reports) {
		p.line("faults: %s", faultsLine(reports[0].Config))
	}
	return p.err
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// faulty reports whether any of the runs injected faults.
func faulty(reports []Report) bool {
	for _, r := range reports {
		if faultsLine(r.Config) != "none" {
			return true
		}
	}
	return false
}

// headline says in words what a comparison with sync shows: what dispatch costs a request, and
// what the other strategies trade it for.
func headline(p *printer, reports []Report) {
	var base *Report
	for i := range reports {
		if reports[i].Config.Strategy == Sync {
			base = &reports[i]
			break
		}
	}
	if base == nil || len(reports) < 2 {
		return
	}
	p.line("")
	wait := ""
	if base.Config.Model == Open {
		wait = fmt.Sprintf(", and they wait %s on average for a worker busy dispatching", dur(base.GeneratorLag.Mean+base.StartDelay.Mean))
	}
	p.line("the cost of synchronous dispatch: %.1f%% of sync request time (%s of %s per request%s); mails arrive %s after commit (p99)",
		100*base.Dispatch.Share, dur(base.Dispatch.Mean), dur(base.Latency.Mean), wait, dur(base.DeliveryLag.P99))
	for _, r := range reports {
		if r.Config.Strategy == Sync || base.Throughput.Achieved == 0 {
			continue
		}
		label := r.Config.Strategy
		if r.Config.Strategy == Async {
			label += "/" + r.Config.WhenFull
		}
		p.line("  %s: %.1fx the throughput, latency p99 %s instead of %s, but mails arrive %s after commit (p99)",
			label, r.Throughput.Achieved/base.Throughput.Achieved, dur(r.Latency.P99), dur(base.Latency.P99), dur(r.DeliveryLag.P99))
	}
}

func okText(r Report) string {
	broken := 0
	for _, inv := range r.Invariants {
		if !inv.OK {
			broken++
		}
	}
	if broken == 0 {
		return "ok"
	}
	return fmt.Sprintf("%d BROKEN", broken)
}

// WriteSweep writes one row per run of a sweep: the swept value, the strategy and the figures.
func WriteSweep(w io.Writer, reports []Report, sweep Sweep) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, sweep.Param+"\tstrategy\torders/s\tp50\tp99\tp99.9\tdispatch/req\tdispatch share\tlag p99\tdrain\tconflicts\tlost\tduplicated\tinvariants\t")
	for _, r := range reports {
		v, _ := sweep.Value(r.Config)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f%%\t%s\t%s\t%d\t%d\t%d\t%s\t\n", v, r.Config.Strategy, rate(r.Throughput.Achieved),
			dur(r.Latency.P50), dur(r.Latency.P99), dur(r.Latency.P999), dur(r.Dispatch.Mean), 100*r.Dispatch.Share,
			dur(r.DeliveryLag.P99), dur(r.Drain), r.Counts.Conflicts, r.Accounting.Lost, r.Accounting.Duplicated, okText(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(reports) > 0 {
		c := reports[0].Config
		_, err := fmt.Fprintf(w, "\n%s\nworkload: %s\nload: %s; mailer %s\nswept: %s = %s, one row each (the rest as above)\n",
			envLine(reports[0].Env, c.Seed), workloadLine(c), loadLine(c), c.mailerLine(), sweep.Param, strings.Join(sweep.Values, ", "))
		return err
	}
	return nil
}

// commitLine is the time inside the store's commit, with the store's name: what the database
// costs, beside the dispatch line.
func commitLine(r Report) string {
	return fmt.Sprintf("p50 %s, p99 %s, mean %s over %d commits of measured requests (inside the %s store's Commit)",
		dur(r.Commit.P50), dur(r.Commit.P99), dur(r.Commit.Mean), r.Commit.Count, r.Config.StoreName())
}
