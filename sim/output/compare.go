package output

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/stockbus/stockbus/sim"
)

// WriteComparison writes reports side by side, one column each, labelled by strategy (and the
// swept value when there is one): the same workload under each strategy.
func WriteComparison(w io.Writer, reports []sim.Report, sweep *sim.Sweep) error {
	if len(reports) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{""}
	for _, r := range reports {
		label := r.Config.Strategy
		if r.Config.Strategy == sim.Async {
			label += "/" + r.Config.WhenFull
		}
		if sweep != nil {
			v, _ := sweep.Value(r.Config)
			label += " " + sweep.Param + "=" + v
		}
		head = append(head, label)
	}
	line := func(name string, f func(sim.Report) string) {
		cells := []string{name}
		for _, r := range reports {
			cells = append(cells, f(r))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	figureRows(reports, line)
	brokerRows(reports, line)
	chainRows(reports, line)
	if faulty(reports) {
		faultRows(line)
	}
	checkRows(line)
	if err := tw.Flush(); err != nil {
		return err
	}
	return comparisonFooter(&printer{w: w}, reports, sweep)
}

// figureRows are the comparison's measured figures and counts.
func figureRows(reports []sim.Report, line func(string, func(sim.Report) string)) {
	line("throughput (orders/s)", func(r sim.Report) string { return rate(r.Throughput.Achieved) })
	line("latency p50", func(r sim.Report) string { return dur(r.Latency.P50) })
	line("latency p99", func(r sim.Report) string { return dur(r.Latency.P99) })
	line("latency p99.9", func(r sim.Report) string { return dur(r.Latency.P999) })
	line("latency max", func(r sim.Report) string { return dur(r.Latency.Max) })
	line("dispatch per request", func(r sim.Report) string { return dur(r.Dispatch.Mean) })
	line("dispatch share", func(r sim.Report) string { return fmt.Sprintf("%.1f%%", 100*r.Dispatch.Share) })
	if anyRealMailer(reports) {
		line("mailer send p50 / p99", func(r sim.Report) string { return dur(r.Mailer.Send.P50) + " / " + dur(r.Mailer.Send.P99) })
	}
	line("commit p50 / p99", func(r sim.Report) string { return dur(r.Commit.P50) + " / " + dur(r.Commit.P99) })
	line("delivery lag p50", func(r sim.Report) string { return dur(r.DeliveryLag.P50) })
	line("delivery lag p99", func(r sim.Report) string { return dur(r.DeliveryLag.P99) })
	line("drain after last order", func(r sim.Report) string { return dur(r.Drain) })
	line("allocated / out of stock", func(r sim.Report) string {
		return fmt.Sprintf("%d / %d", r.Counts.Allocated, r.Counts.OutOfStock)
	})
	line("events committed", func(r sim.Report) string { return strconv.FormatInt(r.Counts.EventsCommitted, 10) })
	line("mails accepted", func(r sim.Report) string { return strconv.FormatInt(r.Counts.Mails, 10) })
	line("events pending / discarded", func(r sim.Report) string {
		return fmt.Sprintf("%d / %d", r.Counts.EventsPending, r.Counts.EventsDiscarded)
	})
	line("queue or outbox backlog, max", func(r sim.Report) string {
		if r.Config.Strategy == sim.Sync {
			return "-"
		}
		return strconv.Itoa(r.Strategy.MaxDepth)
	})
	line("version conflicts", func(r sim.Report) string { return strconv.FormatInt(r.Counts.Conflicts, 10) })
}

// faultRows are the comparison's rows about faults and what they cost, for runs that had any.
func faultRows(line func(string, func(sim.Report) string)) {
	line("at-most-once / at-least-once", func(r sim.Report) string {
		return yesNo(r.Promise.NoDuplicate) + " / " + yesNo(r.Promise.NoLoss)
	})
	line("crashes", func(r sim.Report) string { return strconv.Itoa(r.Faults.Crashes.Total) })
	line("forced conflicts / exhausted", func(r sim.Report) string {
		return fmt.Sprintf("%d / %d", r.Faults.ForcedConflicts, r.Counts.Exhausted)
	})
	line("send errors / timeouts", func(r sim.Report) string {
		return fmt.Sprintf("%d / %d", r.Faults.SendErrors, r.Faults.Timeouts)
	})
	line("orders unknown / resent", func(r sim.Report) string {
		return fmt.Sprintf("%d / %d", r.Counts.Unknown, r.Counts.Resends)
	})
	line("publish errors seen", func(r sim.Report) string { return strconv.FormatInt(r.Counts.PublishErrors, 10) })
	line("lost", func(r sim.Report) string { return strconv.Itoa(r.Accounting.Lost) })
	line("  OutOfStock / other", func(r sim.Report) string {
		oos := r.Accounting.Kind(sim.KindOutOfStock).Lost
		return fmt.Sprintf("%d / %d", oos, r.Accounting.Lost-oos)
	})
	line("  in a crash / send failed", func(r sim.Report) string {
		return fmt.Sprintf("%d / %d", r.Accounting.LostInCrash, r.Accounting.LostSendFailed)
	})
	line("duplicated", func(r sim.Report) string { return strconv.Itoa(r.Accounting.Duplicated) })
	line("resends / dedup hits", func(r sim.Report) string {
		return fmt.Sprintf("%d / %d", r.Accounting.Resends, r.Counts.DedupHits)
	})
	line("unexpected", func(r sim.Report) string { return strconv.Itoa(r.Accounting.Unexpected) })
	line("recovered", func(r sim.Report) string { return strconv.Itoa(r.Accounting.Recovered) })
	line("pending when faults stopped", func(r sim.Report) string { return strconv.Itoa(r.Accounting.Liveness.PendingAtStart) })
	line("  still pending after drain", func(r sim.Report) string { return strconv.Itoa(r.Accounting.Liveness.StillPending) })
}

// checkRows are the comparison's last rows: the mailer, the model check and the invariants.
func checkRows(line func(string, func(sim.Report) string)) {
	line("mailer achieved mean", func(r sim.Report) string { return dur(r.Mailer.Achieved) })
	line("model measured/predicted", func(r sim.Report) string {
		if r.Model == nil {
			return "-"
		}
		return fmt.Sprintf("%.3f", r.Model.Ratio)
	})
	line("invariants", func(r sim.Report) string { return okText(r) })
}

// comparisonFooter is what a comparison shows in words, then the parameters the runs share.
func comparisonFooter(p *printer, reports []sim.Report, sweep *sim.Sweep) error {
	if sweep == nil {
		headline(p, reports)
	}
	p.line("")
	p.line("%s", envLine(reports[0].Env, reports[0].Config.Seed))
	p.line("workload: %s", workloadLine(reports[0].Config))
	p.line("load: %s; mailer %s", loadLine(reports[0].Config), reports[0].Config.MailerLine())
	if c := reports[0].Config; c.OpenBroker != nil {
		p.line("store %s, broker %s", c.StoreName(), c.BrokerName())
	}
	if faulty(reports) {
		p.line("faults: %s", faultsLine(reports[0].Config))
	}
	return p.err
}

// anyHas reports whether any report has the optional part that part returns (nil: none), such as
// its broker report: a comparison shows the part's rows only then.
func anyHas[T any](reports []sim.Report, part func(sim.Report) *T) bool {
	return slices.ContainsFunc(reports, func(r sim.Report) bool { return part(r) != nil })
}

// anyRealMailer reports whether any report sends through a mailer other than the fake one: a
// comparison, and the HTML page, show the sends as the sender timed them only then.
func anyRealMailer(reports []sim.Report) bool {
	return slices.ContainsFunc(reports, func(r sim.Report) bool { return r.Config.RealMailer() })
}

// partCell is a comparison's cell of an optional part: f of the report's part, or "-" for a report
// without it.
func partCell[T any](part func(sim.Report) *T, f func(*T) string) func(sim.Report) string {
	return func(r sim.Report) string {
		if p := part(r); p != nil {
			return f(p)
		}
		return "-"
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// faulty reports whether any of the runs injected faults.
func faulty(reports []sim.Report) bool {
	for _, r := range reports {
		if faultsLine(r.Config) != "none" {
			return true
		}
	}
	return false
}

// headline says in words what a comparison with sync shows: what dispatch costs a request, and
// what the other strategies trade it for.
func headline(p *printer, reports []sim.Report) {
	var base *sim.Report
	for i := range reports {
		if reports[i].Config.Strategy == sim.Sync {
			base = &reports[i]
			break
		}
	}
	if base == nil || len(reports) < 2 {
		return
	}
	p.line("")
	wait := ""
	if base.Config.Model == sim.Open {
		wait = fmt.Sprintf(", and they wait %s on average for a worker busy dispatching", dur(base.GeneratorLag.Mean+base.StartDelay.Mean))
	}
	p.line("the cost of synchronous dispatch: %.1f%% of sync request time (%s of %s per request%s); mails arrive %s after commit (p99)",
		100*base.Dispatch.Share, dur(base.Dispatch.Mean), dur(base.Latency.Mean), wait, dur(base.DeliveryLag.P99))
	for _, r := range reports {
		if r.Config.Strategy == sim.Sync || base.Throughput.Achieved == 0 {
			continue
		}
		label := r.Config.Strategy
		if r.Config.Strategy == sim.Async {
			label += "/" + r.Config.WhenFull
		}
		p.line("  %s: %.1fx the throughput, latency p99 %s instead of %s, but mails arrive %s after commit (p99)",
			label, r.Throughput.Achieved/base.Throughput.Achieved, dur(r.Latency.P99), dur(base.Latency.P99), dur(r.DeliveryLag.P99))
	}
}

func okText(r sim.Report) string {
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
func WriteSweep(w io.Writer, reports []sim.Report, sweep sim.Sweep) error {
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
			envLine(reports[0].Env, c.Seed), workloadLine(c), loadLine(c), c.MailerLine(), sweep.Param, strings.Join(sweep.Values, ", "))
		return err
	}
	return nil
}
