package output

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/stockbus/stockbus/sim"
)

// chainRows adds the comparison's rows for reallocation chains (Config.QuantityChanges), when a
// run has them: the quantity changes and reallocations, the depth of the chains, and the messages
// the bus handled by type, so that each strategy's chains read side by side.
func chainRows(reports []sim.Report, line func(string, func(sim.Report) string)) {
	chains := func(r sim.Report) *sim.Chains { return r.Chains }
	if !anyHas(reports, chains) {
		return
	}
	cell := func(f func(*sim.Chains) string) func(sim.Report) string { return partCell(chains, f) }
	line("quantity changes / reallocations", cell(func(c *sim.Chains) string {
		return fmt.Sprintf("%d / %d", c.QuantityChanges, c.Reallocations)
	}))
	line("chain depth max / p99 / mean", cell(func(c *sim.Chains) string {
		return fmt.Sprintf("%d / %d / %.2f", c.DepthMax, c.DepthP99, c.DepthMean)
	}))
	for _, name := range sim.MessageNames() {
		if !slices.ContainsFunc(reports, func(r sim.Report) bool { return r.Chains != nil && r.Chains.Messages[name] > 0 }) {
			continue
		}
		line("  "+name+" handled", cell(func(c *sim.Chains) string { return strconv.FormatInt(c.Messages[name], 10) }))
	}
}
