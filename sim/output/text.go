package output

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/stockbus/stockbus/sim"
)

// WriteText writes one report for people: a header with every parameter, then aligned figures
// with units.
func WriteText(w io.Writer, r sim.Report) error {
	p := &printer{w: w}
	textHeader(p, r)
	p.line("")
	textCounts(newTable(w), r)
	p.line("")
	textAccounting(newTable(w), r)
	p.line("")
	textFigures(newTable(w), r)
	p.line("")
	textInvariants(p, r)
	return p.err
}

// table is one block of aligned rows of a text report; flush writes it.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer) table { return table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)} }

// row adds a row: its name, then the cells format gives, tab-separated.
func (t table) row(k, format string, args ...any) {
	fmt.Fprintf(t.tw, "  %s\t"+format+"\n", append([]any{k}, args...)...)
}

func (t table) flush() { t.tw.Flush() }

// textHeader is the title and every parameter of the run.
func textHeader(p *printer, r sim.Report) {
	c := r.Config
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
	t := newTable(p.w)
	t.row("workload", "%s", workloadLine(c))
	t.row("load", "%s", loadLine(c))
	t.row("mailer", "%s", c.MailerLine())
	t.row("dispatch", "%s", strategyLine(c))
	t.row("faults", "%s", faultsLine(c))
	t.row("promise", "%s", promiseLine(r))
	t.row("plan", "%s", r.PlanDigest)
	if r.HistoryDigest != "" {
		t.row("history", "%s", r.HistoryDigest)
	}
	t.flush()
}

// textCounts is what became of the orders, events, mails and commits.
func textCounts(t table, r sim.Report) {
	n := r.Counts
	t.row("orders", "sent %d\tmeasured %d\tallocated %d\tout of stock %d\trejected %d\tfailed %d\tunknown %d\tdropped %d",
		n.Sent, n.Measured, n.Allocated, n.OutOfStock, n.Rejected, n.Failed, n.Unknown, n.Dropped)
	t.row("events", "raised %d\tcommitted %d\tdelivered %d\tlost %d\tpending %d\tdiscarded %d\trolled back %d\t",
		n.EventsRaised, n.EventsCommitted, n.EventsDelivered, n.EventsLost, n.EventsPending, n.EventsDiscarded, n.EventsRolledBack)
	t.row("mails", "sends %d\tsend errors %d\taccepted %d\tdedup hits %d\tpublications %d\t", n.Sends, n.SendErrors, n.Mails, n.DedupHits, n.Publications)
	t.row("conflicts", "version %d\tretries %d\texhausted %d\tpublish errors %d\tcrashes %d\t", n.Conflicts, n.Retries, n.Exhausted, n.PublishErrors, n.Crashes)
	t.flush()
}

// textAccounting is the faults that fired, the accounting of the events, the liveness phase and
// the reallocation chains.
func textAccounting(t table, r sim.Report) {
	n, f := r.Counts, r.Faults
	if faultsLine(r.Config) != "none" {
		t.row("fired", "crashes %d (%s)\tforced conflicts %d\tsend errors %d\ttimeouts %d (%d delivered)\thandler retries %d\tclient resends %d (%d resolved)\tbad input %d orders, %d batches",
			f.Crashes.Total, crashesByPoint(f.Crashes), f.ForcedConflicts, f.SendErrors, f.Timeouts, f.TimeoutsDelivered, f.HandlerRetries,
			f.ClientResends, n.Resolved, f.BadOrders, f.BadBatches)
	}
	a := r.Accounting
	t.row("accounting", "committed %d\tdelivered %d\tlost %d (in a crash %d, send failed %d, other %d)\tduplicated %d\tunexpected %d\trecovered %d\tresends %d\tfalse out-of-stock %d",
		a.Committed, a.Delivered, a.Lost, a.LostInCrash, a.LostSendFailed, a.LostOther, a.Duplicated, a.Unexpected, a.Recovered, a.Resends, a.FalseOutOfStock)
	t.row("liveness", "at %s (orders done, faults off): %d pending, %d delivered by the drain in %s, %d still pending", dur(a.Liveness.FaultsEnd),
		a.Liveness.PendingAtStart, a.Liveness.Delivered, dur(a.Liveness.Took), a.Liveness.StillPending)
	if ch := r.Chains; ch != nil {
		t.row("chains", "quantity changes %d (%d refused)	reallocations %d	depth max %d	p99 %d	mean %.2f",
			ch.QuantityChanges, ch.ChangeErrors, ch.Reallocations, ch.DepthMax, ch.DepthP99, ch.DepthMean)
		var msgs []string
		for _, name := range sim.MessageNames() {
			if n := ch.Messages[name]; n > 0 {
				msgs = append(msgs, fmt.Sprintf("%s %d", name, n))
			}
		}
		t.row("messages", "%s", strings.Join(msgs, "\t"))
	}
	t.flush()
}

// textFigures is what the run measured: throughput, latencies, the strategy's queue, the mailer,
// the model check, Little's law and memory.
func textFigures(t table, r sim.Report) {
	c, n := r.Config, r.Counts
	tput := fmt.Sprintf("%s orders/s", rate(r.Throughput.Achieved))
	if c.Model == sim.Open {
		tput = fmt.Sprintf("%s orders/s achieved, %s offered (late %d, dropped %d)", rate(r.Throughput.Achieved), rate(r.Throughput.Offered), n.Late, n.Dropped)
	}
	t.row("throughput", "%s in a %s window (warm-up of %s excluded; drain after the last order %s)", tput, dur(r.Window), c.WarmupText(), dur(r.Drain))
	t.row("latency", "%s", distLine(r.Latency))
	t.row("dispatch", "%s per request, p99 %s: %.1f%% of request time", dur(r.Dispatch.Mean), dur(r.Dispatch.P99), 100*r.Dispatch.Share)
	if c.RealMailer() {
		t.row("mailer send", "%s (every send, as the sender timed it)", distLine(r.Mailer.Send))
	}
	t.row("commit", "%s", commitLine(r))
	if r.Broker != nil {
		t.row("broker", "%s", brokerLine(r.Broker))
	}
	t.row("delivery lag", "%s", distLine(r.DeliveryLag))
	if c.Model == sim.Open {
		t.row("generator lag", "%s", distLine(r.GeneratorLag))
		t.row("start delay", "%s", distLine(r.StartDelay))
	}
	switch c.Strategy {
	case sim.Async:
		s := r.Strategy
		t.row("queue", "max depth %d of %d, mean %.1f; full %d times (%s), blocked %s; left %d", s.MaxDepth, c.Queue, s.MeanDepth, s.Full, c.WhenFull, dur(s.Blocked), s.Pending)
	case sim.Outbox:
		t.row("outbox", "most rows pending %d; left pending %d; relay errors %d", r.Strategy.MaxDepth, r.Strategy.Pending, r.Strategy.HandlerErrors)
	}
	if c.RealMailer() {
		t.row("mailer", "%s: achieved mean %s (max %s) over %d sends", c.MailerLabel(), dur(r.Mailer.Achieved), dur(r.Mailer.MaxSend), r.Mailer.Delayed)
	} else {
		t.row("mailer", "asked %s, achieved mean %s (max %s) over %d delayed sends", c.Mailer, dur(r.Mailer.Achieved), dur(r.Mailer.MaxSend), r.Mailer.Delayed)
	}
	textChecks(t, r)
	t.flush()
}

// textChecks is the model check, Little's law and the memory the run cost.
func textChecks(t table, r sim.Report) {
	if m := r.Model; m != nil {
		t.row("model", "N/(t0 + r·L) = %d/(%s + %.3f × %s) = %s/s predicted, %s/s measured: ratio %.3f (%s); t0 from a calibration run of %d orders (1 worker, no mailer latency)",
			m.Workers, dur(m.T0), m.R, dur(m.L), rate(m.Predicted), rate(m.Measured), m.Ratio, m.Note, m.Calibration.Orders)
	}
	l := r.Little
	little := fmt.Sprintf("X·R = %s/s × %s = %.2f in the system; sampled %.2f: ratio %.3f", rate(l.Throughput), dur(l.MeanLatency), l.Product, l.InFlight, l.Ratio)
	if l.Workers > 0 {
		little += fmt.Sprintf(" (population %d)", l.Workers)
	}
	t.row("little", "%s", little)
	m := r.Memory
	t.row("memory", "heap %s → %s (%s/order), peak heap %s, peak RSS %s, allocated %s/order, simulator records %s",
		bytes(float64(m.HeapBefore)), bytes(float64(m.HeapAfter)), bytes(m.PerOrder), bytes(float64(m.PeakHeap)), bytes(float64(m.PeakRSS)), bytes(m.AllocPerOrder), bytes(float64(m.HistoryBytes)))
}

// textInvariants is each invariant's verdict, with examples of what broke it, and the command
// that reruns a failed run.
func textInvariants(p *printer, r sim.Report) {
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
}

func crashesByPoint(c sim.CrashCounts) string {
	var parts []string
	for _, p := range sim.Points() {
		if n := c.At(p); n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", p, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func promiseLine(r sim.Report) string {
	s := r.Promise.String()
	if req := r.Config.Require; req != (sim.Promise{}) {
		s += " (required: " + req.String() + ")"
	}
	return s
}

// commitLine is the time inside the store's commit, with the store's name: what the database
// costs, beside the dispatch line.
func commitLine(r sim.Report) string {
	return fmt.Sprintf("p50 %s, p99 %s, mean %s over %d commits of measured requests (inside the %s store's Commit)",
		dur(r.Commit.P50), dur(r.Commit.P99), dur(r.Commit.Mean), r.Commit.Count, r.Config.StoreName())
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
