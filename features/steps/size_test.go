package steps_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The step library stays readable in parts: a file per concern, and no part too long to read at
// once (issue 11).
const (
	maxFileLines = 500
	maxFuncLines = 80
)

// TestNoFileOrFunctionIsTooLong reads every non-test Go file of the package and fails on a file
// longer than maxFileLines or a function (declared or literal) longer than maxFuncLines.
func TestNoFileOrFunctionIsTooLong(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		require.NoError(t, err)
		f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
		require.NoError(t, err)
		checked++
		assert.LessOrEqual(t, fset.File(f.Pos()).LineCount(), maxFileLines, "lines in %s", name)
		ast.Inspect(f, func(n ast.Node) bool {
			var what string
			switch n := n.(type) {
			case *ast.FuncDecl:
				what = "func " + n.Name.Name
			case *ast.FuncLit:
				what = "a function literal"
			default:
				return true
			}
			// PositionFor without line directives: the generated file's //line comments point
			// at other files.
			start, end := fset.PositionFor(n.Pos(), false), fset.PositionFor(n.End(), false)
			assert.LessOrEqual(t, end.Line-start.Line+1, maxFuncLines, "lines of %s at %s", what, start)
			return true
		})
	}
	require.NotZero(t, checked, "non-test Go files in the package")
}
