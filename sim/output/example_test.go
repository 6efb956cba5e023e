package output_test

import (
	"fmt"
	"io"
	"os"

	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/sim/output"
)

// A new output format is a Format: a name, a word for the flag's help, and a writer of the
// reports of a command's runs; here one CSV line per run. One more entry in formats.go
// (package output) makes it a -format value, listed in the flag's help and its error.
func ExampleFormat() {
	csv := output.Format{Name: "csv", About: "one line per run", Write: func(w io.Writer, reports []sim.Report, _ *sim.Sweep) error {
		if _, err := fmt.Fprintln(w, "strategy,sent,allocated,out_of_stock,ok"); err != nil {
			return err
		}
		for _, r := range reports {
			c := r.Counts
			if _, err := fmt.Fprintf(w, "%s,%d,%d,%d,%t\n", r.Config.Strategy, c.Sent, c.Allocated, c.OutOfStock, r.OK); err != nil {
				return err
			}
		}
		return nil
	}}

	syncCfg, outboxCfg := sim.Default(), sim.Default()
	outboxCfg.Strategy = sim.Outbox
	reports := []sim.Report{ // made-up figures: a real run's come from sim.Run
		{Config: syncCfg, Counts: sim.Counts{Sent: 4000, Allocated: 3181, OutOfStock: 819}, OK: true},
		{Config: outboxCfg, Counts: sim.Counts{Sent: 4000, Allocated: 3183, OutOfStock: 817}, OK: true},
	}
	if err := csv.Write(os.Stdout, reports, nil); err != nil {
		fmt.Println(err)
	}
	// Output:
	// strategy,sent,allocated,out_of_stock,ok
	// sync,4000,3181,819,true
	// outbox,4000,3183,817,true
}

// Lookup finds a format by its -format name, as cmd/simulate does.
func ExampleLookup() {
	for _, name := range []string{"bench", "xml"} {
		f, ok := output.Lookup(name)
		fmt.Printf("%s: %t %q\n", name, ok, f.About)
	}
	fmt.Println(output.Help())
	// Output:
	// bench: true "Go benchmark lines for benchstat"
	// xml: false ""
	// output: text, json or bench (Go benchmark lines for benchstat)
}
