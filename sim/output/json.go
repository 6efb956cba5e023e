package output

import (
	"encoding/json"
	"io"

	"github.com/stockbus/stockbus/sim"
)

// WriteJSON writes the reports as one JSON object {"runs": [...]}, with the sweep when there is one.
// Field names are stable; see the README for each.
func WriteJSON(w io.Writer, reports []sim.Report, sweep *sim.Sweep) error {
	out := struct {
		Runs  []sim.Report `json:"runs"`
		Sweep *sim.Sweep   `json:"sweep,omitempty"`
	}{reports, sweep}
	if out.Runs == nil {
		out.Runs = []sim.Report{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
