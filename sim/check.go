package sim

import "github.com/stockbus/stockbus/sim/history"

// Invariant is history.Invariant: one property of a run's history, checked after the run.
type Invariant = history.Invariant

// Invariant names, as they appear in reports, in Check's order (history's).
const (
	InvNoOverAllocation   = history.InvNoOverAllocation
	InvAllocatedOnce      = history.InvAllocatedOnce
	InvStoreMatches       = history.InvStoreMatches
	InvNoUnexpected       = history.InvNoUnexpected
	InvNoDuplicate        = history.InvNoDuplicate
	InvNoLoss             = history.InvNoLoss
	InvNoFalseOutOfStock  = history.InvNoFalseOutOfStock
	InvBadInput           = history.InvBadInput
	InvNoDuplicatePublish = history.InvNoDuplicatePublish
	InvNoFailures         = history.InvNoFailures
	InvModel              = history.InvModel
)

// Check judges a history against the simulator's invariants (history.Check).
func Check(h *History) []Invariant { return history.Check(h) }

type verdict = history.Verdict

func newVerdict(name string) *verdict { return history.NewVerdict(name) }

// checkModel holds a run to its model check when required (-require model).
func checkModel(m *Model, required bool) *verdict {
	v := newVerdict(InvModel)
	switch {
	case !required:
		v.Note = "not required"
	case m == nil:
		v.Fail("the run has no model check")
	case !m.Within10:
		v.Fail("measured/predicted %.3f: %s", m.Ratio, m.Note)
	}
	return v
}
