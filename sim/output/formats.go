// Package output writes the simulator's reports: text (one run, strategies side by side, a
// sweep's table), JSON, Go benchmark lines for benchstat, and a self-contained HTML page with its
// charts. It reads sim.Report values and nothing else of a run, so it stands above package sim:
// sim builds reports, output renders them, and cmd/simulate picks a Format by its -format name.
package output

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/stockbus/stockbus/sim"
)

// Format is one -format of the command: a name and the writer of the reports of a command's runs
// (one run, several strategies side by side, or a sweep when sweep is not nil). Write writes to w
// only, and returns w's first error.
type Format struct {
	Name  string // the -format value
	About string // what the format is for, in the flag's help ("" when the name says it)
	Write func(w io.Writer, reports []sim.Report, sweep *sim.Sweep) error
}

// formats are the command's formats, in the order its help lists them; the first is the default.
// A new format is one more entry.
var formats = []Format{
	{Name: "text", Write: WriteReports},
	{Name: "json", Write: WriteJSON},
	{Name: "bench", About: "Go benchmark lines for benchstat", Write: WriteBench},
}

// Formats returns the command's formats, the default first. The slice is the caller's.
func Formats() []Format { return slices.Clone(formats) }

// Lookup returns the format called name, and whether there is one.
func Lookup(name string) (Format, bool) {
	i := slices.IndexFunc(formats, func(f Format) bool { return f.Name == name })
	if i < 0 {
		return Format{}, false
	}
	return formats[i], true
}

// Names lists the formats' names as a sentence does: "text, json or bench".
func Names() string {
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = f.Name
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Help is the -format flag's help: the names, then what each format that needs a word is for.
func Help() string {
	var about []string
	for _, f := range formats {
		if f.About != "" {
			about = append(about, f.About)
		}
	}
	if len(about) == 0 {
		return "output: " + Names()
	}
	return fmt.Sprintf("output: %s (%s)", Names(), strings.Join(about, "; "))
}

// WriteReports writes reports as text, the command's default: a sweep's table (sweep not nil),
// strategies side by side followed by the full report of each run that failed or was
// interrupted, or one run's full report.
func WriteReports(w io.Writer, reports []sim.Report, sweep *sim.Sweep) error {
	switch {
	case sweep != nil:
		return WriteSweep(w, reports, *sweep)
	case len(reports) > 1:
		if err := WriteComparison(w, reports, nil); err != nil {
			return err
		}
		for _, r := range reports {
			if !r.OK || r.Interrupted {
				fmt.Fprintln(w)
				if err := WriteText(w, r); err != nil {
					return err
				}
			}
		}
		return nil
	case len(reports) == 1:
		return WriteText(w, reports[0])
	}
	return nil
}
