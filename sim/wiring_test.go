package sim_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const servicePath = "github.com/stockbus/stockbus/service"

// handlerRegistrations returns where a file calls service.Subscribe or service.HandleCommand
// (under whatever name it imports the service package, with type arguments or without): a
// handler of the simulator's own, which would make it measure something other than the handlers
// service.Register wires.
func handlerRegistrations(fset *token.FileSet, f *ast.File) []string {
	var names []string
	for _, imp := range f.Imports {
		if path, _ := strconv.Unquote(imp.Path.Value); path != servicePath {
			continue
		}
		switch {
		case imp.Name == nil:
			names = append(names, "service")
		case imp.Name.Name != "_":
			names = append(names, imp.Name.Name)
		}
	}
	var found []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		fun := call.Fun
		switch x := fun.(type) { // service.Subscribe[E](...)
		case *ast.IndexExpr:
			fun = x.X
		case *ast.IndexListExpr:
			fun = x.X
		}
		sel, ok := fun.(*ast.SelectorExpr)
		if !ok || (sel.Sel.Name != "Subscribe" && sel.Sel.Name != "HandleCommand") {
			return true
		}
		if pkg, ok := sel.X.(*ast.Ident); ok {
			for _, name := range names {
				if pkg.Name == name {
					found = append(found, fset.Position(call.Pos()).String()+": "+name+"."+sel.Sel.Name)
				}
			}
		}
		return true
	})
	return found
}

func TestHandlerRegistrationsAreFound(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      int
	}{
		{"Subscribe", `package p; import "github.com/stockbus/stockbus/service"; func f() { service.Subscribe(b, h) }`, 1},
		{"HandleCommand with a type argument", `package p; import "github.com/stockbus/stockbus/service"; func f() { service.HandleCommand[domain.Allocate](b, h) }`, 1},
		{"under another name", `package p; import svc "github.com/stockbus/stockbus/service"; func f() { svc.Subscribe(b, h); svc.HandleCommand(b, h) }`, 2},
		{"Register is fine", `package p; import "github.com/stockbus/stockbus/service"; func f() { service.Register(u, m, p) }`, 0},
		{"another package's Subscribe", `package p; import "example.com/service"; func f() { service.Subscribe(b, h) }`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "p.go", tc.src, 0)
			require.NoError(t, err)
			assert.Len(t, handlerRegistrations(fset, f), tc.want)
		})
	}
}

// TestTheSimulatorRegistersNoHandlerOfItsOwn: no non-test file under sim/ calls
// service.Subscribe or service.HandleCommand; the simulator's bus has service.Register's handlers
// only (see TestTheSimulatorsBusHasExactlyRegistersRoutes) and records through ports, middleware
// and the trace.
func TestTheSimulatorRegistersNoHandlerOfItsOwn(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		require.NoError(t, err, "parse %s", path)
		checked++
		for _, at := range handlerRegistrations(fset, f) {
			t.Errorf("%s: the simulator registers a handler of its own; build the stack with service.Register", at)
		}
		return nil
	})
	require.NoError(t, err)
	require.NotZero(t, checked, "no non-test Go files found under sim/")
}
