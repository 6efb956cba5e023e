package output

import (
	"fmt"
	"strconv"

	"github.com/stockbus/stockbus/sim"
)

// brokerLine is the report's line about the broker.
func brokerLine(b *sim.BrokerReport) string {
	return fmt.Sprintf("%s: publish p50 %s, p99 %s over %d acknowledged (%d publications, %d failed); re-sent %d, dedup hits %d; holds %d, stored twice %d, acknowledged but missing %d; connection drops %d",
		b.Name, dur(b.Publish.P50), dur(b.Publish.P99), b.Publish.Count, b.Publications, b.Errors, b.Resent, b.DedupHits,
		b.Held, b.Duplicated, b.Lost, b.Drops)
}

// brokerRows adds the broker's rows to a comparison when a run has a broker report.
func brokerRows(reports []sim.Report, line func(string, func(sim.Report) string)) {
	broker := func(r sim.Report) *sim.BrokerReport { return r.Broker }
	if !anyHas(reports, broker) {
		return
	}
	cell := func(f func(*sim.BrokerReport) string) func(sim.Report) string { return partCell(broker, f) }
	line("publish p50 / p99", cell(func(b *sim.BrokerReport) string { return dur(b.Publish.P50) + " / " + dur(b.Publish.P99) }))
	line("broker re-sent / dedup hits", cell(func(b *sim.BrokerReport) string { return fmt.Sprintf("%d / %d", b.Resent, b.DedupHits) }))
	line("broker holds / stored twice", cell(func(b *sim.BrokerReport) string { return fmt.Sprintf("%d / %d", b.Held, b.Duplicated) }))
	line("broker acked but missing", cell(func(b *sim.BrokerReport) string { return strconv.Itoa(b.Lost) }))
	line("broker drops / publish errors", cell(func(b *sim.BrokerReport) string { return fmt.Sprintf("%d / %d", b.Drops, b.Errors) }))
}
