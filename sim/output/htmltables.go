package output

import (
	"strconv"

	"github.com/stockbus/stockbus/sim"
)

// htmlTable is one table of the HTML page under its own heading: the column heads, then one row of
// cells per report, already formatted as the text report formats them.
type htmlTable struct {
	Title string
	Head  []string
	Rows  [][]string
}

// htmlTables are the page's tables after the event accounting, each present only when the text
// report shows its figures: the mail sends on a real mailer, the broker's work with a broker
// report.
func htmlTables(reports []sim.Report, sweep *sim.Sweep) []htmlTable {
	var out []htmlTable
	if t, ok := sendTable(reports, sweep); ok {
		out = append(out, t)
	}
	if t, ok := brokerTable(reports, sweep); ok {
		out = append(out, t)
	}
	return out
}

// sendTable is every send's time as the sender timed it (failed sends included), one row per
// report, when any report sends through a real mailer: the text report's mailer send row.
func sendTable(reports []sim.Report, sweep *sim.Sweep) (htmlTable, bool) {
	if !anyRealMailer(reports) {
		return htmlTable{}, false
	}
	t := htmlTable{Title: "Mail sends, as the sender timed them",
		Head: []string{"run", "mailer", "sends", "min", "p50", "p90", "p99", "p99.9", "max", "mean"}}
	for _, r := range reports {
		d := r.Mailer.Send
		t.Rows = append(t.Rows, []string{label(r, sweep), r.Config.MailerLabel(), strconv.FormatInt(d.Count, 10),
			dur(d.Min), dur(d.P50), dur(d.P90), dur(d.P99), dur(d.P999), dur(d.Max), dur(d.Mean)})
	}
	return t, true
}

// brokerTable is what the broker did, one row per report that has a broker report, when any has
// one: the text report's broker line.
func brokerTable(reports []sim.Report, sweep *sim.Sweep) (htmlTable, bool) {
	t := htmlTable{Title: "What the broker did",
		Head: []string{"run", "broker", "publish p50", "publish p99", "acknowledged", "publications", "failed",
			"re-sent", "dedup hits", "holds", "stored twice", "acknowledged but missing", "connection drops"}}
	for _, r := range reports {
		b := r.Broker
		if b == nil {
			continue
		}
		t.Rows = append(t.Rows, []string{label(r, sweep), b.Name, dur(b.Publish.P50), dur(b.Publish.P99),
			strconv.FormatInt(b.Publish.Count, 10), strconv.FormatInt(b.Publications, 10), strconv.FormatInt(b.Errors, 10),
			strconv.Itoa(b.Resent), strconv.FormatInt(b.DedupHits, 10), strconv.Itoa(b.Held), strconv.Itoa(b.Duplicated),
			strconv.Itoa(b.Lost), strconv.Itoa(b.Drops)})
	}
	return t, len(t.Rows) > 0
}
