// Command genregister writes features/steps/zz_register.go, the step library's registration code
// (see package gen). go generate ./features/steps runs it in that folder.
package main

import (
	"fmt"
	"os"

	"github.com/stockbus/stockbus/features/steps"
	"github.com/stockbus/stockbus/features/steps/internal/gen"
)

func main() {
	if err := gen.Write(".", gen.File, steps.Vocabulary()); err != nil {
		fmt.Fprintln(os.Stderr, "genregister:", err)
		os.Exit(1)
	}
}
