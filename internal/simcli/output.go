package simcli

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/sim/output"
)

// set returns the names of the flags given on the command line.
func set(fs *flag.FlagSet) map[string]bool {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	return given
}

// reportFile is the HTML report asked for with -report, opened before the runs so that an
// unwritable path is a usage error, not a lost run. A nil *reportFile writes nothing.
type reportFile struct {
	path   string
	f      *os.File
	stderr io.Writer
	done   bool
}

// openReport creates path ("" for none); deprecated says -chart was used.
func openReport(path string, stderr io.Writer, deprecated bool) (*reportFile, error) {
	if path == "" {
		return nil, nil
	}
	if deprecated {
		fmt.Fprintln(stderr, "simulate: -chart is deprecated; use -report")
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-report: cannot write %s: %w", path, err)
	}
	return &reportFile{path: path, f: f, stderr: stderr}, nil
}

// write renders the page and closes the file.
func (o *reportFile) write(reports []sim.Report, sweep *sim.Sweep) error {
	if o == nil {
		return nil
	}
	if len(reports) == 0 {
		return nil // abandon removes the empty file
	}
	if err := output.WriteHTML(o.f, reports, sweep); err != nil {
		return err
	}
	o.done = true
	if err := o.f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(o.stderr, "simulate: report written to %s\n", o.path)
	return nil
}

// abandon removes the file when no report went into it (a run failed to start, nothing ran).
func (o *reportFile) abandon() {
	if o == nil || o.done {
		return
	}
	o.f.Close()
	os.Remove(o.path)
}
