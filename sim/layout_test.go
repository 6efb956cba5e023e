package sim_test

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const simPath = "github.com/stockbus/stockbus/sim"

// layers reads the order of the simulator's packages from the fenced block under "## Layers" in
// sim/README.md: one package directory a line, relative to the module ("sim", "sim/workload"),
// the lowest first. The README is the one place the order is written down.
func layers(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("README.md")
	require.NoError(t, err)
	defer f.Close()
	var order []string
	section, fenced := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			section = line == "## Layers"
		case section && strings.HasPrefix(line, "```"):
			if fenced {
				return order
			}
			fenced = true
		case section && fenced && strings.TrimSpace(line) != "":
			order = append(order, strings.Fields(line)[0])
		}
	}
	require.NoError(t, sc.Err())
	require.FailNow(t, "sim/README.md has no fenced block under \"## Layers\"")
	return nil
}

// simImports lists, for each directory under sim/ with non-test Go files, the packages of the
// simulator (sim and below it) that those files import.
func simImports(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Join("sim", filepath.Dir(path)))
		if _, ok := out[dir]; !ok {
			out[dir] = nil
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			if p == simPath || strings.HasPrefix(p, simPath+"/") {
				out[dir] = append(out[dir], strings.TrimPrefix(p, "github.com/stockbus/stockbus/"))
			}
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// layerViolations says where imports break order: a package missing from it, or one that imports a
// package at its own place or after it.
func layerViolations(order []string, imports map[string][]string) []string {
	var bad []string
	for _, dir := range slices.Sorted(func(yield func(string) bool) {
		for d := range imports {
			if !yield(d) {
				return
			}
		}
	}) {
		at := slices.Index(order, dir)
		if at < 0 {
			bad = append(bad, fmt.Sprintf("%s is not in the layers of sim/README.md", dir))
			continue
		}
		for _, imp := range imports[dir] {
			if i := slices.Index(order, imp); i < 0 || i >= at {
				bad = append(bad, fmt.Sprintf("%s imports %s, which comes after it in the layers of sim/README.md", dir, imp))
			}
		}
	}
	return bad
}

// TestSimulatorPackagesImportOnlyWhatLiesBelowThem keeps the simulator's packages in the order
// sim/README.md states: each imports only packages listed before it, so an order's journey reads
// one way and no part reaches back up.
func TestSimulatorPackagesImportOnlyWhatLiesBelowThem(t *testing.T) {
	order := layers(t)
	require.GreaterOrEqual(t, len(order), 3, "layers %v", order)
	imports := simImports(t)
	require.Contains(t, imports, "sim")
	assert.Empty(t, layerViolations(order, imports))
}

func TestLayerViolations(t *testing.T) {
	order := []string{"sim/workload", "sim/hist", "sim", "sim/output"}
	for _, tc := range []struct {
		name    string
		imports map[string][]string
		want    int
	}{
		{"downwards only", map[string][]string{"sim": {"sim/workload", "sim/hist"}, "sim/output": {"sim", "sim/hist"}, "sim/workload": nil}, 0},
		{"a part reaching up", map[string][]string{"sim/workload": {"sim/hist"}}, 1},
		{"sim importing its writers", map[string][]string{"sim": {"sim/output"}}, 1},
		{"a package left out of the layers", map[string][]string{"sim/faults": nil}, 1},
		{"an import left out of the layers", map[string][]string{"sim": {"sim/faults"}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Len(t, layerViolations(order, tc.imports), tc.want, "%v", layerViolations(order, tc.imports))
		})
	}
}

// The simulator stays small: no non-test function over maxFuncLines lines, no file over
// maxFileLines, in every package under sim/ and in cmd/simulate, so each concept fits in one file a
// reader can hold in mind.
const maxFuncLines, maxFileLines = 80, 500

// simulatorDirs are the roots the size limits cover, relative to sim/.
var simulatorDirs = []string{".", "../cmd/simulate", "../internal/simcli"}

func TestSimulatorStaysSmall(t *testing.T) {
	seen := 0
	for _, root := range simulatorDirs {
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			seen++
			assert.Empty(t, oversized(t, path), "sim/%s", filepath.ToSlash(path))
			return nil
		})
		require.NoError(t, err)
	}
	require.Greater(t, seen, 10, "the size test found too few Go files to be looking in the right place")
}

// oversized lists what in the file is over the limits.
func oversized(t *testing.T, path string) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	require.NoError(t, err)
	var over []string
	if n := fset.File(f.Pos()).LineCount(); n > maxFileLines {
		over = append(over, fmt.Sprintf("%d lines, over %d", n, maxFileLines))
	}
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Body != nil {
			if n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1; n > maxFuncLines {
				over = append(over, fmt.Sprintf("func %s: %d lines, over %d", fn.Name.Name, n, maxFuncLines))
			}
		}
	}
	return over
}
